//! Decision records leave the machine: a real rsyslogd on a loopback port receives every record
//! as an RFC 5424 message; while it is down the records wait in the outbox and arrive, in order,
//! once it is back.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// rsyslogd listening on `port`, writing every message's raw text to `out.log`.
struct Rsyslog {
    child: Child,
    out: PathBuf,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16) -> Rsyslog {
        let bin = which("rsyslogd")
            .expect("rsyslogd is not installed (apt-get install rsyslog; .ci/run does this)");
        std::fs::create_dir_all(dir).unwrap();
        let out = dir.join("out.log");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{d}\")\n\
                 module(load=\"imtcp\")\n\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
                 template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{o}\" template=\"raw\")\n",
                d = dir.display(),
                o = out.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd starts");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Rsyslog { child, out }
    }

    /// Waits until the log holds `n` lines containing `needle`, and returns them.
    fn wait_for(&self, needle: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let lines: Vec<String> = text
                .lines()
                .filter(|l| l.contains(needle))
                .map(String::from)
                .collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn every_decision_reaches_rsyslogd_and_waits_while_it_is_down() {
    let env = Env::new();
    let port = free_port();
    env.write_system_config(&format!(
        "[decision_log]\nsyslog = \"tcp://127.0.0.1:{port}\"\n"
    ));
    let t = |tag: &str| format!("oci:{}:{tag}", env.path("catalog").display());
    for tag in ["1", "2", "3"] {
        let bin = hello_binary(env.dir.path(), &format!("logged {tag}"));
        env.run(&["publish", bin.to_str().unwrap(), "--to", &t(tag)])
            .succeeds();
    }
    let log = Rsyslog::start(&env.path("rsyslog"), port);
    env.run(&["install", "--allow-unsigned", "--name", "one", &t("1")])
        .succeeds();
    let got = log.wait_for("\"package\":\"one\"", 1);
    assert_eq!(got.len(), 1, "one record for the install");
    assert!(
        got[0].starts_with("<134>1 "),
        "RFC 5424, local0.info: {}",
        got[0]
    );
    assert!(
        got[0].contains(" gantry ") && got[0].contains("\"outcome\":\"installed\""),
        "{}",
        got[0]
    );
    // The line is the record as the local chain holds it.
    let local = std::fs::read_to_string(env.home().join("decisions.jsonl")).unwrap();
    let first = local.lines().next().unwrap();
    assert!(got[0].ends_with(first), "{}\n{first}", got[0]);

    // The collector goes down: installs go on, the records wait.
    drop(log);
    let t0 = Instant::now();
    env.run(&["install", "--name", "two", &t("2")])
        .fails_with(ExitKind::Denied);
    env.run(&["install", "--allow-unsigned", "--name", "three", &t("3")])
        .succeeds();
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let outbox = std::fs::read_to_string(env.home().join("decision-outbox.jsonl")).unwrap();
    assert_eq!(outbox.lines().count(), 2, "{outbox}");

    // Back up: the next record sends the waiting ones first, in order.
    let log = Rsyslog::start(&env.path("rsyslog"), port);
    env.run(&["install", "--allow-unsigned", "--name", "four", &t("1")])
        .succeeds();
    let all = log.wait_for(" decision - ", 4);
    let order: Vec<&str> = all
        .iter()
        .filter_map(|l| {
            ["\"one\"", "\"two\"", "\"three\"", "\"four\""]
                .into_iter()
                .find(|n| l.contains(&format!("\"package\":{n}")))
        })
        .collect();
    assert_eq!(
        order,
        ["\"one\"", "\"two\"", "\"three\"", "\"four\""],
        "{all:#?}"
    );
    assert!(
        all[1].starts_with("<132>1 "),
        "a denial is a warning: {}",
        all[1]
    );
    assert!(!env.home().join("decision-outbox.jsonl").exists());
}
