#!/usr/bin/env bash
# Offline quickstart: build gantry, make a signing key, publish a signed sample tool (with an SBOM
# attestation) into a local OCI layout catalog, put the catalog under a key policy, install the
# tool and run it; then show that an unsigned image is refused. Uses a throwaway GANTRY_HOME.
# Needs cargo and a C compiler; no network, no registry.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
GANTRY="$PWD/target/debug/gantry"
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
echo; echo "quickstart done: the signed tool is installed and runs, the unsigned one was refused (exit 3)"
