//! The crash test: install, update and remove of one package, each SIGKILLed at a random instant
//! of its run, over 150 cycles, with the store checked after every kill. A kill at any instant
//! must leave either the old state or the new one, seen alike by `list`, the wrapper and
//! `current`; the next store-changing run must finish or undo what the killed one started, and
//! leave no staging, wrapper temp file or stray version behind.
//!
//! The delays are drawn uniformly from 0 to how long unkilled runs of the same operation take on
//! this machine (timed before the cycles, and again by every unkilled run of the whole operation
//! during them, so the ranges follow the machine's load), by a seeded xorshift: the draws repeat
//! with the seed the test prints (`GANTRY_CRASH_SEED` picks another one), the delays follow the
//! timings. Every inconsistency is collected with its cycle, delay and what was on disk, and all
//! of them are reported before the test fails.

use crate::harness::*;
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The package every cycle works on.
const NAME: &str = "app";
const REPO: &str = "tools/app";
/// The tag that is installed; "updating" it means pointing it at the other image.
const TAG: &str = "1";
/// The seed when `GANTRY_CRASH_SEED` is not set.
const SEED: u64 = 0x2545_f491_4f6c_dd1d;
/// Each round is an install from nothing, an update, a remove, and another install and remove
/// (cheap, and they have the shortest windows to hit; an update downloads and unpacks, and takes
/// the most time): 60 install, 30 update and 60 remove cycles.
const ROUNDS: usize = 30;
/// Files besides the binary in each image: enough that an install takes a measurable time.
const FILES: [usize; 2] = [1000, 2000];
/// Timed unkilled runs of each operation, before the cycles.
const CALIBRATION_RUNS: usize = 3;
/// A delay range is the median of this many latest timings of the operation.
const TIMINGS_KEPT: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Install,
    Update,
    Remove,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Op::Install => "install",
            Op::Update => "update",
            Op::Remove => "remove",
        })
    }
}

/// The package as the store shows it: not installed, or installed at one of the two versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Absent,
    Present(usize),
}

/// One of the two images published under [`TAG`].
struct Version {
    /// The tag it was published under, copied onto [`TAG`] to make it the tagged one.
    source_tag: &'static str,
    greeting: &'static str,
    /// The digest `list` reports for it (learnt from its first install).
    digest: String,
    /// Its layers' directories in the layer cache (learnt from its first update).
    layers: Vec<String>,
}

/// xorshift64: tiny, seeded, the same draws on every machine.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..=max` (the modulo bias is nil for delays in microseconds).
    fn up_to(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

fn seed() -> u64 {
    let Ok(s) = std::env::var("GANTRY_CRASH_SEED") else {
        return SEED;
    };
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    // xorshift stays at 0 for ever.
    parsed.expect("GANTRY_CRASH_SEED: a number").max(1)
}

/// Which killed run an inconsistency was found after.
#[derive(Clone, Copy)]
struct Kill {
    cycle: usize,
    op: Op,
    delay: Duration,
    mid_operation: bool,
}

struct Inconsistency {
    kill: Kill,
    /// The command that was killed.
    command: String,
    what: String,
    disk: String,
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let k = &self.kill;
        write!(
            f,
            "cycle {} ({}: `gantry {}` SIGKILLed after {} us, {}): {}\n  on disk then:\n{}",
            k.cycle,
            k.op,
            self.command,
            k.delay.as_micros(),
            if k.mid_operation {
                "mid-operation"
            } else {
                "after the run had exited"
            },
            self.what,
            self.disk
        )
    }
}

struct Crash {
    env: Env,
    reg: TestRegistry,
    /// `HOST/tools/app:1`.
    reference: String,
    versions: [Version; 2],
    /// The version [`TAG`] names now.
    tagged: usize,
    /// What the store holds between cycles.
    state: Seen,
    /// How long the latest unkilled runs of each operation to each version took: the calibration
    /// runs, then the cycles' runs that exited before their kill, and the re-runs that did the
    /// whole operation again.
    took: BTreeMap<(Op, usize), Vec<Duration>>,
    rng: XorShift,
    cycles: BTreeMap<Op, usize>,
    mid_operation: BTreeMap<Op, usize>,
    /// How many kills of each operation left the old state, and how many the new one.
    left: BTreeMap<Op, (usize, usize)>,
    found: Vec<Inconsistency>,
}

