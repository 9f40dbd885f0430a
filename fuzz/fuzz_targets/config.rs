//! gantry's configuration files: TOML, strict keys, registry URLs, signer policies.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = gantry::config::Config::parse(std::path::Path::new("/fuzz/config.toml"), text);
        for line in text.lines().take(8) {
            let _ = gantry::identity::HostPort::parse(line);
            let _ = gantry::identity::RegistryUrl::parse(line);
            let _ = gantry::reference::parse(line, &gantry::config::Config::seed());
        }
    }
});
