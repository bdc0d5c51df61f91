//! What `/proc` says of a process: its CPU time and memory. The bench reads it of the
//! operator contenders and of the control plane's processes alike.

use crate::error::{Result, io};

/// Memory and CPU of a process, from `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User + system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Peak resident set (VmHWM), in KiB.
    pub peak_rss_kib: u64,
    /// Current resident set (VmRSS), in KiB.
    pub rss_kib: u64,
    /// The part of the current resident set that is file-backed (RssFile): mostly the
    /// pages of the binary's code, which a smaller binary shrinks and a cache does not.
    pub file_rss_kib: u64,
}

/// CPU time and memory of process `pid`.
pub fn usage(pid: u32) -> Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(io("read /proc/<pid>/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(io("read /proc/<pid>/status"))?;
    Ok(parse_usage(&stat, &status))
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on every Linux ABI).
const TICKS: f64 = 100.0;

fn parse_usage(stat: &str, status: &str) -> Usage {
    // Fields after the command name (which may hold spaces, hence the last ')'): state
    // is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Usage {
        cpu_seconds: (ticks(11) + ticks(12)) as f64 / TICKS,
        peak_rss_kib: kib("VmHWM:"),
        rss_kib: kib("VmRSS:"),
        file_rss_kib: kib("RssFile:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_cpu_ticks_and_memory() {
        let stat = "42 (webapp operator) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0";
        let status =
            "Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nRssAnon:\t    3072 kB\nRssFile:\t    7168 kB\n";
        let usage = parse_usage(stat, status);
        assert_eq!(usage.cpu_seconds, 3.0);
        assert_eq!(usage.peak_rss_kib, 20480);
        assert_eq!(usage.rss_kib, 10240);
        assert_eq!(usage.file_rss_kib, 7168);
    }
}
