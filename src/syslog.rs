//! Sends decision records off the machine: each record as one RFC 5424 syslog message over TCP
//! with octet-counting framing (RFC 6587), the input every SIEM takes. The local hash chain is
//! tamper-evident only against a copy the user cannot rewrite; this is that copy. A collector
//! that is down never blocks an install beyond a short timeout: the record waits in an outbox
//! file under the home and goes out, in order, before the next one. Nothing here decides.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a send may take (connect, then write) before the record goes to the outbox.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// The outbox keeps at most this many records (the oldest are dropped past it, and said so).
pub const OUTBOX_MAX: usize = 10_000;

/// Where records go: `tcp://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collector {
    host: String,
    port: u16,
}

impl Collector {
    /// Parses `tcp://HOST:PORT`.
    pub fn parse(url: &str) -> Result<Collector, String> {
        let rest = url.strip_prefix("tcp://").ok_or_else(|| {
            format!("decision_log.syslog = {url:?}: use tcp://HOST:PORT (RFC 5424 over TCP)")
        })?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("decision_log.syslog = {url:?}: the port is missing"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("decision_log.syslog = {url:?}: the port is not 1-65535"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "decision_log.syslog = {url:?}: the host is missing"
            ));
        }
        Ok(Collector {
            host: host.to_string(),
            port,
        })
    }
}

/// One record as an RFC 5424 message: facility local0, severity info for an install, warning
/// for a denial or failure; the structured-data is empty and the message is the record's JSON.
pub fn message(record_json: &str, outcome: &str, time: &str) -> String {
    let severity = if outcome == "installed" { 6 } else { 4 };
    let pri = 16 * 8 + severity;
    let host = hostname();
    format!(
        "<{pri}>1 {time} {host} gantry {} decision - {record_json}",
        std::process::id()
    )
}

fn hostname() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let h: String = h
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if h.is_empty() {
        "-".into()
    } else {
        h
    }
}

/// Forwards decision records, with an outbox for when the collector is down.
pub struct Forwarder {
    collector: Collector,
    outbox: PathBuf,
}

/// What a [`Forwarder::send`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Messages delivered (outbox ones included).
    pub delivered: usize,
    /// Messages waiting in the outbox afterwards.
    pub waiting: usize,
}

impl Forwarder {
    /// A forwarder to `collector`, buffering in `outbox`.
    pub fn new(collector: Collector, outbox: &Path) -> Forwarder {
        Forwarder {
            collector,
            outbox: outbox.to_path_buf(),
        }
    }

    /// Sends what waits in the outbox, then `msg`; whatever cannot be sent now is kept, in
    /// order, for the next time. Never fails the caller: a problem is in the result.
    pub fn send(&self, msg: &str) -> Result<Sent, String> {
        let mut pending: Vec<String> = std::fs::read_to_string(&self.outbox)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str::<String>(l).ok())
            .collect();
        pending.push(msg.to_string());
        let mut delivered = 0;
        if let Ok(mut stream) = self.connect() {
            for m in &pending {
                // Octet counting: the byte length, a space, the message.
                let frame = format!("{} {m}", m.len());
                if stream.write_all(frame.as_bytes()).is_err() {
                    break;
                }
                delivered += 1;
            }
            let _ = stream.flush();
        }
        let rest = pending.split_off(delivered.min(pending.len()));
        let dropped = rest.len().saturating_sub(OUTBOX_MAX);
        let keep = &rest[dropped..];
        self.write_outbox(keep)?;
        if dropped > 0 {
            return Err(format!(
                "the syslog outbox is full: {dropped} oldest record(s) dropped"
            ));
        }
        Ok(Sent {
            delivered,
            waiting: keep.len(),
        })
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let addrs = (self.collector.host.as_str(), self.collector.port).to_socket_addrs()?;
        let mut last = std::io::Error::other("no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, SEND_TIMEOUT) {
                Ok(s) => {
                    s.set_write_timeout(Some(SEND_TIMEOUT))?;
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn write_outbox(&self, keep: &[String]) -> Result<(), String> {
        if keep.is_empty() {
            return match std::fs::remove_file(&self.outbox) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("{}: {e}", self.outbox.display()))
                }
                _ => Ok(()),
            };
        }
        let mut body = String::new();
        for m in keep {
            body.push_str(&serde_json::to_string(m).unwrap_or_default());
            body.push('\n');
        }
        let tmp = self
            .outbox
            .with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, &self.outbox))
            .map_err(|e| format!("{}: {e}", self.outbox.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn collectors_are_tcp_host_port() {
        assert_eq!(
            Collector::parse("tcp://127.0.0.1:514").unwrap(),
            Collector {
                host: "127.0.0.1".into(),
                port: 514
            }
        );
        assert_eq!(Collector::parse("tcp://[::1]:6514").unwrap().host, "::1");
        for bad in [
            "udp://h:514",
            "tcp://h",
            "tcp://:514",
            "tcp://h:0",
            "tcp://h:99999",
            "h:514",
        ] {
            assert!(Collector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_down_collector_buffers_and_the_next_send_delivers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Collector::parse(&format!("tcp://127.0.0.1:{port}")).unwrap();
        let f = Forwarder::new(c, &dir.path().join("outbox"));
        assert_eq!(
            f.send("one").unwrap(),
            Sent {
                delivered: 0,
                waiting: 1
            }
        );
        assert_eq!(
            f.send("two").unwrap(),
            Sent {
                delivered: 0,
                waiting: 2
            }
        );
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = String::new();
            s.read_to_string(&mut got).unwrap();
            got
        });
        assert_eq!(
            f.send("three").unwrap(),
            Sent {
                delivered: 3,
                waiting: 0
            }
        );
        drop(f);
        assert_eq!(reader.join().unwrap(), "3 one3 two5 three");
        assert!(!dir.path().join("outbox").exists());
    }

    #[test]
    fn messages_are_rfc5424_with_the_record_as_json() {
        let m = message(r#"{"package":"jq"}"#, "denied", "2026-01-01T00:00:00Z");
        assert!(m.starts_with("<132>1 2026-01-01T00:00:00Z "), "{m}");
        assert!(m.contains(" gantry "), "{m}");
        assert!(m.ends_with(r#"decision - {"package":"jq"}"#), "{m}");
        assert!(message("{}", "installed", "t").starts_with("<134>1 "));
    }
}
