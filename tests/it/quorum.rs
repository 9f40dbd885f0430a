//! A signer quorum in real installs: two keys of a two-of-two quorum must both have signed the
//! digest; one is not enough, and the denial says who signed and who is missing.

use crate::harness::*;

#[test]
fn two_of_two_keys_must_sign_and_the_denial_names_who_is_missing() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let (key_a, pub_a) = keygen(&env, "a");
    let (key_b, pub_b) = keygen(&env, "b");
    env.write_user_config(format!(
        "[registries.corp]\nurl = \"{}/q\"\nthreshold = 2\nsigners = [{{ key = \"{}\" }}, {{ key = \"{}\" }}]\n",
        reg.host(),
        pub_a.display(),
        pub_b.display()
    ));
    let bin = hello_binary(env.dir.path(), "quorum");
    publish_bin(&env, &reg, Some(&key_a), &bin, "q/tool:1");
    let r = env
        .run(&["install", "corp/tool:1"])
        .fails_with(ExitKind::Denied);
    assert!(
        r.stderr.contains("2 of 2 required signers, have 1")
            && r.stderr.contains("missing key sha256:"),
        "{}",
        r.stderr
    );
    assert!(!env.home().join("bin/tool").exists());
    // --allow-unsigned does not lift a quorum.
    env.run(&["install", "--allow-unsigned", "corp/tool:1"])
        .fails_with(ExitKind::Denied);
    // The same image signed by the second key too (the publish is reproducible: same digest,
    // one more signature appended).
    publish_bin(&env, &reg, Some(&key_b), &bin, "q/tool:1");
    env.run(&["install", "corp/tool:1"]).succeeds();
    assert_eq!(env.run_tool("tool", &[]).succeeds().stdout, "quorum\n");
    let v = env.run(&["verify", "corp/tool:1", "--json"]).succeeds();
    assert!(v.stdout.contains("\"verified\": true"), "{}", v.stdout);
}
