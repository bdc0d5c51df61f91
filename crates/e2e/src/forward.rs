//! `kubectl port-forward` to a Service (through the API server and the node's kubelet,
//! never to a ClusterIP), and the clients that check what answers on the local end.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::cluster::kubectl;

/// A running port-forward to `target` (e.g. `svc/my-webapp`); stopped when dropped.
pub struct PortForward {
    child: Child,
    /// The local port on 127.0.0.1.
    pub port: u16,
}

impl PortForward {
    /// Forwards a free port of 127.0.0.1 to `remote` of `target` in `ns`.
    pub fn start(ns: &str, target: &str, remote: u16) -> Result<Self, String> {
        let mut child = kubectl()
            .args(["port-forward", "-n", ns, "--address", "127.0.0.1", target, &format!(":{remote}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("kubectl port-forward: {e}"))?;
        let stdout = child.stdout.take().ok_or("kubectl port-forward: no stdout")?;
        // "Forwarding from 127.0.0.1:41234 -> 80"
        let mut lines = BufReader::new(stdout).lines();
        let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
            line.strip_prefix("Forwarding from 127.0.0.1:")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|p| p.parse().ok())
        });
        // kubectl writes a line for every connection it handles: its stdout must stay
        // open and drained, or the write fails and kubectl resets the connection.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        match port {
            Some(port) => Ok(PortForward { child, port }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("kubectl port-forward to {target} in {ns} ended before forwarding"))
            }
        }
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(port: u16) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// `GET /` on the local port: the status code and the body.
pub fn http_get(port: u16) -> Result<(u16, String), String> {
    let mut stream = connect(port)?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\nUser-Agent: webapp-e2e\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("read: {e}"))?;
    let status = response
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {:?}", response.chars().take(80).collect::<String>()))?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// memcached's `stats` on the local port: the `STAT name value` lines as pairs.
pub fn memcached_stats(port: u16) -> Result<Vec<(String, String)>, String> {
    let mut stream = connect(port)?;
    stream.write_all(b"stats\r\n").map_err(|e| format!("send: {e}"))?;
    let mut stats = Vec::new();
    for line in BufReader::new(stream).lines() {
        let line = line.map_err(|e| format!("read: {e}"))?;
        if line == "END" {
            return Ok(stats);
        }
        let mut words = line.split_whitespace();
        if let (Some("STAT"), Some(name), Some(value)) = (words.next(), words.next(), words.next()) {
            stats.push((name.to_owned(), value.to_owned()));
        }
    }
    Err("memcached closed the connection before END".into())
}
