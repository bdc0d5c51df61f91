//! The process's own metrics, with the names of Prometheus' Go client that every
//! dashboard knows (`process_resident_memory_bytes`, `process_cpu_seconds_total`, ...),
//! read from `/proc/self` at each scrape, and `webapp_operator_build_info`.

use procfs::process::{LimitValue, Process};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Registers the process collector and the build-info metric.
pub fn register(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessCollector));
    registry.register(
        "webapp_operator_build",
        "The operator's version; always 1",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
}

/// One reading of `/proc/self`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    start_time_seconds: f64,
    threads: i64,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl Reading {
    /// `None` off Linux or when `/proc` is not mounted: the scrape then has no process
    /// series rather than zeros that read like a process that uses nothing.
    fn now() -> Option<Reading> {
        let process = Process::myself().ok()?;
        let stat = process.stat().ok()?;
        let ticks = procfs::ticks_per_second() as f64;
        let boot = procfs::boot_time_secs().ok()? as f64;
        let max_fds = process.limits().ok().and_then(|limits| match limits.max_open_files.soft_limit {
            LimitValue::Value(value) => Some(value),
            LimitValue::Unlimited => None,
        });
        Some(Reading {
            cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
            resident_bytes: stat.rss * procfs::page_size(),
            virtual_bytes: stat.vsize,
            start_time_seconds: boot + stat.starttime as f64 / ticks,
            threads: stat.num_threads,
            open_fds: process.fd_count().ok().map(|count| count as u64),
            max_fds,
        })
    }
}

/// Reads `/proc/self` at each scrape (a few small files; nothing is kept between).
#[derive(Debug)]
struct ProcessCollector;

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: impl Into<f64>) -> std::fmt::Result {
    let gauge = ConstGauge::new(value.into());
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(reading) = Reading::now() else { return Ok(()) };
        let cpu = ConstCounter::new(reading.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            reading.resident_bytes as f64,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            reading.virtual_bytes as f64,
        )?;
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            reading.start_time_seconds,
        )?;
        gauge(&mut encoder, "process_threads", "Number of OS threads in the process", reading.threads as f64)?;
        if let Some(open) = reading.open_fds {
            gauge(&mut encoder, "process_open_fds", "Number of open file descriptors", open as f64)?;
        }
        if let Some(max) = reading.max_fds {
            gauge(&mut encoder, "process_max_fds", "Maximum number of open file descriptors", max as f64)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, name: &str) -> f64 {
        let line = text.lines().find(|line| line.split_whitespace().next() == Some(name));
        line.and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
    }

    #[test]
    fn the_process_reads_itself_as_the_go_client_names_it() {
        let mut registry = Registry::default();
        register(&mut registry);
        // Memory this test holds, so that the resident size read is surely above it.
        let held = vec![1u8; 8 << 20];
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(sample(&text, "process_resident_memory_bytes") >= held.len() as f64, "{text}");
        assert!(sample(&text, "process_cpu_seconds_total") > 0.0, "{text}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let started = sample(&text, "process_start_time_seconds");
        assert!(started <= now + 1.0 && started > now - 3600.0, "started {started}, now {now}");
        assert!(sample(&text, "process_open_fds") >= 3.0, "{text}");
        assert!(sample(&text, "process_threads") >= 1.0, "{text}");
        assert!(text.contains(&format!("webapp_operator_build_info{{version=\"{}\"}} 1\n", env!("CARGO_PKG_VERSION"))));
        assert!(text.contains("# TYPE process_cpu_seconds counter\n"), "{text}");
    }
}
