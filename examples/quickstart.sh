#!/usr/bin/env bash
# Offline quickstart: build gantry, make a signing key, publish a signed sample tool (with an SBOM
# attestation) into a local OCI layout catalog, put the catalog under a key policy, a Rego policy
# (licenses.rego: an SBOM is required and AGPL is denied) and a Wasm plugin (attestation-gate: no
# vulnerability at or above "high"), install the tool and run it; then show that an unsigned image
# and an image whose SBOM declares AGPL are refused. Uses a throwaway GANTRY_HOME.
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
# The catalog's policies: a Rego policy and a Wasm plugin, both run at the attestations hook.
cat >> "$GANTRY_HOME/config.toml" <<TOML

[[registries.catalog.policies]]
path = "$PWD/policies/licenses.rego"
config = { require_sbom = true }

[[registries.catalog.plugins]]
path = "$PLUGIN"
config = { builders = [], require_provenance = false, max_severity = "high" }
TOML
echo; echo "\$ cat \$GANTRY_HOME/config.toml"; cat "$GANTRY_HOME/config.toml"
run publish "$W/hello" --to "oci:$W/catalog:1.0" --key "$W/cosign.key" --attest "$W/sbom.spdx.json" --predicate-type spdx
run install "oci:$W/catalog:1.0"
echo; echo "\$ hello world"
"$GANTRY_HOME/bin/hello" world
run verify "oci:$W/catalog:1.0"
run list
run explain hello

cc -O2 -static -o "$W/unsigned" "$W/hello.c"
run publish "$W/unsigned" --to "oci:$W/catalog:unsigned"
if run install "oci:$W/catalog:unsigned"; then
  echo "unexpected: an unsigned image was installed" >&2
  exit 1
fi

# Signed, but its SBOM declares an AGPL package: the Rego policy refuses it.
sed 's/"MIT"/"AGPL-3.0-only"/' "$W/sbom.spdx.json" > "$W/agpl.spdx.json"
printf '#include <stdio.h>\nint main(void){puts("agpl");return 0;}\n' > "$W/agpl.c"
cc -O2 -static -o "$W/agpl" "$W/agpl.c"
run publish "$W/agpl" --to "oci:$W/catalog:agpl" --key "$W/cosign.key" --attest "$W/agpl.spdx.json" --predicate-type spdx
if run install "oci:$W/catalog:agpl"; then
  echo "unexpected: an AGPL image was installed" >&2
  exit 1
fi
echo; echo "quickstart done: the signed tool is installed under the key policy, licenses.rego and the attestation-gate plugin and runs; the unsigned one and the AGPL one were refused (exit 3)"
