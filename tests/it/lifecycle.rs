//! The package lifecycle against the loopback registry: an update across a re-pushed tag
//! (refused by install, accepted by update, recorded in the ledger), newer tags found and taken,
//! an update a policy denies, signer continuity warned and enforced, rollback and a rollback the
//! current policy refuses, audit after a policy change, and pins.

use crate::harness::*;

/// A system policy (written into the env's dir) that denies images labelled `bad=yes`.
fn deny_bad_label(env: &Env) {
    let rego = env.path("nobad.rego");
    std::fs::write(
        &rego,
        "package corp.nobad\nimport rego.v1\n\
         deny contains msg if {\n  input.hook == \"manifest\"\n  input.image.config.labels.bad == \"yes\"\n  msg := \"images labelled bad=yes are refused\"\n}\n",
    )
    .unwrap();
    env.write_system_config(&format!("[[policies]]\npath = \"{}\"\n", rego.display()));
}

/// Publishes a hello binary printing `greeting` to `repo_tag`, with labels.
fn publish(env: &Env, reg: &TestRegistry, repo_tag: &str, greeting: &str, labels: &[&str]) {
    let bin = hello_binary(env.dir.path(), greeting);
    let to = format!("{}/{repo_tag}", reg.host());
    let mut args = vec!["publish", bin.to_str().unwrap(), "--to", &to];
    for l in labels {
        args.extend(["--label", l]);
    }
    env.run(&args).succeeds();
}

fn output(env: &Env, name: &str) -> String {
    env.run_tool(name, &[]).succeeds().stdout.trim().to_string()
}

#[test]
fn a_repushed_tag_is_refused_by_install_and_accepted_by_update_into_the_ledger() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let r = format!("{}/tools/hello:1.0", reg.host());
    publish(&env, &reg, "tools/hello:1.0", "v1", &[]);
    env.run(&["install", "--allow-unsigned", &r]).succeeds();
    publish(&env, &reg, "tools/hello:1.0", "v2", &[]);

    let refused = env
        .run(&["install", "--allow-unsigned", &r])
        .fails_with(ExitKind::Denied);
    assert!(
        refused.stderr.contains("gantry update hello"),
        "{}",
        refused.stderr
    );
    assert_eq!(output(&env, "hello"), "v1");

    // --check reports the move and exits 10; without a terminal and without --yes, the same.
    let check = env
        .run(&["update", "--check"])
        .fails_with(ExitKind::Pending);
    assert!(
        check.stdout.contains("hello: tag 1.0 moved"),
        "{}",
        check.stdout
    );
    env.run(&["update"]).fails_with(ExitKind::Pending);
    assert_eq!(output(&env, "hello"), "v1");

    let json = env
        .run(&["update", "--check", "--json"])
        .fails_with(ExitKind::Pending);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["schema"], "gantry.update/v1");
    assert_eq!(doc["packages"][0]["status"], "drift");

    env.run(&["update", "hello", "--yes"]).succeeds();
    assert_eq!(output(&env, "hello"), "v2");
    env.run(&["update", "--check"]).succeeds();
    // The accepted move is in the ledger, with who and when; install of the tag is fine now.
    let ledger = env.run(&["ledger", &r, "--json"]).succeeds();
    let doc: serde_json::Value = serde_json::from_str(&ledger.stdout).unwrap();
    assert_eq!(doc["schema"], "gantry.ledger/v1");
    let accepted: Vec<&serde_json::Value> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "accepted")
        .collect();
    assert_eq!(accepted.len(), 1, "{}", ledger.stdout);
    assert_ne!(accepted[0]["from"], accepted[0]["to"]);
    assert!(accepted[0]["by"].is_string() && accepted[0]["at"].is_string());
    env.run(&["install", "--allow-unsigned", &r]).succeeds();

    // The decision log says it was an update.
    let log = std::fs::read_to_string(env.home().join("decisions.jsonl")).unwrap();
    assert!(log.contains("\"action\":\"update\""), "{log}");

    // A torn ledger line is reported with its number, and kept.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.home().join("ledger.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"torn").unwrap();
    let bad = env.run(&["ledger"]).fails_with(ExitKind::Io);
    assert!(
        bad.stderr.contains("does not parse") && bad.stderr.contains("line "),
        "{}",
        bad.stderr
    );
    env.run(&["install", "--allow-unsigned", &r]).succeeds();
    let text = std::fs::read_to_string(env.home().join("ledger.jsonl")).unwrap();
    assert!(text.contains("{\"torn\n"), "kept as it was");
}

