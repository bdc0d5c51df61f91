//! Links the release binary's functions in the order of `link-order.txt`: those a
//! training run executed first, hottest first, and everything else after them.
//!
//! Why: the kernel maps a binary's pages around each one a process touches (fault-around,
//! 64 KiB), so the resident code is every page near any function that ever ran. Left in
//! the compiler's order, the few thousand functions an operator runs are spread over the
//! whole text, and nearly all of it is resident (7.2 of 8.2 MB at 1000 WebApps). Put
//! side by side, they take about 3 MB (docs/benchmarks.md, "The functions that run, side
//! by side"). The list names symbols; one the binary lacks (code or dependencies changed
//! since the training) is skipped, and `hack/release/link-order` makes the list again.
//!
//! Only for the release profile of x86_64 Linux, whose default linker is LLD (rustc 1.90
//! and later): `--symbol-ordering-file` is an LLD option (mold has it too; GNU ld does
//! not). `WEBAPP_LINK_ORDER=0` links in the compiler's order, for another linker.

use std::path::Path;

fn main() {
    const LIST: &str = "link-order.txt";
    println!("cargo::rerun-if-changed={LIST}");
    println!("cargo::rerun-if-env-changed=WEBAPP_LINK_ORDER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let wanted = std::env::var("WEBAPP_LINK_ORDER").map_or(true, |value| value != "0");
    if target != "x86_64-unknown-linux-gnu" || profile != "release" || !wanted {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let list = Path::new(&dir).join(LIST);
    if !list.is_file() {
        println!("cargo::warning={} is missing: the release binary is linked in the compiler's order", list.display());
        return;
    }
    for arg in [format!("--symbol-ordering-file={}", list.display()), "--no-warn-symbol-ordering".to_owned()] {
        println!("cargo::rustc-link-arg-bin=webapp-operator=-Wl,{arg}");
    }
}
