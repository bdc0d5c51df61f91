//! Waiting for evidence: a condition polled until it holds or a deadline passes, with
//! the last thing seen in the failure, so a timeout says where it stood.

use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(500);

/// Polls `check` until it returns `Ok(Some(value))`, or fails after `timeout` with
/// `what` and the last error or the last `Ok(None)`'s note.
pub fn until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => "not yet".to_owned(),
            Err(e) => e,
        };
        if start.elapsed() > timeout {
            return Err(format!("{what}: not within {}s (last: {last})", timeout.as_secs()));
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until custom resource `what` in `ns` reports `phase`.
pub fn phase(ns: &str, what: &str, phase: &str, timeout: Duration) -> Result<(), String> {
    until(&format!("{what} in {ns} to be {phase}"), timeout, || {
        let seen = crate::cluster::phase(ns, what)?;
        if seen.as_deref() == Some(phase) {
            Ok(Some(()))
        } else {
            let message = crate::cluster::get(ns, what)?
                .and_then(|o| o.pointer("/status/message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_default();
            Err(format!("phase {} {message}", seen.as_deref().unwrap_or("<none>")))
        }
    })
}
