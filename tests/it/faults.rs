//! A flaky, slow or refusing registry, played by our fault-injecting proxy in front of the real
//! docker-registry: passing failures are retried (and shown with -v), `Retry-After` is waited
//! out, a blob cut off mid-way resumes with a `Range` request, stalls and trickles end within the
//! stall timeout naming the URL, and answers (403, 404, a refused token) are not retried.

use crate::harness::*;
use crate::proxy::{Fault, FaultProxy};
use gantry::source::{ImageSource, ManifestRef};
use std::time::{Duration, Instant};

/// A registry with `tools/app:1` (a hello binary) and a proxy in front of it; returns the
/// reference through the proxy and the digest of the image's one layer.
fn setup(env: &Env) -> (TestRegistry, FaultProxy, String, String) {
    let reg = TestRegistry::start();
    publish_hello(env, &reg, None, "tools/app:1", "hi");
    let manifest = block_on(
        reg.client("tools/app")
            .fetch_manifest(&ManifestRef::Tag("1".into())),
    )
    .unwrap()
    .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let proxy = FaultProxy::start(&reg.host());
    let reference = format!("{}/tools/app:1", proxy.host());
    (reg, proxy, reference, layer)
}

fn install(env: &Env, reference: &str) -> Run {
    env.run(&[
        "-v",
        "install",
        "--allow-unsigned",
        "--name",
        "app",
        reference,
    ])
}

#[test]
fn passing_failures_are_retried_visibly_and_the_install_succeeds() {
    let env = Env::new();
    let (_reg, proxy, reference, layer) = setup(&env);
    proxy
        .on("/manifests/1", 1, Fault::status(503))
        .on("/manifests/1", 1, Fault::Reset)
        .on("/manifests/1", 1, Fault::status(502))
        .on(&layer, 1, Fault::status(500))
        .on(&layer, 1, Fault::Reset);
    let r = install(&env, &reference).succeeds();
    assert_eq!(env.run_tool("app", &[]).succeeds().stdout, "hi\n");
    assert_eq!(proxy.requests("/manifests/1 ").len(), 4, "3 failures + 1");
    assert_eq!(proxy.requests(&layer).len(), 3, "2 failures + 1");
    let retries = r.stderr.matches("retrying").count();
    assert_eq!(retries, 5, "every retry is shown with -v:\n{}", r.stderr);
    assert!(r.stderr.contains("HTTP 503"), "{}", r.stderr);
}

#[test]
fn an_open_registry_is_read_without_asking_how_to_authenticate() {
    let env = Env::new();
    let (_reg, proxy, reference, layer) = setup(&env);
    install(&env, &reference).succeeds();
    assert_eq!(env.run_tool("app", &[]).succeeds().stdout, "hi\n");
    assert_eq!(
        proxy.requests("GET /v2/ ").len(),
        0,
        "no ping for an anonymous caller"
    );
    assert_eq!(proxy.requests("/manifests/1 ").len(), 1);
    assert_eq!(proxy.requests(&layer).len(), 1);
}

#[test]
fn retry_after_is_waited_out() {
    let env = Env::new();
    let (_reg, proxy, reference, _) = setup(&env);
    proxy.on(
        "/manifests/1",
        1,
        Fault::Respond {
            status: 429,
            headers: vec![("Retry-After".into(), "2".into())],
            body: "slow down".into(),
        },
    );
    let t = Instant::now();
    let r = install(&env, &reference).succeeds();
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(r.stderr.contains("in 2000 ms"), "{}", r.stderr);
}

#[test]
fn a_blob_cut_off_mid_way_resumes_with_a_range_request() {
    let env = Env::new();
    let (_reg, proxy, reference, layer) = setup(&env);
    proxy.on(&layer, 1, Fault::CutBody(1000));
    install(&env, &reference).succeeds();
    assert_eq!(env.run_tool("app", &[]).succeeds().stdout, "hi\n");
    let layer_requests = proxy.requests(&layer);
    assert_eq!(layer_requests.len(), 2, "{layer_requests:?}");
    assert!(
        layer_requests[1].ends_with("range=bytes=1000-"),
        "{layer_requests:?}"
    );
}

