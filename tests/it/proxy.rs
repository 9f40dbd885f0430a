//! A fault-injecting HTTP proxy of our own, put in front of the real docker-registry: it forwards
//! each request (one per connection) unless a rule matches it, and then answers with a status of
//! its choosing, resets the connection, cuts the body short, stalls or trickles. Every request
//! line and `Range` header is logged so a test can count attempts.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do with a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and headers and body) without asking the registry.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Close the connection before any byte of a response.
    Reset,
    /// Forward the response, but stop after this many body bytes and close.
    CutBody(usize),
    /// Read the request and never answer (for `secs`).
    Stall(u64),
    /// Forward the response one byte every `millis`.
    Trickle(u64),
}

impl Fault {
    /// A bare status.
    pub fn status(status: u16) -> Fault {
        Fault::Respond {
            status,
            headers: vec![],
            body: String::new(),
        }
    }
}

/// Applies `fault` to the next `times` requests whose path contains `path` (or is `path`
/// without its trailing `$`).
#[derive(Debug, Clone)]
struct Rule {
    path: String,
    times: usize,
    fault: Fault,
    /// Only requests without an `Authorization` header match.
    unauthenticated: bool,
}

/// The proxy: listens on a loopback port until dropped.
pub struct FaultProxy {
    port: u16,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, l, up) = (rules.clone(), log.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (r, l, up) = (r.clone(), l.clone(), up.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &up, &r, &l);
                });
            }
        });
        FaultProxy { port, rules, log }
    }

    /// `127.0.0.1:PORT`: use it as the registry host.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Adds a rule (rules are tried in the order they were added).
    pub fn on(&self, path: &str, times: usize, fault: Fault) -> &Self {
        self.rules.lock().unwrap().push(Rule {
            path: path.into(),
            times,
            fault,
            unauthenticated: false,
        });
        self
    }

    /// [`FaultProxy::on`] for requests that carry no `Authorization` header only.
    pub fn on_unauthenticated(&self, path: &str, times: usize, fault: Fault) -> &Self {
        self.rules.lock().unwrap().push(Rule {
            path: path.into(),
            times,
            fault,
            unauthenticated: true,
        });
        self
    }

    /// The requests seen so far whose line contains `needle` (`GET /v2/… HTTP/1.1` plus
    /// ` range=…` when the request had a `Range` header).
    pub fn requests(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

/// The head of an HTTP message: up to and including the blank line.
fn read_head(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
    Ok(head)
}

/// The head with its `Connection` header replaced by `Connection: close`.
fn closing(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    rules: &Mutex<Vec<Rule>>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let head = read_head(&mut client)?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let line = text.lines().next().unwrap_or("").to_string();
    let range = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("range:"))
        .map(|l| format!(" range={}", l[6..].trim()))
        .unwrap_or_default();
    log.lock().unwrap().push(format!("{line}{range}"));
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let authenticated = text
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("authorization:"));
    let fault = {
        let mut rules = rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| {
                r.times > 0
                    && !(r.unauthenticated && authenticated)
                    && match r.path.strip_suffix('$') {
                        Some(exact) => path == exact,
                        None => path.contains(&r.path),
                    }
            })
            .map(|r| {
                r.times -= 1;
                r.fault.clone()
            })
    };
    match fault {
        Some(Fault::Respond {
            status,
            headers,
            body,
        }) => {
            let mut out = format!(
                "HTTP/1.1 {status} Fault\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            client.write_all(out.as_bytes())?;
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::Reset) => {
            // SO_LINGER 0 would send an RST; dropping without an answer is the same to a client.
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::Stall(secs)) => {
            std::thread::sleep(Duration::from_secs(secs));
            return Ok(());
        }
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&closing(&head))?;
    let response_head = read_head(&mut up)?;
    client.write_all(&closing(&response_head))?;
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0usize;
    loop {
        let n = up.read(&mut buf)?;
        if n == 0 {
            break;
        }
        match &fault {
            Some(Fault::CutBody(after)) => {
                let room = after.saturating_sub(sent).min(n);
                client.write_all(&buf[..room])?;
                sent += room;
                if sent >= *after {
                    return client.shutdown(Shutdown::Both);
                }
            }
            Some(Fault::Trickle(millis)) => {
                for b in &buf[..n] {
                    client.write_all(std::slice::from_ref(b))?;
                    std::thread::sleep(Duration::from_millis(*millis));
                }
            }
            _ => client.write_all(&buf[..n])?,
        }
    }
    client.shutdown(Shutdown::Both)
}