impl Crash {
    /// Publishes the two images, each under a tag of its own, and points [`TAG`] at the first.
    fn new(seed: u64) -> Crash {
        let env = Env::new();
        let reg = TestRegistry::start();
        let versions = [("one", "v1"), ("two", "v2")].map(|(source_tag, greeting)| Version {
            source_tag,
            greeting,
            digest: String::new(),
            layers: Vec::new(),
        });
        for (v, files) in versions.iter().zip(FILES) {
            let tree = image_tree(&env, v.greeting, files);
            env.run(&[
                "publish",
                tree.to_str().unwrap(),
                "--entrypoint",
                "/usr/local/bin/hello",
                "--to",
                &format!("{}/{REPO}:{}", reg.host(), v.source_tag),
            ])
            .succeeds();
        }
        let mut c = Crash {
            reference: format!("{}/{REPO}:{TAG}", reg.host()),
            env,
            reg,
            versions,
            tagged: 0,
            state: Seen::Absent,
            took: BTreeMap::new(),
            rng: XorShift(seed),
            cycles: BTreeMap::new(),
            mid_operation: BTreeMap::new(),
            left: BTreeMap::new(),
            found: Vec::new(),
        };
        c.retag(0);
        c
    }

    /// Points [`TAG`] at version `v`: the registry-side half of an update.
    fn retag(&mut self, v: usize) {
        let r = self.reg.client(REPO);
        let from = self.versions[v].source_tag;
        block_on(async {
            use gantry::source::{ImageSource, ManifestRef};
            let m = r
                .fetch_manifest(&ManifestRef::Tag(from.into()))
                .await
                .unwrap()
                .unwrap();
            r.push_manifest(&ManifestRef::Tag(TAG.into()), m.bytes, &m.media_type)
                .await
                .unwrap();
        });
        self.tagged = v;
    }