#[test]
fn stalled_and_trickling_registries_fail_within_the_stall_timeout() {
    for fault in [Fault::Stall(60), Fault::Trickle(500)] {
        let env = Env::new();
        env.write_user_config("[network]\nstall_timeout = 2\nattempts = 2\n");
        let (_reg, proxy, reference, layer) = setup(&env);
        proxy.on(&layer, 10, fault.clone());
        let t = Instant::now();
        let r = install(&env, &reference).fails_with(ExitKind::Registry);
        let took = t.elapsed();
        // Two attempts of at most about 2 s each, and one backoff.
        assert!(took < Duration::from_secs(15), "{fault:?}: {took:?}");
        assert!(r.stderr.contains("stalled"), "{fault:?}: {}", r.stderr);
        assert!(r.stderr.contains(&layer), "names the URL: {}", r.stderr);
        assert!(r.stderr.contains("after 2 attempts"), "{}", r.stderr);
        assert!(!env.home().join("bin/app").exists());
        assert!(env.staging_is_empty());
    }
}

#[test]
fn answers_are_not_retried() {
    let env = Env::new();
    let (_reg, proxy, reference, _) = setup(&env);
    proxy.on("/manifests/1", 100, Fault::status(403));
    let r = install(&env, &reference).fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("403 Forbidden"), "{}", r.stderr);
    assert_eq!(proxy.requests("/manifests/1 ").len(), 1);

    // A 401 gets one fresh token, then it is an answer too.
    let env = Env::new();
    let (_reg, proxy, reference, _) = setup(&env);
    proxy.on("/manifests/1", 100, Fault::status(401));
    let r = install(&env, &reference).fails_with(ExitKind::Registry);
    assert!(r.stderr.contains("401 Unauthorized"), "{}", r.stderr);
    assert_eq!(proxy.requests("/manifests/1 ").len(), 2);

    // A tag that does not exist.
    let env = Env::new();
    let (_reg, proxy, _, _) = setup(&env);
    let missing = format!("{}/tools/app:nope", proxy.host());
    install(&env, &missing).fails_with(ExitKind::Registry);
    assert_eq!(proxy.requests("/manifests/nope ").len(), 1);
}

#[test]
fn retries_end_after_the_configured_attempts() {
    let env = Env::new();
    env.write_user_config("[network]\nattempts = 3\n");
    let (_reg, proxy, reference, _) = setup(&env);
    proxy.on("/manifests/1", 100, Fault::status(503));
    let r = install(&env, &reference).fails_with(ExitKind::Registry);
    assert_eq!(proxy.requests("/manifests/1 ").len(), 3);
    assert!(r.stderr.contains("after 3 attempts"), "{}", r.stderr);
    assert!(r.stderr.contains("HTTP 503"), "{}", r.stderr);
}

/// The proxy plays a token server: every `/v2/` request without a token is challenged, `/token`
/// hands out a token.
fn token_server(proxy: &FaultProxy) {
    let realm = format!("http://{}/token", proxy.host());
    proxy.on_unauthenticated(
        "/v2/",
        1000,
        Fault::Respond {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!("Bearer realm=\"{realm}\",service=\"test\""),
            )],
            body: String::new(),
        },
    );
}

#[test]
fn a_token_endpoint_failing_once_is_retried_and_a_refusal_names_it() {
    let env = Env::new();
    let (_reg, proxy, reference, _) = setup(&env);
    token_server(&proxy);
    proxy.on("/token", 1, Fault::status(500)).on(
        "/token",
        100,
        Fault::Respond {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: r#"{"token":"t0k3n"}"#.into(),
        },
    );
    install(&env, &reference).succeeds();
    let tokens = proxy.requests("/token");
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    // The first, anonymous request was challenged; then it went again with the token.
    assert_eq!(proxy.requests("/manifests/1 ").len(), 2);
    assert!(
        tokens[0].contains("scope=repository%3Atools%2Fapp%3Apull"),
        "{tokens:?}"
    );

    let env = Env::new();
    let (_reg, proxy, reference, _) = setup(&env);
    token_server(&proxy);
    proxy.on(
        "/token",
        100,
        Fault::Respond {
            status: 401,
            headers: vec![],
            body: r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad password"}]}"#.into(),
        },
    );
    let r = install(&env, &reference).fails_with(ExitKind::Registry);
    assert!(
        r.stderr.contains("token endpoint") && r.stderr.contains("refused the credentials"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("bad password"), "{}", r.stderr);
    assert_eq!(
        proxy.requests("/token").len(),
        1,
        "a refusal is not retried"
    );
}