#[test]
fn newer_tags_are_reported_and_taken_with_latest_or_to() {
    let env = Env::new();
    let reg = TestRegistry::start();
    for (tag, out) in [
        ("1.9", "v1.9"),
        ("1.2", "v1.2"),
        ("1.10", "v1.10"),
        ("2.0-rc.1", "rc"),
        ("latest", "latest"),
    ] {
        publish(&env, &reg, &format!("tools/app:{tag}"), out, &[]);
    }
    env.run(&[
        "install",
        "--allow-unsigned",
        "--name",
        "app",
        &format!("{}/tools/app:1.2", reg.host()),
    ])
    .succeeds();
    let check = env
        .run(&["update", "--check"])
        .fails_with(ExitKind::Pending);
    assert!(
        check
            .stdout
            .contains("app: newer tags: 1.10, 1.9 (staying on 1.2"),
        "semver order, no pre-release, no latest: {}",
        check.stdout
    );
    // The default stays on the tag: nothing to apply.
    env.run(&["update", "--yes"]).succeeds();
    assert_eq!(output(&env, "app"), "v1.2");
    env.run(&["update", "app", "--latest", "--yes"]).succeeds();
    assert_eq!(output(&env, "app"), "v1.10");
    let meta =
        std::fs::read_to_string(env.home().join("packages/app/current/metadata.json")).unwrap();
    assert!(meta.contains("tools/app:1.10"), "{meta}");
    env.run(&["update", "app", "--to", "1.9", "--yes"])
        .succeeds();
    assert_eq!(output(&env, "app"), "v1.9");

    // Pinned: skipped, and said so.
    env.run(&["pin", "app"]).succeeds();
    let pinned = env.run(&["update", "app", "--latest", "--yes"]).succeeds();
    assert!(pinned.stdout.contains("app: pinned"), "{}", pinned.stdout);
    assert_eq!(output(&env, "app"), "v1.9");
    env.run(&["unpin", "app"]).succeeds();
    env.run(&["update", "app", "--latest", "--yes"]).succeeds();
    assert_eq!(output(&env, "app"), "v1.10");
}

#[test]
fn an_update_the_policy_denies_leaves_the_old_version_running() {
    let env = Env::new();
    let reg = TestRegistry::start();
    publish(&env, &reg, "tools/app:1", "v1", &[]);
    env.run(&[
        "install",
        "--allow-unsigned",
        "--name",
        "app",
        &format!("{}/tools/app:1", reg.host()),
    ])
    .succeeds();
    deny_bad_label(&env);
    publish(&env, &reg, "tools/app:1", "v2", &["bad=yes"]);
    let r = env
        .run(&["update", "app", "--yes"])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr.contains("bad=yes are refused") && r.stderr.contains("keeps running"),
        "{}",
        r.stderr
    );
    assert_eq!(output(&env, "app"), "v1");
}

#[test]
fn rollback_after_update_and_a_rollback_the_current_policy_refuses() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let r = format!("{}/tools/app:1", reg.host());
    publish(&env, &reg, "tools/app:1", "v1", &["bad=yes"]);
    env.run(&["install", "--allow-unsigned", "--name", "app", &r])
        .succeeds();
    publish(&env, &reg, "tools/app:1", "v2", &[]);
    env.run(&["update", "app", "--yes"]).succeeds();
    assert_eq!(output(&env, "app"), "v2");

    // The version before is kept: back to v1, and forth again.
    let back = env.run(&["rollback", "app"]).succeeds();
    assert!(
        back.stdout.contains("rolled back app to sha256:"),
        "{}",
        back.stdout
    );
    assert_eq!(output(&env, "app"), "v1");
    let j = env.run(&["rollback", "app", "--json"]).succeeds();
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["schema"], "gantry.rollback/v1");
    assert_eq!(output(&env, "app"), "v2");

    // The policy changes: v1 (labelled bad=yes) may no longer be installed, so not rolled back to.
    deny_bad_label(&env);
    let refused = env.run(&["rollback", "app"]).fails_with(ExitKind::Denied);
    assert!(
        refused.stderr.contains("denied by the current policy")
            && refused.stderr.contains("bad=yes are refused"),
        "{}",
        refused.stderr
    );
    assert_eq!(output(&env, "app"), "v2");
    let log = std::fs::read_to_string(env.home().join("decisions.jsonl")).unwrap();
    assert!(log.contains("\"action\":\"rollback\""), "{log}");
    // A digest that is not kept.
    env.run(&["rollback", "app", "--to", "sha256:0000"])
        .fails_with(ExitKind::Usage);
}