    /// Empties the layer cache before an update, so that it downloads and unpacks, as it does for
    /// a version it never saw. An install from nothing finds the layers of its version cached
    /// (a remove keeps them), as after a reinstall: the two cover both paths.
    fn forget_layers(&self) {
        let layers = self.env.home().join("layers");
        match std::fs::remove_dir_all(&layers) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{e}"),
            _ => std::fs::create_dir_all(&layers).unwrap(),
        }
    }

    fn args(&self, op: Op) -> Vec<String> {
        match op {
            Op::Install => {
                vec![
                    "install".into(),
                    "--allow-unsigned".into(),
                    "--name".into(),
                    NAME.into(),
                    self.reference.clone(),
                ]
            }
            // The tag moved: `update` accepts the move (an install refuses it).
            Op::Update => vec!["update".into(), NAME.into(), "--yes".into()],
            Op::Remove => vec!["remove".into(), NAME.into()],
        }
    }

    fn run(&self, args: &[String]) -> Run {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.env.run(&a)
    }

    /// Unkilled runs of each operation to each version, timed: the first ranges the kill delays
    /// are drawn from. Leaves the package absent and [`TAG`] on the first version.
    fn calibrate(&mut self) {
        // The home's first run compiles the shipped plugins into its cache, once: not timed.
        self.run(&self.args(Op::Install)).succeeds();
        self.run(&self.args(Op::Remove)).succeeds();
        for _ in 0..CALIBRATION_RUNS {
            for (op, v) in [
                (Op::Install, 0),
                (Op::Update, 1),
                (Op::Remove, 1),
                (Op::Install, 1),
                (Op::Update, 0),
                (Op::Remove, 0),
            ] {
                if op != Op::Remove {
                    self.retag(v);
                }
                if op == Op::Update {
                    self.forget_layers();
                }
                let args = self.args(op);
                let start = Instant::now();
                let run = self.run(&args);
                let took = start.elapsed();
                run.succeeds();
                if op != Op::Remove && self.versions[v].digest.is_empty() {
                    self.versions[v].digest =
                        listed_digest(&self.env).expect("listed after install");
                }
                if op == Op::Update && self.versions[v].layers.is_empty() {
                    // The cache was empty: what it holds now is this version's.
                    self.versions[v].layers = names(&self.env.home().join("layers"));
                }
                let want = if op == Op::Remove {
                    Seen::Absent
                } else {
                    Seen::Present(v)
                };
                assert_eq!(self.observe(), Ok(want), "after an unkilled {op}");
                assert_eq!(self.leftovers(want), Vec::<String>::new(), "after {op}");
                self.state = want;
                self.timed((op, v), took);
            }
        }
        println!("crash: unkilled runs took {}", self.timings());
    }

    /// Records how long an unkilled run took.
    fn timed(&mut self, key: (Op, usize), took: Duration) {
        let t = self.took.entry(key).or_default();
        t.push(took);
        if t.len() > TIMINGS_KEPT {
            t.remove(0);
        }
    }

    /// The range a kill delay is drawn from: the median of the latest timings (on a shared
    /// machine one run can take twice as long as the next; the median ignores such a run).
    fn range(&self, key: (Op, usize)) -> Duration {
        let mut t = self.took[&key].clone();
        t.sort();
        t[t.len() / 2]
    }

    /// The latest timings of each operation, for the log.
    fn timings(&self) -> String {
        let shown: Vec<String> = self
            .took
            .iter()
            .map(|(&(op, v), t)| {
                let ms: Vec<String> = t.iter().map(|d| d.as_millis().to_string()).collect();
                format!(
                    "{op} {} {} ms (range {} ms)",
                    self.versions[v].greeting,
                    ms.join("/"),
                    self.range((op, v)).as_millis()
                )
            })
            .collect();
        shown.join(", ")
    }

    /// Reads the store as a user would see it, with `gantry list --json` (which, when no other
    /// gantry process holds the lock, first finishes or undoes what the killed run left), the
    /// wrapper and `current`, and says whether they agree on one state.
    fn observe(&self) -> Result<Seen, String> {
        let home = self.env.home();
        let list = self.env.run(&["list", "--json"]);
        if list.code != SUCCESS {
            return Err(format!(
                "`gantry list --json` exited {}: {}",
                list.code, list.stderr
            ));
        }
        let doc: serde_json::Value = serde_json::from_str(&list.stdout).map_err(|e| {
            format!(
                "`gantry list --json` printed no list ({e}): {}",
                list.stdout
            )
        })?;
        let listed: Vec<serde_json::Value> =
            doc["packages"].as_array().cloned().unwrap_or_default();
        let mine: Vec<String> = listed
            .iter()
            .filter(|p| p["name"] == NAME)
            .map(|p| p["digest"].as_str().unwrap_or("(no digest)").to_string())
            .collect();
        let wrapper = home.join("bin").join(NAME);
        let current = home.join("packages").join(NAME).join("current");
        let has_wrapper = wrapper.symlink_metadata().is_ok();
        let has_current = current.symlink_metadata().is_ok();
        match (mine.as_slice(), has_wrapper, has_current) {
            ([], false, false) => Ok(Seen::Absent),
            ([digest], true, true) => self.present(digest, &wrapper, &current),
            _ => {
                let wrapper = if !has_wrapper {
                    "is missing".to_string()
                } else if is_script(&wrapper) {
                    let run = self.env.run_tool(NAME, &[]);
                    let out = format!("{}{}", run.stdout, run.stderr);
                    format!("exists and exits {}: {:?}", run.code, out.trim())
                } else {
                    "exists, not an executable script".into()
                };
                let current = match std::fs::read_link(&current) {
                    Ok(t) => format!("-> {}", t.display()),
                    Err(_) if has_current => "is not a symlink".into(),
                    Err(_) => "is missing".into(),
                };
                Err(format!(
                    "neither absent nor present everywhere: `list` shows {mine:?}, \
                     bin/{NAME} {wrapper}, packages/{NAME}/current {current}"
                ))
            }
        }
    }

    /// The package is listed at `digest` and has a wrapper and `current`: they must agree, and
    /// the wrapper must run the version they name.
    fn present(&self, digest: &str, wrapper: &Path, current: &Path) -> Result<Seen, String> {
        let target =
            std::fs::read_link(current).map_err(|e| format!("current is not a symlink: {e}"))?;
        let want = format!("sha256-{}", digest.trim_start_matches("sha256:"));
        if target.to_str() != Some(want.as_str()) {
            return Err(format!(
                "`list` says {digest} but current -> {}",
                target.display()
            ));
        }
        let meta = std::fs::read(current.join("metadata.json"))
            .map_err(|e| format!("current -> {want} has no metadata.json: {e}"))?;
        let meta: serde_json::Value = serde_json::from_slice(&meta)
            .map_err(|e| format!("current/metadata.json does not parse: {e}"))?;
        if meta["digest"] != digest || meta["name"] != NAME {
            return Err(format!(
                "current/metadata.json names {} {}, `list` {NAME} {digest}",
                meta["name"], meta["digest"]
            ));
        }
        if !current.join("launch").is_file() {
            return Err(format!("current -> {want} has no launch script"));
        }
        let v = self
            .versions
            .iter()
            .position(|v| v.digest == digest)
            .ok_or_else(|| format!("`list` shows {digest}, neither v1 nor v2"))?;
        if !is_script(wrapper) {
            return Err(format!(
                "bin/{NAME} is not an executable script: {:?}",
                std::fs::read_to_string(wrapper).unwrap_or_default()
            ));
        }
        let run = self.env.run_tool(NAME, &[]);
        let greeting = self.versions[v].greeting;
        if run.code != SUCCESS || run.stdout.trim() != greeting {
            return Err(format!(
                "current is {greeting} but bin/{NAME} exited {} printing {:?} (stderr {:?})",
                run.code, run.stdout, run.stderr
            ));
        }
        Ok(Seen::Present(v))
    }

    /// What a finished run must not leave behind, when the package is in state `s`: staging,
    /// layer temp dirs, the wrapper's temp file, and in the package's directory anything but
    /// `current` and the version it points at.
    fn leftovers(&self, s: Seen) -> Vec<String> {
        let home = self.env.home();
        let mut out = Vec::new();
        let tmp = names(&home.join("tmp"));
        if !tmp.is_empty() {
            out.push(format!("tmp/ holds {tmp:?}"));
        }
        let layer_temps = self.env.layer_temp_dirs();
        if layer_temps != 0 {
            out.push(format!("layers/ holds {layer_temps} unpacking temp dir(s)"));
        }
        if home
            .join(format!("bin/.{NAME}.tmp"))
            .symlink_metadata()
            .is_ok()
        {
            out.push(format!("bin/.{NAME}.tmp exists"));
        }
        let pkg = names(&home.join("packages").join(NAME));
        let dir = |v: &Version| format!("sha256-{}", v.digest.trim_start_matches("sha256:"));
        let allowed = match s {
            // An empty package directory is harmless; anything in it is not.
            Seen::Absent => vec![],
            // The version before is kept for rollback (keep_versions = 2), whole or not at all:
            // the version check of `present` reads `current`'s, and a kept one must be whole.
            Seen::Present(_) => {
                let mut a = vec!["current".to_string(), "pinned".to_string()];
                a.extend(self.versions.iter().map(dir));
                a
            }
        };
        for v in &self.versions {
            let d = home.join("packages").join(NAME).join(dir(v));
            if d.exists() && !(d.join("metadata.json").is_file() && d.join("launch").is_file()) {
                out.push(format!("packages/{NAME}/{} is not whole", dir(v)));
            }
        }
        let stray: Vec<&String> = pkg.iter().filter(|n| !allowed.contains(n)).collect();
        if !stray.is_empty() {
            out.push(format!("packages/{NAME}/ also holds {stray:?}"));
        }
        out
    }

    fn note(&mut self, kill: Kill, what: String) {
        let disk = describe(&self.env.home());
        let command = self.args(kill.op).join(" ");
        self.found.push(Inconsistency {
            kill,
            command,
            what,
            disk,
        });
    }

    /// One cycle: the operation started, SIGKILLed after a random delay, the store checked, an
    /// unrelated store-changing run on odd cycles (recovery alone must clean up), then the
    /// operation re-run unkilled, which must finish it.
    fn cycle(&mut self, cycle: usize, op: Op) {
        let (old, new, to) = match (op, self.state) {
            (Op::Install, Seen::Absent) => (Seen::Absent, Seen::Present(self.tagged), self.tagged),
            (Op::Update, Seen::Present(v)) => {
                self.retag(1 - v);
                (Seen::Present(v), Seen::Present(1 - v), 1 - v)
            }
            (Op::Remove, Seen::Present(v)) => (Seen::Present(v), Seen::Absent, v),
            (op, s) => panic!("cycle {cycle}: {op} from {s:?} is not in the schedule"),
        };
        if op == Op::Update {
            self.forget_layers();
        }
        let range = self.range((op, to));
        let delay = Duration::from_micros(self.rng.up_to(range.as_micros() as u64));
        let args = self.args(op);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = self
            .env
            .cmd(&a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait out the delay, watching the child: one that exits first has run the whole
        // operation unkilled, which is a timing.
        let start = Instant::now();
        let exited = loop {
            let now = start.elapsed();
            if now >= delay {
                break None;
            }
            if let Some(status) = child.try_wait().unwrap() {
                break Some((status, now));
            }
            std::thread::sleep((delay - now).min(Duration::from_millis(1)));
        };
        let status = match exited {
            Some((status, took)) => {
                if status.success() {
                    self.timed((op, to), took);
                }
                status
            }
            None => {
                let _ = child.kill();
                child.wait().unwrap()
            }
        };
        let mid_operation = status.signal() == Some(libc::SIGKILL);
        let kill = Kill {
            cycle,
            op,
            delay,
            mid_operation,
        };
        *self.cycles.entry(op).or_default() += 1;
        if mid_operation {
            *self.mid_operation.entry(op).or_default() += 1;
        } else if !status.success() {
            self.note(
                kill,
                format!("`gantry {}` failed on its own ({status})", args.join(" ")),
            );
        }

        let mut seen = self.observe();
        match &seen {
            Ok(s) if *s == old => self.left.entry(op).or_default().0 += 1,
            Ok(s) if *s == new => self.left.entry(op).or_default().1 += 1,
            Ok(s) => {
                let what =
                    format!("after the kill: {s:?}, neither the old {old:?} nor the new {new:?}");
                self.note(kill, what);
            }
            Err(e) => {
                let what = format!("after the kill: {e}");
                self.note(kill, what);
            }
        }

        if cycle % 2 == 1 {
            seen = self.recover_alone(kill, &seen, old, new);
        }

        // The re-run finishes the operation. A remove whose package is gone already says so.
        // When the kill had changed nothing that counts (the old state; for an update, no layer
        // of the new version cached yet), the re-run does the whole operation: a timing too.
        let whole = seen == Ok(old)
            && (op != Op::Update
                || self.versions[to]
                    .layers
                    .iter()
                    .all(|l| !self.env.home().join("layers").join(l).exists()));
        let start = Instant::now();
        let run = self.run(&args);
        if whole && run.code == SUCCESS {
            self.timed((op, to), start.elapsed());
        }
        let ok = match (op, &seen) {
            (Op::Remove, Ok(Seen::Absent)) => run.code == code(ExitKind::Usage),
            (Op::Remove, Err(_)) => run.code == SUCCESS || run.code == code(ExitKind::Usage),
            _ => run.code == SUCCESS,
        };
        if !ok {
            let what = format!(
                "the re-run `gantry {}` exited {}: {}{}",
                args.join(" "),
                run.code,
                run.stdout,
                run.stderr
            );
            self.note(kill, what);
        }
        match self.observe() {
            Ok(s) if s == new => {}
            other => {
                let what = format!(
                    "after the re-run `gantry {}` (exit {}): {other:?}, not {new:?}",
                    args.join(" "),
                    run.code
                );
                self.note(kill, what);
            }
        }
        for l in self.leftovers(new) {
            let what = format!("after the re-run `gantry {}`: {l}", args.join(" "));
            self.note(kill, what);
        }
        self.settle(kill, new);
    }

    /// Runs a store-changing command that has nothing to do with the package (`remove` of one
    /// never installed): its start-up recovery alone must clean up after the kill, and keep (or
    /// complete) the state the kill left. Returns the state it leaves.
    fn recover_alone(
        &mut self,
        kill: Kill,
        seen: &Result<Seen, String>,
        old: Seen,
        new: Seen,
    ) -> Result<Seen, String> {
        let run = self.env.run(&["remove", "never-installed"]);
        if run.code != code(ExitKind::Usage) {
            let what = format!(
                "`gantry remove never-installed` after the kill exited {}: {}",
                run.code, run.stderr
            );
            self.note(kill, what);
        }
        let now = self.observe();
        match (seen, &now) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(_), Ok(b)) if *b == old || *b == new => {}
            _ => {
                let what = format!(
                    "the recovery of an unrelated run left {now:?} (after the kill: {seen:?})"
                );
                self.note(kill, what);
            }
        }
        if let Ok(s) = now {
            for l in self.leftovers(s) {
                let what = format!("after the recovery of an unrelated run: {l}");
                self.note(kill, what);
            }
        }
        now
    }

    /// Makes sure the store is in state `want` for the next cycle: when a cycle went wrong, a
    /// remove and a fresh install; if even that fails, the test cannot go on.
    fn settle(&mut self, kill: Kill, want: Seen) {
        if self.observe() != Ok(want) {
            let _ = self.run(&self.args(Op::Remove));
            if want != Seen::Absent {
                let _ = self.run(&self.args(Op::Install));
            }
            if self.observe() != Ok(want) {
                self.note(kill, format!("could not bring the store back to {want:?}"));
                self.report();
                panic!("cycle {}: the store is stuck; stopping", kill.cycle);
            }
        }
        self.state = want;
    }

    fn count(map: &BTreeMap<Op, usize>, op: Op) -> usize {
        map.get(&op).copied().unwrap_or(0)
    }

    /// The summary line, the split of old and new states after the kills, and every
    /// inconsistency found.
    fn report(&self) -> String {
        let c = |op| Self::count(&self.cycles, op);
        let m = |op| Self::count(&self.mid_operation, op);
        let summary = format!(
            "crash: {} cycles (install {}, update {}, remove {}), kills mid-operation: install {}, update {}, remove {}, inconsistencies: {}",
            self.cycles.values().sum::<usize>(),
            c(Op::Install),
            c(Op::Update),
            c(Op::Remove),
            m(Op::Install),
            m(Op::Update),
            m(Op::Remove),
            self.found.len()
        );
        println!("{summary}");
        let split: Vec<String> = self
            .left
            .iter()
            .map(|(op, (old, new))| format!("{op} {old} old / {new} new"))
            .collect();
        println!("crash: states right after the kills: {}", split.join(", "));
        for i in &self.found {
            println!("crash: inconsistency: {i}");
        }
        summary
    }
}

