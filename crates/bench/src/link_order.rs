//! The release binary's link order (crates/operator/link-order.txt): the functions a
//! training run executed, hottest first, read from callgrind's profiles of the operator
//! and kept to those the binary defines. `hack/release/link-order` runs the training;
//! crates/operator/build.rs hands the list to the linker.
//!
//! Callgrind rather than a sampling profiler: what decides the resident code is every
//! function that ever ran, once at start-up included, and callgrind sees each.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{BenchError, Result, io};

/// Self cost (instructions) of each function a callgrind profile names, by symbol name
/// (callgrind's `--demangle=no`). A function only ever called (`cfn=`) is there with 0.
pub fn executed(profile: &str, costs: &mut HashMap<String, u64>) {
    // Callgrind writes a name once, as `(id) name`, and then `(id)` alone; `fn=` and
    // `cfn=` share the ids.
    let mut names: HashMap<String, String> = HashMap::new();
    let mut current: Option<String> = None;
    let mut after_call = false;
    for line in profile.lines() {
        if let Some((key @ ("fn" | "cfn"), spec)) = line.split_once('=') {
            let name = match spec.strip_prefix('(').and_then(|rest| rest.split_once(')')) {
                Some((id, "")) => names.get(id).cloned(),
                Some((id, name)) => {
                    let name = name.trim_start().to_owned();
                    names.insert(id.to_owned(), name.clone());
                    Some(name)
                }
                None => Some(spec.to_owned()),
            };
            if let Some(name) = &name {
                costs.entry(name.clone()).or_default();
            }
            if key == "fn" {
                current = name;
            }
        } else if line.starts_with("calls=") {
            // The cost line after `calls=` is the callee's inclusive cost, not the
            // caller's own.
            after_call = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '*')) {
            if std::mem::take(&mut after_call) {
                continue;
            }
            let cost = line.split_whitespace().nth(1).and_then(|cost| cost.parse::<u64>().ok());
            if let (Some(name), Some(cost)) = (&current, cost) {
                *costs.entry(name.clone()).or_default() += cost;
            }
        }
    }
}

/// The functions `binary` defines, by symbol name, with their sizes in bytes, from
/// `nm --defined-only -S`.
pub fn functions(nm_output: &str) -> HashMap<String, u64> {
    nm_output
        .lines()
        .filter_map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
            [_, size, "t" | "T", name] => Some((name.to_owned(), u64::from_str_radix(size, 16).ok()?)),
            _ => None,
        })
        .collect()
}

/// The link order: the executed functions `binary` defines, by self cost, the highest
/// first (ties by name, so that one profile gives one list).
pub fn order(costs: &HashMap<String, u64>, functions: &HashMap<String, u64>) -> Vec<String> {
    let mut ran: Vec<(&String, u64)> =
        costs.iter().filter(|(name, _)| functions.contains_key(*name)).map(|(name, cost)| (name, *cost)).collect();
    ran.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ran.into_iter().map(|(name, _)| name.clone()).collect()
}

/// Reads `profiles` and `binary`'s symbols; returns the list (one symbol per line, after
/// a comment saying where it came from) and a summary line: how many functions ran, and
/// how much of the code they are.
pub fn list(binary: &Path, profiles: &[impl AsRef<Path>]) -> Result<(String, String)> {
    let mut costs = HashMap::new();
    for profile in profiles {
        let profile = profile.as_ref();
        let text = std::fs::read(profile).map_err(io(format!("read {}", profile.display())))?;
        executed(&String::from_utf8_lossy(&text), &mut costs);
    }
    let nm = std::process::Command::new("nm")
        .args(["--defined-only", "-S"])
        .arg(binary)
        .output()
        .map_err(io("run nm (binutils)"))?;
    if !nm.status.success() {
        return Err(BenchError::Operator(format!("nm {}: {}", binary.display(), String::from_utf8_lossy(&nm.stderr))));
    }
    let functions = functions(&String::from_utf8_lossy(&nm.stdout));
    let ordered = order(&costs, &functions);
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let (ran, all) = (ordered.iter().map(|name| functions[name]).sum::<u64>(), functions.values().sum::<u64>());
    let summary =
        format!("{} of {} functions ran: {:.2} of {:.2} MB of code", ordered.len(), functions.len(), mb(ran), mb(all));
    let mut text = format!(
        "# Written by hack/release/link-order: {summary}. The functions a training run executed,\n\
         # by instructions spent in each, highest first; crates/operator/build.rs links them in this order.\n"
    );
    for name in ordered {
        text.push_str(&name);
        text.push('\n');
    }
    Ok((text, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile in callgrind's format (`--demangle=no --dump-instr=no`): `main` calls
    /// `work` twice, `work` calls `leaf`; `unused` never appears.
    const PROFILE: &str = "\
version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 1000

ob=(1) /bin/op
fl=(1) src/main.rs
fn=(1) _ZN2op4main17h01E
10 5
cfn=(2) _ZN2op4work17h02E
calls=2 20
10 900
11 3

fn=(2)
20 300
+1 400
cfn=(3) _ZN2op4leaf17h03E
calls=1 30
21 200

fn=(3)
30 200
";

    #[test]
    fn self_costs_leave_out_what_callees_spent() {
        let mut costs = HashMap::new();
        executed(PROFILE, &mut costs);
        assert_eq!(costs["_ZN2op4main17h01E"], 8);
        assert_eq!(costs["_ZN2op4work17h02E"], 700);
        assert_eq!(costs["_ZN2op4leaf17h03E"], 200);
        assert_eq!(costs.len(), 3);
    }

    #[test]
    fn the_order_keeps_only_the_binary_s_functions_hottest_first() {
        let mut costs = HashMap::new();
        executed(PROFILE, &mut costs);
        // libc's `memcpy` ran too, but is not the binary's; `unused` is, but never ran.
        costs.insert("memcpy".into(), 10_000);
        let nm = "\
0000000000001000 0000000000000040 T _ZN2op4main17h01E
0000000000001040 0000000000000100 t _ZN2op4work17h02E
0000000000001140 0000000000000020 t _ZN2op4leaf17h03E
0000000000001160 0000000000000800 t _ZN2op6unused17h04E
0000000000002000 0000000000000010 R _ZN2op5TABLE17h05E
                                  U memcpy
";
        let functions = functions(nm);
        assert_eq!(functions.len(), 4);
        assert_eq!(order(&costs, &functions), ["_ZN2op4work17h02E", "_ZN2op4leaf17h03E", "_ZN2op4main17h01E"]);
    }
}
