//! A registry with mirrors: a tag must name the same digest on `agree` of the sources (three
//! loopback registries here) before anything is pulled; disagreement and an unreachable source
//! are denials that list what each source said, and the answers go into the ledger.

use crate::harness::*;

fn config(primary: &TestRegistry, mirrors: &[&TestRegistry], agree: usize) -> String {
    let list: Vec<String> = mirrors
        .iter()
        .map(|m| format!("\"{}/m\"", m.host()))
        .collect();
    format!(
        "[registries.corp]\nurl = \"{}/m\"\nmirrors = [{}]\nagree = {agree}\nalways_allow_unsigned = true\n",
        primary.host(),
        list.join(", ")
    )
}

#[test]
fn sources_that_agree_install_and_disagreement_or_a_source_down_is_refused() {
    let env = Env::new();
    let (a, b, c) = (
        TestRegistry::start(),
        TestRegistry::start(),
        TestRegistry::start(),
    );
    let bin = hello_binary(env.dir.path(), "mirrored");
    for r in [&a, &b, &c] {
        // The publish is reproducible: the same image, the same digest, on every registry.
        publish_bin(&env, r, None, &bin, "m/tool:1");
    }
    env.write_user_config(config(&a, &[&b, &c], 3));
    env.run(&["install", "corp/tool:1"]).succeeds();
    assert_eq!(env.run_tool("tool", &[]).succeeds().stdout, "mirrored\n");
    let ledger = env.run(&["ledger", "--json"]).succeeds();
    let doc: serde_json::Value = serde_json::from_str(&ledger.stdout).unwrap();
    let agreement = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "agreement")
        .expect("the agreement is in the ledger");
    assert_eq!(agreement["sources"].as_array().unwrap().len(), 3);
    assert!(agreement["agreed"].is_string());

    // One mirror lies: another image under the same tag.
    let other = hello_binary(env.dir.path(), "not the same");
    publish_bin(&env, &c, None, &other, "m/tool:1");
    let r = env
        .run(&["install", "--name", "t2", "corp/tool:1"])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr.contains("needs 3 of its sources") && r.stderr.contains("only 2 do"),
        "{}",
        r.stderr
    );
    for reg in [&a, &b, &c] {
        assert!(
            r.stderr
                .contains(&format!("{}/m/tool says sha256:", reg.host())),
            "{}",
            r.stderr
        );
    }
    assert!(!env.home().join("bin/t2").exists());
    // Two of three is enough when that is what the entry asks.
    env.write_user_config(config(&a, &[&b, &c], 2));
    env.run(&["install", "--name", "t2", "corp/tool:1"])
        .succeeds();
    assert_eq!(env.run_tool("t2", &[]).succeeds().stdout, "mirrored\n");

    // A source that is down counts as not agreeing.
    drop(b);
    env.write_user_config(config(&a, &[&c], 2));
    let r = env
        .run(&["install", "--name", "t3", "corp/tool:1"])
        .fails_with(ExitKind::Denied);
    assert!(r.stderr.contains("only 1 do"), "{}", r.stderr);
    let down = TestRegistry::start();
    let port_gone = down.host();
    drop(down);
    env.write_user_config(format!(
        "[registries.corp]\nurl = \"{}/m\"\nmirrors = [\"{port_gone}/m\", \"{}/m\"]\nagree = 2\nalways_allow_unsigned = true\n",
        a.host(),
        c.host()
    ));
    let r = env
        .run(&["install", "--name", "t3", "corp/tool:1"])
        .fails_with(ExitKind::Denied);
    assert!(r.stderr.contains("could not be asked"), "{}", r.stderr);
}

#[test]
fn a_half_filled_mirror_setting_is_refused() {
    let env = Env::new();
    env.write_user_config(
        "[registries.corp]\nurl = \"r.example/m\"\nmirrors = [\"m.example/m\"]\nagree = 3\n",
    );
    let r = env.run(&["registry", "list"]).fails_with(ExitKind::Usage);
    assert!(
        r.stderr.contains("agree = 3") && r.stderr.contains("use 1 to 2"),
        "{}",
        r.stderr
    );
    env.write_user_config("[registries.corp]\nurl = \"r.example/m\"\nmirrors = [\"oci:/tmp/x\"]\n");
    let r = env.run(&["registry", "list"]).fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("not a layout"), "{}", r.stderr);
}