/// A tree with the greeting binary as `/usr/local/bin/hello` and `files` small data files.
fn image_tree(env: &Env, greeting: &str, files: usize) -> std::path::PathBuf {
    let tree = env.path(&format!("tree-{greeting}"));
    std::fs::create_dir_all(tree.join("usr/local/bin")).unwrap();
    std::fs::copy(
        hello_binary(env.dir.path(), greeting),
        tree.join("usr/local/bin/hello"),
    )
    .unwrap();
    for i in 0..files {
        let d = tree.join(format!("data/{}", i / 100));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(format!("{i}")),
            format!("{greeting} {i}\n").repeat(200),
        )
        .unwrap();
    }
    tree
}

/// Whether `path` is an executable file starting with `#!` (so running it cannot fail to start).
fn is_script(path: &Path) -> bool {
    let executable = path
        .metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    executable && std::fs::read(path).is_ok_and(|b| b.starts_with(b"#!"))
}

/// The digest `gantry list --json` reports for the package.
fn listed_digest(env: &Env) -> Option<String> {
    let out = env.run(&["list", "--json"]).succeeds().stdout;
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listed = doc["packages"].as_array().cloned().unwrap_or_default();
    listed
        .iter()
        .find(|p| p["name"] == NAME)
        .and_then(|p| p["digest"].as_str())
        .map(String::from)
}

