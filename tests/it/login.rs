//! Registries that need credentials, and listing what a registry holds: `login` checks a password
//! against a real docker-registry with htpasswd auth before it stores anything, `auth.json` stays
//! private, `logout` removes it, installs and pushes use what was stored and a refusal says what
//! was tried; credential helpers named by Docker's config (scripts of our own on `PATH`) store and
//! erase, and one that hangs, floods or prints garbage is a clear error; `tags` and `search`
//! follow pagination but never a `Link` to another host, and a registry without a catalog says
//! so.

use crate::harness::*;
use crate::proxy::{Fault, FaultProxy};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret pass";

/// `gantry login HOST -u USER --password-stdin` with `password` (and a newline) on stdin.
fn login(env: &Env, c: Command, password: &str) -> Run {
    env.run_with_stdin(c, format!("{password}\n").as_bytes())
}

fn login_cmd(env: &Env, registry: &str) -> Command {
    env.cmd(&["login", registry, "-u", USER, "--password-stdin"])
}

fn auth_json(env: &Env) -> PathBuf {
    env.home().join("auth.json")
}

fn install(env: &Env, name: &str, reference: &str) -> Command {
    env.cmd(&["install", "--allow-unsigned", "--name", name, reference])
}

#[test]
fn login_is_checked_stored_privately_used_and_removed_by_logout() {
    let env = Env::new();
    let reg = TestRegistry::start_with_htpasswd(USER, PASSWORD);
    let host = reg.host();
    let reference = format!("{host}/tools/app:1");

    // Pushing needs credentials: refused, and the message says how to log in.
    let bin = hello_binary(env.dir.path(), "hi");
    let r = env
        .run(&["publish", bin.to_str().unwrap(), "--to", &reference])
        .fails_with(ExitKind::Registry);
    assert!(
        r.stderr.contains(&format!("gantry login {host}")),
        "{}",
        r.stderr
    );

    // A wrong password is refused and nothing is stored.
    let r = login(&env, login_cmd(&env, &host), "wrong").fails_with(ExitKind::Registry);
    assert!(
        r.stderr.contains("refused the credentials of user alice")
            && r.stderr.contains("nothing was stored"),
        "{}",
        r.stderr
    );
    assert!(!auth_json(&env).exists());

    // The right one is stored, private from the start.
    let r = login(&env, login_cmd(&env, &host), PASSWORD).succeeds();
    assert!(
        r.stdout.contains(&format!("logged in to {host} as alice")),
        "{}",
        r.stdout
    );
    let mode = std::fs::metadata(auth_json(&env))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "auth.json is private");
    assert!(std::fs::read_to_string(auth_json(&env))
        .unwrap()
        .contains(&host));

    // Publish and install now authenticate with it.
    publish_bin(&env, &reg, None, &bin, "tools/app:1");
    Run::from_output(install(&env, "app", &reference).output().unwrap()).succeeds();
    assert_eq!(env.run_tool("app", &[]).succeeds().stdout, "hi\n");
    let r = env.run(&["tags", &format!("{host}/tools/app")]).succeeds();
    assert_eq!(r.stdout, "1\n");

    // Logout removes it; then reads are refused, saying they went anonymously.
    let r = env.run(&["logout", &host]).succeeds();
    assert!(r.stdout.contains("logged out of"), "{}", r.stdout);
    let left = std::fs::read_to_string(auth_json(&env)).unwrap();
    assert!(!left.contains(&host), "{left}");
    let r = Run::from_output(install(&env, "app2", &reference).output().unwrap())
        .fails_with(ExitKind::Registry);
    assert!(
        r.stderr.contains("401 Unauthorized")
            && r.stderr.contains("anonymously")
            && r.stderr.contains(&format!("gantry login {host}")),
        "{}",
        r.stderr
    );
    assert!(!env.home().join("bin/app2").exists());
    let r = env.run(&["logout", &host]).succeeds();
    assert!(r.stdout.contains("not logged in"), "{}", r.stdout);

    // A configured registry's name stands for its host.
    env.run(&["registry", "add", "corp", &format!("{host}/tools")])
        .succeeds();
    login(&env, login_cmd(&env, "corp"), PASSWORD).succeeds();
    Run::from_output(install(&env, "app3", "corp/app:1").output().unwrap()).succeeds();

    // Credentials that are refused are named in the message.
    let auth = format!(
        r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
        base64_of(&format!("{USER}:expired"))
    );
    std::fs::write(auth_json(&env), auth).unwrap();
    let r = env
        .run(&["tags", &format!("{host}/tools/app")])
        .fails_with(ExitKind::Registry);
    assert!(
        r.stderr.contains("as user alice from") && r.stderr.contains("auth.json"),
        "{}",
        r.stderr
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn login_asks_for_nothing_without_a_terminal_and_names_what_is_wrong() {
    let env = Env::new();
    // No --password-stdin and no terminal: a usage error before anything is sent.
    let r = env
        .run(&["login", "127.0.0.1:9", "-u", USER])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("--password-stdin"), "{}", r.stderr);
    let r = env
        .run(&["login", "127.0.0.1:9"])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("--username"), "{}", r.stderr);
    let c = env.cmd(&["login", "127.0.0.1:9", "--password-stdin"]);
    let r = env.run_with_stdin(c, b"pw").fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("needs --username"), "{}", r.stderr);
    let r = login(&env, login_cmd(&env, "127.0.0.1:9"), "").fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("empty password"), "{}", r.stderr);
    // A name that is neither configured nor a host.
    let r = login(&env, login_cmd(&env, "corpp"), "pw").fails_with(ExitKind::Usage);
    assert!(
        r.stderr.contains("no registry named 'corpp'"),
        "{}",
        r.stderr
    );
    let r = env
        .run(&["logout", "http://x.example"])
        .fails_with(ExitKind::Usage);
    assert!(r.stderr.contains("scheme"), "{}", r.stderr);
    assert!(!auth_json(&env).exists());
}

