//! Looking after a home, as a user sees it: `doctor` finding and repairing drift made by hand
//! after real installs, `gc` freeing what no installed version uses, `purge`, the PATH block of
//! `path setup`/`unset` and the install hint, shell completion, `--quiet`, and colour on a
//! terminal.

use crate::harness::*;
use std::path::PathBuf;

/// Publishes a hello binary printing `greeting` to the layout `catalog` at `tag`; returns the
/// `oci:` reference.
fn publish_layout(env: &Env, greeting: &str, tag: &str) -> String {
    let bin = hello_binary(env.dir.path(), greeting);
    let t = format!("oci:{}:{tag}", env.path("catalog").display());
    env.run(&["publish", bin.to_str().unwrap(), "--to", &t])
        .succeeds();
    t
}

fn install(env: &Env, name: &str, reference: &str) {
    env.run(&["install", "--allow-unsigned", "--name", name, reference])
        .succeeds();
}

/// `PATH` with the env's wrapper directory first.
fn path_with_bin(env: &Env) -> String {
    format!(
        "{}:{}",
        env.home().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn doctor(env: &Env, args: &[&str], on_path: bool) -> Run {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    let mut c = env.cmd(&all);
    if on_path {
        c.env("PATH", path_with_bin(env));
    }
    Run::from_output(c.output().unwrap())
}

fn version_dir(env: &Env, name: &str) -> PathBuf {
    let pkg = env.home().join("packages").join(name);
    pkg.join(std::fs::read_link(pkg.join("current")).unwrap())
}

fn kinds(json: &serde_json::Value, key: &str) -> Vec<String> {
    json[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn doctor_finds_each_drift_and_fixes_only_the_safe_ones() {
    let env = Env::new();
    let t = publish_layout(&env, "hello", "1");
    for n in ["a", "b", "c"] {
        install(&env, n, &t);
    }
    doctor(&env, &[], true).succeeds();
    let home = env.home();
    // a: its wrapper is gone, and an install left a version without metadata or launch.
    std::fs::remove_file(home.join("bin/a")).unwrap();
    let half = home.join(format!("packages/a/sha256-{}", "0".repeat(64)));
    std::fs::create_dir_all(half.join("rootfs")).unwrap();
    // b: a remove killed after its rename: the package is in tmp/, its wrapper still in bin/.
    std::fs::rename(home.join("packages/b"), home.join("tmp/remove-b-1")).unwrap();
    // c: `current` points at a version that is not there.
    let c_current = home.join("packages/c/current");
    std::fs::remove_file(&c_current).unwrap();
    std::os::unix::fs::symlink(format!("sha256-{}", "f".repeat(64)), &c_current).unwrap();
    // Staging of a killed install, a torn ledger, a decision log with a bad line.
    std::fs::create_dir_all(home.join("tmp/stage-x/rootfs")).unwrap();
    let ledger = "{\"registry\":\"r\",\"repository\":\"x\",\"tag\":\"1\",\"digest\":\"sha256:a\",\"seen\":\"t\"}\n{\"regis";
    std::fs::write(home.join("ledger.jsonl"), ledger).unwrap();
    let mut log = std::fs::read_to_string(home.join("decisions.jsonl")).unwrap();
    log.push_str("not a record\n");
    std::fs::write(home.join("decisions.jsonl"), &log).unwrap();

    let r = doctor(&env, &["--json"], false).fails_with(ExitKind::Io);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut found = kinds(&v, "problems");
    found.sort();
    assert_eq!(
        found,
        [
            "broken_current",
            "decision_log",
            "incomplete_version",
            "ledger",
            "leftover",
            "leftover",
            "missing_wrapper",
            "not_on_path",
            "orphan_wrapper"
        ],
        "{}",
        r.stdout
    );
    let text = doctor(&env, &[], false).fails_with(ExitKind::Io);
    assert!(
        text.stdout.contains("decisions.jsonl is broken at line 4")
            && text.stdout.contains("ledger.jsonl line 2")
            && text.stdout.contains("run `gantry path setup`")
            && text.stderr.contains("9 problem(s)"),
        "{}\n{}",
        text.stdout,
        text.stderr
    );
    // Looking changed nothing.
    assert!(!home.join("bin/a").exists() && half.exists() && home.join("bin/b").exists());

    let fixed = doctor(&env, &["--fix", "--json"], true).fails_with(ExitKind::Io);
    let v: serde_json::Value = serde_json::from_str(&fixed.stdout).unwrap();
    let mut done = kinds(&v, "fixed");
    done.sort();
    assert_eq!(
        done,
        [
            "incomplete_version",
            "leftover",
            "leftover",
            "missing_wrapper",
            "orphan_wrapper"
        ]
    );
    let mut left = kinds(&v, "problems");
    left.sort();
    assert_eq!(left, ["broken_current", "decision_log", "ledger"]);
    assert_eq!(env.run_tool("a", &[]).stdout, "hello\n");
    assert!(!half.exists() && !home.join("bin/b").exists() && env.staging_is_empty());
    // The logs are evidence: never touched.
    assert_eq!(
        std::fs::read_to_string(home.join("ledger.jsonl")).unwrap(),
        ledger
    );
    assert_eq!(
        std::fs::read_to_string(home.join("decisions.jsonl")).unwrap(),
        log
    );
    // What doctor cannot repair, the user can, as it says.
    let plain = doctor(&env, &[], true).fails_with(ExitKind::Io);
    assert!(
        plain
            .stdout
            .contains("run `gantry remove c`, then install it again"),
        "{}",
        plain.stdout
    );
    env.run(&["remove", "c"]).succeeds();
    std::fs::remove_file(home.join("ledger.jsonl")).unwrap();
    std::fs::write(
        home.join("decisions.jsonl"),
        log.strip_suffix("not a record\n").unwrap(),
    )
    .unwrap();
    let ok = doctor(&env, &["--fix"], true).succeeds();
    assert!(ok.stdout.contains("is healthy"), "{}", ok.stdout);
}

#[test]
fn doctor_rewrites_a_wrapper_but_never_a_foreign_file() {
    let env = Env::new();
    let t = publish_layout(&env, "hi", "1");
    install(&env, "hi", &t);
    install(&env, "mine", &t);
    let w = env.home().join("bin/hi");
    std::fs::write(&w, "#!/bin/sh\n# gantry-wrapper: hi\nexec false\n").unwrap();
    let mine = env.home().join("bin/mine");
    std::fs::write(&mine, "#!/bin/sh\necho my own\n").unwrap();
    let r = doctor(&env, &["--fix"], true).fails_with(ExitKind::Io);
    assert!(
        r.stdout.contains("fixed:") && r.stdout.contains("wrote"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("was not written by gantry, so package mine has no command"),
        "{}",
        r.stdout
    );
    assert_eq!(env.run_tool("hi", &[]).stdout, "hi\n");
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "#!/bin/sh\necho my own\n"
    );
}

#[test]
fn gc_frees_the_layers_of_a_removed_package_and_keeps_those_in_use() {
    let env = Env::new();
    install(&env, "keep", &publish_layout(&env, "kept", "1"));
    install(&env, "gone", &publish_layout(&env, "removed", "2"));
    let layers_of = |name: &str| -> Vec<String> {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(version_dir(&env, name).join("metadata.json")).unwrap(),
        )
        .unwrap();
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect()
    };
    let layer_dir = |d: &str| env.home().join("layers").join(&d[7..]);
    let (kept, gone) = (layers_of("keep"), layers_of("gone"));
    assert_eq!((kept.len(), gone.len()), (1, 1));
    assert_ne!(kept, gone);
    let nothing = env.run(&["gc"]).succeeds();
    assert!(
        nothing.stdout.contains("nothing to remove"),
        "{}",
        nothing.stdout
    );

    env.run(&["remove", "gone"]).succeeds();
    let dry = env.run(&["gc", "--dry-run"]).succeeds();
    assert!(
        dry.stdout
            .contains(&format!("would remove layer {}", gone[0]))
            && dry.stdout.contains("would free")
            && !dry.stdout.contains(" 0 B"),
        "{}",
        dry.stdout
    );
    assert!(layer_dir(&gone[0]).exists(), "a dry run removes nothing");
    let real = env.run(&["gc"]).succeeds();
    assert!(
        real.stdout.contains("removed 1 unused layer(s)") && real.stdout.contains("freed"),
        "{}",
        real.stdout
    );
    assert!(!layer_dir(&gone[0]).exists() && layer_dir(&kept[0]).exists());
    assert_eq!(env.run_tool("keep", &[]).stdout, "kept\n");

    // A version whose metadata predates the layer list: gc cannot tell what it uses, so it keeps
    // every layer and says why.
    install(&env, "gone", &publish_layout(&env, "removed", "2"));
    env.run(&["remove", "gone"]).succeeds();
    let meta = version_dir(&env, "keep").join("metadata.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    m.as_object_mut().unwrap().remove("layers");
    std::fs::write(&meta, m.to_string()).unwrap();
    let careful = env.run(&["gc"]).succeeds();
    assert!(
        careful.stderr.contains("do not record the layers they use")
            && careful.stderr.contains("keep@sha256:"),
        "{}",
        careful.stderr
    );
    assert!(layer_dir(&gone[0]).exists());
}

#[test]
fn purge_asks_or_refuses_and_removes_only_the_home() {
    let env = Env::new();
    install(&env, "hello", &publish_layout(&env, "hello", "1"));
    let outside = env.path("precious.txt");
    std::fs::write(&outside, "mine").unwrap();
    std::os::unix::fs::symlink(&outside, env.home().join("bin/link")).unwrap();
    let r = env.run(&["purge"]).fails_with(ExitKind::Usage);
    assert!(
        r.stderr.contains("stdin is not a terminal; pass --yes"),
        "{}",
        r.stderr
    );
    assert!(env.home().join("bin/hello").exists());
    // A home that is the user's home directory, or holds what gantry did not make, is refused.
    let c = env
        .cmd(&["purge", "--yes"])
        .env("GANTRY_HOME", env.dir.path())
        .output()
        .unwrap();
    let r = Run::from_output(c).fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("your home directory"), "{}", r.stderr);
    std::fs::write(env.home().join("notes.txt"), "x").unwrap();
    let r = env.run(&["purge", "--yes"]).fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("notes.txt"), "{}", r.stderr);
    std::fs::remove_file(env.home().join("notes.txt")).unwrap();

    let ok = env.run(&["purge", "--yes"]).succeeds();
    assert!(ok.stdout.contains("removed"), "{}", ok.stdout);
    assert!(!env.home().exists());
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "mine");
    let again = env.run(&["purge", "--yes"]).succeeds();
    assert!(
        again.stdout.contains("nothing to purge"),
        "{}",
        again.stdout
    );
}

#[test]
fn completion_scripts_load() {
    let env = Env::new();
    let script = format!(
        "source <('{}' completion bash) && complete -p gantry",
        gantry_bin()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("-F _gantry gantry"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shell in ["zsh", "fish", "powershell"] {
        let r = env.run(&["completion", shell]).succeeds();
        assert!(
            r.stdout.contains("gantry") && r.stdout.contains("doctor"),
            "{shell}"
        );
    }
    env.run(&["completion", "tcsh"]).fails_with(ExitKind::Usage);
}

#[test]
fn path_setup_is_idempotent_and_unset_removes_exactly_its_block() {
    let env = Env::new();
    let bin = env.home().join("bin");
    let printed = env.run(&["path"]).succeeds();
    assert_eq!(printed.stdout.trim(), bin.display().to_string());

    let rc = env.path(".bashrc");
    let original = "# my bashrc\nalias ll='ls -l'\nexport EDITOR=vi\n";
    std::fs::write(&rc, original).unwrap();
    let setup = |shell: Option<&str>| {
        let mut args = vec!["path", "setup"];
        if let Some(s) = shell {
            args.extend(["--shell", s]);
        }
        Run::from_output(env.cmd(&args).env("SHELL", "/bin/bash").output().unwrap()).succeeds()
    };
    setup(None);
    let once = std::fs::read_to_string(&rc).unwrap();
    let again = setup(Some("bash"));
    assert!(again.stdout.contains("already"), "{}", again.stdout);
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), once);
    assert_eq!(once.matches("# >>> gantry >>>").count(), 1);
    assert!(once.starts_with(original), "{once}");
    // The block works: a shell reading the file finds the wrapper directory on PATH.
    let check = format!(". '{}'; echo \"$PATH\"", rc.display());
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &check])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}:/usr/bin:/bin", bin.display())
    );

    env.run(&["path", "unset", "--shell", "bash"]).succeeds();
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), original);
    let none = env.run(&["path", "unset", "--shell", "bash"]).succeeds();
    assert!(none.stdout.contains("no gantry block"), "{}", none.stdout);

    // The shell comes from $SHELL; fish's file is made where fish reads it.
    let fish = env
        .cmd(&["path", "setup"])
        .env("SHELL", "/usr/bin/fish")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    Run::from_output(fish).succeeds();
    let config = std::fs::read_to_string(env.path(".config/fish/config.fish")).unwrap();
    assert!(
        config.contains(&format!("or set -gx PATH '{}' $PATH", bin.display())),
        "{config}"
    );
    let unknown = env
        .cmd(&["path", "setup"])
        .env("SHELL", "/bin/tcsh")
        .output()
        .unwrap();
    let r = Run::from_output(unknown).fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("--shell"), "{}", r.stderr);
}