#[test]
fn audit_lists_what_the_current_policy_no_longer_allows() {
    let env = Env::new();
    let reg = TestRegistry::start();
    publish(&env, &reg, "tools/good:1", "good", &[]);
    publish(&env, &reg, "tools/bad:1", "bad", &["bad=yes"]);
    for repo in ["good", "bad"] {
        env.run(&[
            "install",
            "--allow-unsigned",
            &format!("{}/tools/{repo}:1", reg.host()),
        ])
        .succeeds();
    }
    env.run(&["audit"]).succeeds();
    deny_bad_label(&env);
    let a = env.run(&["audit"]).fails_with(ExitKind::Denied);
    assert!(
        a.stdout.contains("bad")
            && a.stdout.contains("DENIED")
            && a.stdout.contains("bad=yes are refused"),
        "{}",
        a.stdout
    );
    let j = env.run(&["audit", "--json"]).fails_with(ExitKind::Denied);
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["schema"], "gantry.audit/v1");
    assert_eq!(doc["refused"], 1);
    env.run(&["audit", "good"]).succeeds();
    // The system now forbids --allow-unsigned: unsigned installs no longer pass.
    env.write_system_config("forbid_allow_unsigned = true\n");
    let u = env.run(&["audit", "good"]).fails_with(ExitKind::Denied);
    assert!(u.stdout.contains("DENIED"), "{}", u.stdout);
}

#[test]
fn a_change_of_signer_is_warned_and_where_enforced_refused() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (_, pub_a) = keygen(&env, "a");
    let (_, pub_b) = keygen(&env, "b");
    let url = format!("{}/signed", reg.host());
    env.run(&[
        "registry",
        "add",
        "corp",
        &url,
        "--key",
        pub_a.to_str().unwrap(),
        "--key",
        pub_b.to_str().unwrap(),
    ])
    .succeeds();
    let key = |n: &str| env.path(&format!("{n}.key"));
    let v1 = hello_binary(env.dir.path(), "v1");
    publish_bin(&env, &reg, Some(&key("a")), &v1, "signed/app:1");
    env.run(&["install", "corp/app:1"]).succeeds();
    // v2 signed by the other key: both keys satisfy the registry, but the signer changed.
    let v2 = hello_binary(env.dir.path(), "v2");
    publish_bin(&env, &reg, Some(&key("b")), &v2, "signed/app:1");
    let warned = env.run(&["update", "app", "--yes"]).succeeds();
    assert!(
        warned.stderr.contains("the signers of app changed"),
        "{}",
        warned.stderr
    );
    assert_eq!(output(&env, "app"), "v2");

    // Enforced: refused unless accepted.
    let cfg = env.user_config().replace(
        "[registries.corp]\n",
        "[registries.corp]\nsigner_continuity = \"enforce\"\n",
    );
    env.write_user_config(cfg);
    let v3 = hello_binary(env.dir.path(), "v3");
    publish_bin(&env, &reg, Some(&key("a")), &v3, "signed/app:1");
    let refused = env
        .run(&["update", "app", "--yes"])
        .fails_with(ExitKind::Denied);
    assert!(
        refused.stderr.contains("enforces signer continuity")
            && refused.stderr.contains("--accept-signer-change"),
        "{}",
        refused.stderr
    );
    assert_eq!(output(&env, "app"), "v2");
    env.run(&["update", "app", "--yes", "--accept-signer-change"])
        .succeeds();
    assert_eq!(output(&env, "app"), "v3");
}