/// Sorted entry names of a directory (none if it is missing).
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

/// One line per entry of `dir`: its name, and its size or link target.
fn entries(home: &Path, rel: &str) -> Vec<String> {
    names(&home.join(rel))
        .into_iter()
        .map(|n| {
            let p = home.join(rel).join(&n);
            let what = match p.symlink_metadata() {
                Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&p) {
                    Ok(t) => format!("-> {}", t.display()),
                    Err(e) => format!("unreadable link: {e}"),
                },
                Ok(m) if m.is_dir() => "dir".into(),
                Ok(m) => format!("{} bytes", m.len()),
                Err(e) => format!("gone: {e}"),
            };
            let shown = if rel.is_empty() {
                n
            } else {
                format!("{rel}/{n}")
            };
            format!("{shown} ({what})")
        })
        .collect()
}

/// What the store's top levels and the package's directory hold, for telling whether a command
/// changed anything.
fn snapshot(home: &Path) -> Vec<String> {
    let mut s = Vec::new();
    for rel in ["", "bin", "packages", "tmp", "layers"] {
        s.extend(entries(home, rel));
    }
    s.extend(entries(home, &format!("packages/{NAME}")));
    s
}

/// The store as it is now, for an inconsistency's report.
fn describe(home: &Path) -> String {
    let mut lines = snapshot(home);
    for v in names(&home.join("packages").join(NAME)) {
        if v.starts_with("sha256-") {
            let d = home.join("packages").join(NAME).join(&v);
            lines.push(format!(
                "packages/{NAME}/{v}: metadata.json {}, launch {}, rootfs {}",
                d.join("metadata.json").is_file(),
                d.join("launch").is_file(),
                d.join("rootfs").is_dir()
            ));
        }
    }
    if let Ok(w) = std::fs::read_to_string(home.join("bin").join(NAME)) {
        lines.push(format!("bin/{NAME} reads {w:?}"));
    }
    lines
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sigkill_at_random_points_leaves_old_or_new_and_the_next_run_recovers() {
    let start = Instant::now();
    let seed = seed();
    println!("crash: seed {seed:#x} (GANTRY_CRASH_SEED={seed:#x} replays these delays)");
    let mut c = Crash::new(seed);
    c.calibrate();
    let mut cycle = 0;
    for _ in 0..ROUNDS {
        for op in [Op::Install, Op::Update, Op::Remove, Op::Install, Op::Remove] {
            cycle += 1;
            c.cycle(cycle, op);
        }
    }
    let summary = c.report();
    println!("crash: latest timings {}", c.timings());
    println!("crash: took {} s", start.elapsed().as_secs());
    assert!(
        c.found.is_empty(),
        "{} inconsistencies (seed {seed:#x}), listed above\n{summary}",
        c.found.len()
    );
    assert!(cycle >= 100, "{summary}");
    for op in [Op::Install, Op::Update] {
        assert!(
            2 * Crash::count(&c.mid_operation, op) >= Crash::count(&c.cycles, op),
            "fewer than half the {op} kills landed mid-operation: the test proved little\n{summary}"
        );
    }
    assert!(
        4 * Crash::count(&c.mid_operation, Op::Remove) >= Crash::count(&c.cycles, Op::Remove),
        "fewer than a quarter of the remove kills landed mid-operation\n{summary}"
    );
}