#[test]
fn the_first_install_hints_at_path_setup_when_bin_is_not_on_path() {
    let env = Env::new();
    let t = publish_layout(&env, "hello", "1");
    let hint = format!(
        "add {} to PATH: run `gantry path setup`",
        env.home().join("bin").display()
    );
    let first = env
        .run(&["install", "--allow-unsigned", "--name", "a", &t])
        .succeeds();
    assert!(first.stderr.contains(&hint), "{}", first.stderr);
    let second = env
        .run(&["install", "--allow-unsigned", "--name", "b", &t])
        .succeeds();
    assert!(
        !second.stderr.contains("gantry path setup"),
        "{}",
        second.stderr
    );

    let on_path = Env::new();
    let t = publish_layout(&on_path, "hello", "1");
    let out = on_path
        .cmd(&["install", "--allow-unsigned", &t])
        .env("PATH", path_with_bin(&on_path))
        .output()
        .unwrap();
    let r = Run::from_output(out).succeeds();
    assert!(!r.stderr.contains("gantry path setup"), "{}", r.stderr);
}

#[test]
fn quiet_reports_nothing_but_errors() {
    let env = Env::new();
    let t = publish_layout(&env, "hello", "1");
    let r = env
        .run(&["--quiet", "install", "--allow-unsigned", &t])
        .succeeds();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let r = env.run(&["remove", "-q", "hello"]).succeeds();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let r = env.run(&["install", "-q", &t]).fails_with(ExitKind::Denied);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.starts_with("error:") && r.stderr.contains("--allow-unsigned"),
        "{}",
        r.stderr
    );
    env.run(&["-q", "-v", "list"]).fails_with(ExitKind::Usage);
}

