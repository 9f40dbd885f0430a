#!/usr/bin/env bash
# Offline quickstart: build gantry, make a signing key, publish a signed sample tool (with an SBOM
# attestation) into a local OCI layout catalog, and install it under the engine: a key policy on
# the catalog, a system-layer Rego policy (licenses.rego: an SBOM is required and AGPL is denied)
# and the shipped Wasm plugin attestation-gate (no vulnerability at or above "high"). Runs the
# tool; shows one refusal by each of them (unsigned: the built-in policy; AGPL: the Rego policy; a
# critical CVE: the plugin) with its reason; updates the tool when its tag moves and rolls it back;
# and ends with `gantry explain`. Uses a throwaway GANTRY_HOME.
# Needs cargo, a C compiler and the plugin toolchain (plugins/README.md; .ci/run installs it); no
# network, no registry.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
GANTRY="$PWD/target/debug/gantry"
PLUGIN="$PWD/target/plugins/attestation-gate.wasm"
[ -f "$PLUGIN" ] || bash plugins/build.sh target/plugins
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# An empty system layer (the default system file, if this machine has one, is not used).
: > "$W/system.toml"
export GANTRY_HOME="$W/home" GANTRY_SYSTEM_CONFIG="$W/system.toml" GANTRY_PASSWORD=quickstart
run() { echo; echo "\$ gantry $*"; "$GANTRY" "$@"; }

printf '#include <stdio.h>\nint main(int c, char **v){printf("hello from a gantry-installed tool");for(int i=1;i<c;i++)printf(" %%s",v[i]);puts("");return 0;}\n' > "$W/hello.c"
cc -O2 -static -o "$W/hello" "$W/hello.c"
cat > "$W/sbom.spdx.json" <<'JSON'
{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "hello", "dataLicense": "CC0-1.0",
 "packages": [{"SPDXID": "SPDXRef-hello", "name": "hello", "versionInfo": "1.0", "licenseConcluded": "MIT", "downloadLocation": "NOASSERTION"}]}
JSON

run keygen --output-key-prefix "$W/cosign"
run registry add catalog "oci:$W/catalog" --key "$W/cosign.pub"
# The system layer (what a security team pushes to a fleet; a user cannot relax it): a Rego
# policy and a Wasm plugin, both judging the attestations of every install.
cat > "$W/system.toml" <<TOML
[[policies]]
path = "$PWD/policies/licenses.rego"
config = { require_sbom = true }

[[plugins]]
path = "$PLUGIN"
config = { builders = [], require_provenance = false, max_severity = "high" }
TOML
echo; echo "\$ cat \$GANTRY_SYSTEM_CONFIG"; cat "$W/system.toml"
run publish "$W/hello" --to "oci:$W/catalog:1.0" --key "$W/cosign.key" --attest "$W/sbom.spdx.json" --predicate-type spdx
run install "oci:$W/catalog:1.0"
echo; echo "\$ hello world"
"$GANTRY_HOME/bin/hello" world
run verify "oci:$W/catalog:1.0"
run list

refused() { # every refusal must be a denial (exit 3), with its reason on stderr
  echo; echo "\$ gantry $*"
  local code=0
  "$GANTRY" "$@" || code=$?
  if [ "$code" != 3 ]; then echo "unexpected: exit $code, not a denial (3)" >&2; exit 1; fi
}

# 1. Unsigned: the built-in signature policy of the catalog refuses it.
cc -O2 -static -o "$W/unsigned" "$W/hello.c"
run publish "$W/unsigned" --to "oci:$W/catalog:unsigned"
refused install "oci:$W/catalog:unsigned"

# 2. Signed, but its SBOM declares an AGPL package: the system Rego policy refuses it.
sed 's/"MIT"/"AGPL-3.0-only"/' "$W/sbom.spdx.json" > "$W/agpl.spdx.json"
printf '#include <stdio.h>\nint main(void){puts("agpl");return 0;}\n' > "$W/agpl.c"
cc -O2 -static -o "$W/agpl" "$W/agpl.c"
run publish "$W/agpl" --to "oci:$W/catalog:agpl" --key "$W/cosign.key" --attest "$W/agpl.spdx.json" --predicate-type spdx
refused install "oci:$W/catalog:agpl"

# 3. Signed, SBOM fine, but a vulnerability scan reports a critical CVE: the Wasm plugin refuses it.
cat > "$W/vuln.json" <<'JSON'
{"scanner": {"uri": "pkg:github/aquasecurity/trivy", "version": "0.50.0",
 "result": {"Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-2026-0001", "Severity": "CRITICAL"}]}]}}}
JSON
printf '#include <stdio.h>\nint main(void){puts("vulnerable");return 0;}\n' > "$W/cve.c"
cc -O2 -static -o "$W/cve" "$W/cve.c"
run publish "$W/cve" --to "oci:$W/catalog:cve" --key "$W/cosign.key" --attest "$W/sbom.spdx.json" --predicate-type spdx --attest "$W/vuln.json" --predicate-type vuln
refused install "oci:$W/catalog:cve"

# An update: 1.0 is published again (a new build); update installs it through every hook.
sed 's/hello from a gantry-installed tool/hello from the new build/' "$W/hello.c" > "$W/hello2.c"
cc -O2 -static -o "$W/hello" "$W/hello2.c"
run publish "$W/hello" --to "oci:$W/catalog:1.0" --key "$W/cosign.key" --attest "$W/sbom.spdx.json" --predicate-type spdx
run update --check || echo "(exit $?: an update is available)"
run update hello --yes
echo; echo "\$ hello"; "$GANTRY_HOME/bin/hello"
# And back: the earlier version is kept, judged again by today's policy, and made current.
run rollback hello
echo; echo "\$ hello"; "$GANTRY_HOME/bin/hello"
run audit
run explain hello
echo; echo "quickstart done: the signed tool is installed under the key policy, the system's licenses.rego and the attestation-gate plugin, updated and rolled back; the unsigned, AGPL and critical-CVE images were refused (exit 3) by the built-in policy, the Rego policy and the plugin"
