//! The policy engine in real installs: configured Rego policies and Wasm plugins at their hooks,
//! the system layer that the user cannot relax, warn mode, parse errors before any pull, and the
//! decision log.

use crate::harness::*;

fn publish_layout(env: &Env, tag: &str) -> String {
    let bin = hello_binary(env.dir.path(), "p");
    let t = format!("oci:{}:{tag}", env.path("catalog").display());
    env.run(&["publish", bin.to_str().unwrap(), "--to", &t])
        .succeeds();
    t
}

#[test]
fn user_policy_denies_a_mutable_tag_and_the_log_names_its_source() {
    let env = Env::new();
    let t = publish_layout(&env, "latest");
    env.write_user_config(format!(
        "[[policies]]\npath = \"{}/policies/tags.rego\"\n",
        repo_root()
    ));
    let r = env
        .run(&["install", "--allow-unsigned", "--name", "hello", &t])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr.contains("mutable tag 'latest'") && r.stderr.contains("policies/tags.rego"),
        "{}",
        r.stderr
    );
    assert!(!env.home().join("bin/hello").exists());
    // The denial is in the hash-chained log; explain reads it back.
    let log = std::fs::read_to_string(env.home().join("decisions.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1);
    assert!(log.contains("\"denied\""), "{log}");
    let e = env.run(&["explain", "hello"]).succeeds();
    assert!(
        e.stdout.contains("denied") && e.stdout.contains("tags.rego"),
        "{}",
        e.stdout
    );

    // Policy config comes from the config file: allowing `latest` lets it through.
    env.write_user_config(format!(
        "[[policies]]\npath = \"{}/policies/tags.rego\"\nconfig = {{ mutable_tags = [] }}\n",
        repo_root()
    ));
    env.run(&["install", "--allow-unsigned", &t]).succeeds();
    let log = std::fs::read_to_string(env.home().join("decisions.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);
}

#[test]
fn system_policies_always_run_and_warn_mode_can_be_forbidden() {
    let env = Env::new();
    let img = env.path("img");
    std::fs::create_dir_all(img.join("usr/local/bin")).unwrap();
    std::fs::copy(
        hello_binary(env.dir.path(), "s"),
        img.join("usr/local/bin/hello"),
    )
    .unwrap();
    // A file outside the allowed prefixes.
    std::fs::create_dir_all(img.join("etc")).unwrap();
    std::fs::write(img.join("etc/cron"), "x").unwrap();
    let t = format!("oci:{}:1", env.path("catalog").display());
    env.run(&[
        "publish",
        img.to_str().unwrap(),
        "--entrypoint",
        "/usr/local/bin/hello",
        "--to",
        &t,
    ])
    .succeeds();
    env.write_system_config(
        &format!("[[policies]]\npath = \"{}/policies/files.rego\"\nconfig = {{ allowed_prefixes = [\"usr/\"] }}\n", repo_root()),
    );
    // The user layer cannot switch the system policy off: it has no say over it.
    env.write_user_config("");
    let r = env
        .run(&["install", "--allow-unsigned", &t])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr.contains("etc/cron") && r.stderr.contains("[contents]"),
        "{}",
        r.stderr
    );

    // A layout catalog in warn mode: the denial is reported, the install goes on...
    env.write_user_config(format!(
        "[registries.cat]\nurl = \"oci:{}\"\nmode = \"warn\"\nalways_allow_unsigned = true\n",
        env.path("catalog").display()
    ));
    let r = env.run(&["install", &t]).succeeds();
    assert!(r.stderr.contains("denied (warn mode)"), "{}", r.stderr);
    env.run(&["remove", "hello"]).succeeds();
    // ...unless the system layer forbids warn mode.
    let sys = std::fs::read_to_string(env.path("system.toml")).unwrap();
    env.write_system_config(&format!("forbid_warn_mode = true\n{sys}"));
    env.run(&["install", &t]).fails_with(ExitKind::Denied);
}

#[test]
fn broken_policy_is_a_usage_error_before_anything_is_pulled() {
    let env = Env::new();
    std::fs::write(
        env.path("bad.rego"),
        "package bad\nimport rego.v1\n\ndeny contains msg if {\n  msg := \n}\n",
    )
    .unwrap();
    env.write_user_config(format!(
        "[[policies]]\npath = \"{}\"\n",
        env.path("bad.rego").display()
    ));
    // Nothing listens on port 1: reaching the registry would be exit 5.
    let r = env
        .run(&["install", "--allow-unsigned", "127.0.0.1:1/x/y:1"])
        .fails_with(ExitKind::Usage);
    assert!(
        r.stderr.contains("bad.rego") && r.stderr.contains(":5") || r.stderr.contains("line 5"),
        "{}",
        r.stderr
    );
    env.write_user_config(format!(
        "[[policies]]\npath = \"{}/missing.rego\"\n",
        env.dir.path().display()
    ));
    let r = env
        .run(&["install", "--allow-unsigned", "127.0.0.1:1/x/y:1"])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("missing.rego"), "{}", r.stderr);
}

#[test]
fn hostile_plugin_denies_and_never_allows() {
    let env = Env::new();
    let t = publish_layout(&env, "1");
    for (wat, reason) in [("loop", "budget"), ("trap", "trap"), ("bomb", "memory")] {
        env.write_user_config(format!(
            "[[plugins]]\npath = \"{}/tests/data/plugins/{wat}.wat\"\nname = \"{wat}\"\n",
            repo_root()
        ));
        let start = std::time::Instant::now();
        let r = env.run(&["install", "--allow-unsigned", &t]);
        assert_eq!(r.code, code(ExitKind::Denied), "{wat}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("plugin {wat}")),
            "{wat}: {}",
            r.stderr
        );
        assert!(
            r.stderr.to_lowercase().contains(reason)
                || r.stderr.contains("fuel")
                || r.stderr.contains("time limit"),
            "{wat}: {}",
            r.stderr
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{wat} took {:?}",
            start.elapsed()
        );
        assert!(!env.home().join("bin/hello").exists());
    }
    env.write_user_config(format!(
        "[[plugins]]\npath = \"{}/tests/data/plugins/ungranted.wat\"\n",
        repo_root()
    ));
    let r = env
        .run(&["install", "--allow-unsigned", &t])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("ungranted"), "{}", r.stderr);
}