#[test]
fn a_world_readable_auth_json_is_a_local_error() {
    let env = Env::new();
    std::fs::create_dir_all(env.home()).unwrap();
    std::fs::write(auth_json(&env), r#"{"auths":{}}"#).unwrap();
    std::fs::set_permissions(auth_json(&env), std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = Run::from_output(
        install(&env, "app", "127.0.0.1:9/tools/app:1")
            .output()
            .unwrap(),
    )
    .fails_with(ExitKind::Io);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    // login rewrites it private.
    let reg = TestRegistry::start_with_htpasswd(USER, PASSWORD);
    login(&env, login_cmd(&env, &reg.host()), PASSWORD).succeeds();
    let mode = std::fs::metadata(auth_json(&env))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A `bin/` with credential helper scripts, first on `PATH`, and a Docker config naming one.
struct Helpers {
    dir: tempfile::TempDir,
}

impl Helpers {
    fn new() -> Helpers {
        let h = Helpers {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(h.dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(h.dir.path().join("docker")).unwrap();
        h
    }

    /// Writes `docker-credential-NAME` with `body`. Written by a shell of its own, so no
    /// thread of this test process holds it open for writing when it is run (ETXTBSY).
    fn script(&self, name: &str, body: &str) {
        let path = self
            .dir
            .path()
            .join(format!("bin/docker-credential-{name}"));
        let mut c = Command::new("sh");
        c.args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
            .arg(&path);
        let text = format!("#!/bin/sh\n{body}\n");
        let mut child = c.stdin(std::process::Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// Docker's `config.json`.
    fn docker_config(&self, json: &str) {
        std::fs::write(self.dir.path().join("docker/config.json"), json).unwrap();
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `c` with our `bin/` first on `PATH` and `DOCKER_CONFIG` set.
    fn on(&self, mut c: Command) -> Command {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env("DOCKER_CONFIG", self.dir.path().join("docker"));
        c
    }
}

/// A helper keeping one credential in `store` (the JSON `store` sends is what `get` prints).
fn file_helper(store: &Path) -> String {
    let store = store.display();
    format!(
        r#"store='{store}'
case "$1" in
  store) cat > "$store" ;;
  get) read -r server
       if [ -f "$store" ] && grep -qF "\"ServerURL\":\"$server\"" "$store"; then cat "$store"
       else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) if [ -f "$store" ]; then rm "$store"
         else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) exit 2 ;;
esac"#
    )
}

#[test]
fn login_stores_through_the_credential_helper_docker_config_names() {
    let env = Env::new();
    let reg = TestRegistry::start_with_htpasswd(USER, PASSWORD);
    let host = reg.host();
    let h = Helpers::new();
    let store = h.path("helper-store.json");
    h.script("test", &file_helper(&store));
    h.docker_config(r#"{"credsStore":"test"}"#);

    let r = login(&env, h.on(login_cmd(&env, &host)), PASSWORD).succeeds();
    assert!(
        r.stdout
            .contains("credential helper docker-credential-test"),
        "{}",
        r.stdout
    );
    let kept = std::fs::read_to_string(&store).unwrap();
    assert!(kept.contains(USER) && kept.contains(&host), "{kept}");
    assert!(!auth_json(&env).exists(), "nothing in gantry's own file");

    // Publish and install get the credentials from the helper.
    let bin = hello_binary(env.dir.path(), "helped");
    let reference = format!("{host}/tools/app:1");
    let mut publish = h.on(env.cmd(&["publish", bin.to_str().unwrap(), "--to", &reference]));
    Run::from_output(publish.output().unwrap()).succeeds();
    Run::from_output(h.on(install(&env, "app", &reference)).output().unwrap()).succeeds();
    assert_eq!(env.run_tool("app", &[]).succeeds().stdout, "helped\n");

    // Logout erases it from the helper; reads go anonymously again.
    let r = Run::from_output(h.on(env.cmd(&["logout", &host])).output().unwrap()).succeeds();
    assert!(r.stdout.contains("docker-credential-test"), "{}", r.stdout);
    assert!(!store.exists());
    let r = Run::from_output(h.on(install(&env, "app2", &reference)).output().unwrap())
        .fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("anonymously"), "{}", r.stderr);

    // credHelpers for the host comes before credsStore.
    h.script("other", &file_helper(&h.path("other-store.json")));
    h.docker_config(&format!(
        r#"{{"credsStore":"test","credHelpers":{{"{host}":"other"}}}}"#
    ));
    login(&env, h.on(login_cmd(&env, &host)), PASSWORD).succeeds();
    assert!(h.path("other-store.json").exists() && !store.exists());
    Run::from_output(h.on(install(&env, "app2", &reference)).output().unwrap()).succeeds();
}

#[test]
fn a_hanging_credential_helper_is_killed_after_the_timeout() {
    let env = Env::new();
    let h = Helpers::new();
    let pid_file = h.path("sleeper.pid");
    h.script(
        "hang",
        &format!("sleep 120 &\necho $! > '{}'\nwait", pid_file.display()),
    );
    h.docker_config(r#"{"credsStore":"hang"}"#);
    let t = Instant::now();
    let r = Run::from_output(
        h.on(install(&env, "app", "127.0.0.1:9/tools/app:1"))
            .output()
            .unwrap(),
    )
    .fails_with(ExitKind::Io);
    let took = t.elapsed();
    let timeout = gantry::credentials::HELPER_TIMEOUT;
    let said = format!(
        "did not finish within {} s and was killed",
        timeout.as_secs()
    );
    assert!(
        r.stderr.contains("docker-credential-hang get") && r.stderr.contains(&said),
        "{}",
        r.stderr
    );
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(30),
        "{took:?}"
    );
    // What the helper started was killed with it.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
    assert!(
        matches!(state, None | Some('Z' | 'X')),
        "the helper's child still runs: {stat}"
    );
}

#[test]
fn credential_helpers_that_misbehave_are_clear_errors_naming_them() {
    let env = Env::new();
    let h = Helpers::new();
    h.script("garbage", "echo 'this is not json'");
    h.script("flood", "head -c 1000000 /dev/zero | tr '\\0' x");
    h.script("fails", "echo 'keychain locked' >&2; exit 3");
    h.script(
        "token",
        r#"printf '%s' '{"ServerURL":"x","Username":"<token>","Secret":"a b"}'"#,
    );
    let flood = format!(
        "printed more than {} bytes",
        gantry::credentials::HELPER_MAX_OUTPUT
    );
    for (name, expected) in [
        ("garbage", "printed something that is not a credential"),
        ("flood", flood.as_str()),
        ("fails", "keychain locked"),
        ("token", "not a credential"),
    ] {
        h.docker_config(&format!(r#"{{"credsStore":"{name}"}}"#));
        let r = Run::from_output(
            h.on(install(&env, "app", "127.0.0.1:9/tools/app:1"))
                .output()
                .unwrap(),
        )
        .fails_with(ExitKind::Io);
        assert!(
            r.stderr.contains(&format!("docker-credential-{name}")) && r.stderr.contains(expected),
            "{name}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    // A helper name that is a path is refused, not run.
    h.docker_config(r#"{"credHelpers":{"127.0.0.1:9":"../../../bin/sh"}}"#);
    let r = Run::from_output(
        h.on(install(&env, "app", "127.0.0.1:9/tools/app:1"))
            .output()
            .unwrap(),
    )
    .fails_with(ExitKind::Usage);
    assert!(
        r.stderr.contains("not a credential helper name"),
        "{}",
        r.stderr
    );
    // login cannot store through a helper that is not installed.
    h.docker_config(r#"{"credsStore":"absent"}"#);
    let r = login(&env, h.on(login_cmd(&env, "127.0.0.1:9")), PASSWORD).fails_with(ExitKind::Usage);
    assert!(
        r.stderr
            .contains("docker-credential-absent is not installed"),
        "{}",
        r.stderr
    );
}

/// Pushes `tags` onto the manifest of `repo:1`.
fn push_tags(reg: &TestRegistry, repo: &str, tags: &[&str]) {
    use gantry::source::{ImageSource, ManifestRef};
    let client = reg.client(repo);
    block_on(async {
        let m = client
            .fetch_manifest(&ManifestRef::Tag("1".into()))
            .await
            .unwrap()
            .unwrap();
        for t in tags {
            client
                .push_manifest(
                    &ManifestRef::Tag(t.to_string()),
                    m.bytes.clone(),
                    &m.media_type,
                )
                .await
                .unwrap();
        }
    });
}

/// A 200 with a JSON body and, when given, a `Link` to the next page.
fn page(body: &str, next: Option<&str>) -> Fault {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if let Some(n) = next {
        headers.push(("Link".into(), format!("<{n}>; rel=\"next\"")));
    }
    Fault::Respond {
        status: 200,
        headers,
        body: body.into(),
    }
}

#[test]
fn tags_follows_every_page_but_never_a_link_to_another_host() {
    let env = Env::new();
    let reg = TestRegistry::start();
    publish_hello(&env, &reg, None, "tools/app:1", "hi");
    push_tags(&reg, "tools/app", &["2", "latest"]);
    let repo = format!("{}/tools/app", reg.host());

    let r = env.run(&["tags", &repo]).succeeds();
    let mut got: Vec<&str> = r.stdout.lines().collect();
    got.sort_unstable();
    assert_eq!(got, ["1", "2", "latest"]);
    let r = env.run(&["tags", &repo, "--json"]).succeeds();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["schema"], "gantry.tags/v1");
    assert_eq!(doc["repository"], repo.as_str());
    assert_eq!(doc["tags"].as_array().unwrap().len(), 3);

    // docker-registry 2.8 sends a repository's tags in one page whatever `n` says, so the proxy
    // plays the first two pages; the last one is the registry's own answer.
    let proxy = FaultProxy::start(&reg.host());
    proxy
        .on(
            "/v2/tools/app/tags/list?n=2$",
            1,
            page(
                r#"{"name":"tools/app","tags":["a","b"]}"#,
                Some("/v2/tools/app/tags/list?n=2&last=b"),
            ),
        )
        .on(
            "last=b",
            1,
            page(
                r#"{"name":"tools/app","tags":["c","d"]}"#,
                Some(&format!(
                    "http://{}/v2/tools/app/tags/list?n=2&last=d",
                    proxy.host()
                )),
            ),
        );
    let via = format!("{}/tools/app", proxy.host());
    let r = env.run(&["tags", &via, "--page-size", "2"]).succeeds();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        ["a", "b", "c", "d"],
        "pages in order: {lines:?}"
    );
    assert_eq!(lines.len(), 7, "and the registry's own page: {lines:?}");
    assert_eq!(proxy.requests("/tags/list").len(), 3);

    // A Link to another host is not followed: no request, no credentials go there.
    let elsewhere = FaultProxy::start(&reg.host());
    let hostile = format!("http://{}/v2/tools/app/tags/list?last=b", elsewhere.host());
    proxy.on(
        "/v2/tools/app/tags/list?n=2$",
        1,
        page(r#"{"tags":["a","b"]}"#, Some(&hostile)),
    );
    let r = env
        .run(&["tags", &via, "--page-size", "2"])
        .fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("another host"), "{}", r.stderr);
    assert!(
        elsewhere.requests("").is_empty(),
        "{:?}",
        elsewhere.requests("")
    );

    // A listing that links back to itself ends.
    proxy.on(
        "/v2/tools/app/tags/list?n=2$",
        1,
        page(r#"{"tags":["a"]}"#, Some("/v2/tools/app/tags/list?n=2")),
    );
    let r = env
        .run(&["tags", &via, "--page-size", "2"])
        .fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("never ends"), "{}", r.stderr);

    // A page that is not a tag list, and a repository that does not exist.
    proxy.on("/v2/tools/app/tags/list?n=2$", 1, page("<html>", None));
    let r = env
        .run(&["tags", &via, "--page-size", "2"])
        .fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("not a listing"), "{}", r.stderr);
    let r = env
        .run(&["tags", &format!("{}/tools/nope", reg.host())])
        .fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("no such repository"), "{}", r.stderr);
}

#[test]
fn search_lists_the_catalog_across_pages_and_says_when_there_is_none() {
    let env = Env::new();
    let reg = TestRegistry::start();
    let bin = hello_binary(env.dir.path(), "hi");
    for repo in ["tools/app:1", "tools/other:1", "misc/thing:1"] {
        publish_bin(&env, &reg, None, &bin, repo);
    }
    let host = reg.host();
    let proxy = FaultProxy::start(&host);
    let via = proxy.host();

    let r = env
        .run(&["search", "--registry", &via, "--page-size", "1"])
        .succeeds();
    let want: Vec<String> = ["misc/thing", "tools/app", "tools/other"]
        .iter()
        .map(|r| format!("{via}/{r}"))
        .collect();
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), want);
    assert!(
        proxy.requests("/v2/_catalog").len() >= 3,
        "one page per repository: {:?}",
        proxy.requests("/v2/_catalog")
    );

    let r = env
        .run(&["search", "OTHER", "--registry", &host, "--json"])
        .succeeds();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["schema"], "gantry.search/v1");
    assert_eq!(doc["repositories"], serde_json::json!(["tools/other"]));

    // A configured registry with a path prefix lists only what is under it.
    env.run(&["registry", "add", "t", &format!("{host}/tools")])
        .succeeds();
    let r = env.run(&["search", "--registry", "t"]).succeeds();
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    let r = env.run(&["search", "zzz", "--registry", "t"]).succeeds();
    assert!(
        r.stdout.is_empty() && r.stderr.contains("no repository"),
        "{}",
        r.stderr
    );

    // A registry that does not offer its catalog says so, and what to do instead.
    for status in [404, 405] {
        proxy.on("/v2/_catalog", 1, Fault::status(status));
        let r = env
            .run(&["search", "--registry", &via])
            .fails_with(ExitKind::Registry);
        assert!(
            r.stderr.contains("does not offer a catalog") && r.stderr.contains("gantry tags IMAGE"),
            "{status}: {}",
            r.stderr
        );
    }
    // A Link to another host is refused here too.
    proxy.on(
        "/v2/_catalog",
        1,
        page(
            r#"{"repositories":["a"]}"#,
            Some("http://127.0.0.2:1/v2/_catalog?last=a"),
        ),
    );
    let r = env
        .run(&["search", "--registry", &via])
        .fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("another host"), "{}", r.stderr);
}

#[test]
fn search_of_a_registry_that_needs_credentials_suggests_login() {
    let env = Env::new();
    let reg = TestRegistry::start_with_htpasswd(USER, PASSWORD);
    let host = reg.host();
    let r = env
        .run(&["search", "--registry", &host])
        .fails_with(ExitKind::Registry);
    assert!(
        r.stderr.contains("does not offer a catalog")
            && r.stderr.contains(&format!("gantry login {host}")),
        "{}",
        r.stderr
    );
    login(&env, login_cmd(&env, &host), PASSWORD).succeeds();
    let r = env.run(&["search", "--registry", &host]).succeeds();
    assert!(r.stdout.is_empty(), "an empty catalog: {}", r.stdout);
}