/// Runs `args` under `script` (util-linux, on every Debian machine), so gantry's stderr is a
/// terminal.
fn on_a_terminal(env: &Env, args: &[&str], no_color: bool) -> Option<String> {
    which("script").expect("`script` (util-linux) is needed to give gantry a terminal");
    let line = std::iter::once(gantry_bin())
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .env("GANTRY_HOME", env.home())
        .env("GANTRY_SYSTEM_CONFIG", env.path("system.toml"))
        .env("HOME", env.dir.path())
        .env_remove("NO_COLOR");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let out = c.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn verdicts_are_coloured_on_a_terminal_unless_no_color_and_never_when_piped() {
    let env = Env::new();
    let t = publish_layout(&env, "hello", "1");
    let yellow = "\u{1b}[33m";
    let tty = on_a_terminal(
        &env,
        &["install", "--allow-unsigned", "--name", "a", &t],
        false,
    )
    .expect("script ran");
    assert!(
        tty.contains(&format!("{yellow}     warning [signatures]")),
        "{tty:?}"
    );
    let plain = on_a_terminal(
        &env,
        &["install", "--allow-unsigned", "--name", "b", &t],
        true,
    )
    .unwrap();
    assert!(
        plain.contains("     warning [signatures]") && !plain.contains(yellow),
        "{plain:?}"
    );
    let piped = env
        .run(&["install", "--allow-unsigned", "--name", "c", &t])
        .succeeds();
    assert!(!piped.stderr.contains('\u{1b}'), "{:?}", piped.stderr);
}

#[test]
fn registry_add_and_remove_keep_the_users_comments() {
    let env = Env::new();
    let original = "# gantry config, by hand\ndefault_registry = \"chainguard\" # public images\n\n# Chainguard, signed in CI\n[registries.chainguard]\nurl = \"docker.io/chainguard\"   # upstream\nissuer = \"https://token.actions.githubusercontent.com\"\nidentity_regex = \"https://github.com/chainguard-images/images/.*\"\n\n[limits]\n# small disk\nmax_total_bytes = 1073741824\n";
    env.write_user_config(original);
    env.run(&["registry", "add", "corp", "registry.corp.example/team"])
        .succeeds();
    let added = env.user_config();
    assert!(
        added.contains("\n[registries.corp]\nurl = \"registry.corp.example/team\"\n"),
        "{added}"
    );
    assert_eq!(
        added.replace(
            "\n[registries.corp]\nurl = \"registry.corp.example/team\"\n",
            ""
        ),
        original,
    );
    env.run(&["registry", "remove", "corp"]).succeeds();
    assert_eq!(env.user_config(), original);
    env.run(&[
        "registry",
        "add",
        "corp",
        "registry.corp.example",
        "--default",
    ])
    .succeeds();
    let cfg = env.user_config();
    assert!(
        cfg.contains("default_registry = \"corp\" # public images")
            && cfg.contains("# Chainguard, signed in CI\n")
            && cfg.contains("# small disk\n"),
        "{cfg}"
    );
    let listed = env.run(&["registry", "list"]).succeeds();
    assert!(listed.stdout.contains("(default)"), "{}", listed.stdout);
}
