#!/usr/bin/env bash
# Offline quickstart: build gantry, publish a sample tool into a local OCI layout, install it
# under policy and run it. Uses a throwaway GANTRY_HOME; needs cargo and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
GANTRY="$PWD/target/debug/gantry"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export GANTRY_HOME="$W/home" GANTRY_SYSTEM_CONFIG="$W/no-system.toml"

printf '#include <stdio.h>\nint main(int c, char **v){printf("hello from a gantry-installed tool");for(int i=1;i<c;i++)printf(" %%s",v[i]);puts("");return 0;}\n' > "$W/hello.c"
cc -O2 -static -o "$W/hello" "$W/hello.c"

echo "\$ gantry publish hello --to oci:$W/catalog:1.0"
"$GANTRY" publish "$W/hello" --to "oci:$W/catalog:1.0"
echo "\$ gantry install --allow-unsigned oci:$W/catalog:1.0"
"$GANTRY" install --allow-unsigned "oci:$W/catalog:1.0"
echo "\$ hello world"
"$GANTRY_HOME/bin/hello" world
echo "\$ gantry list"
"$GANTRY" list
