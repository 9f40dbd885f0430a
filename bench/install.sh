#!/usr/bin/env bash
# Benchmark: gantry install vs. skopeo copy + umoci raw unpack, same image, same loopback
# registry, same run. Builds a ~300 MB, 3-layer, ~20k-file image, pushes it with gantry publish,
# then times each side (wall time and peak RSS) ROUNDS times and prints medians and the ratio.
# Needs: docker-registry, skopeo, umoci, cc, python3, GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" --quiet
# cargo puts the dev profile's binaries under debug/.
OUT_DIR=$PROFILE
[ "$PROFILE" = dev ] && OUT_DIR=debug
GANTRY="${CARGO_TARGET_DIR:-$PWD/target}/$OUT_DIR/gantry"
W=$(mktemp -d)
: > "$W/system.toml" # an empty system layer for gantry
trap 'kill $REG_PID 2>/dev/null || true; rm -rf "$W"' EXIT

# ── registry on a free loopback port
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/reg.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/regdata}}
http: {addr: 127.0.0.1:$PORT}
YML
docker-registry serve "$W/reg.yml" >/dev/null 2>&1 &
REG_PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

# ── image content: 3 layers of ~100 MB and ~6.7k files each (mixed sizes, half compressible)
python3 - "$W/layers" <<'PY'
import os, sys, random
random.seed(42)
root = sys.argv[1]
for layer in range(3):
    base = os.path.join(root, f"l{layer}")
    n = 0
    total = 0
    while n < 6700:
        d = os.path.join(base, f"usr/share/l{layer}/d{n // 100:03d}")
        os.makedirs(d, exist_ok=True)
        size = random.choice([200, 1500, 4000, 12000, 30000])
        if n % 500 == 0:
            size = 2_000_000
        body = os.urandom(size // 2) + (b"gantry benchmark text " * (size // 44 + 1))[: size - size // 2]
        with open(os.path.join(d, f"f{n:05d}.dat"), "wb") as f:
            f.write(body)
        n += 1
        total += size
    print(f"layer {layer}: {n} files, {total / 1e6:.0f} MB")
PY
mkdir -p "$W/layers/l0/usr/local/bin"
printf '#include <stdio.h>\nint main(void){puts("bench ok");return 0;}\n' > "$W/hello.c"
cc -O2 -static -o "$W/layers/l0/usr/local/bin/hello" "$W/hello.c"
REF="127.0.0.1:$PORT/bench/big:1"
GANTRY_HOME="$W/pubhome" "$GANTRY" publish "$W/layers/l0" "$W/layers/l1" "$W/layers/l2" \
  --entrypoint /usr/local/bin/hello --to "$REF" >/dev/null

measure() { # prints "seconds maxrss_kb" of a command
  /usr/bin/time -f "%e %M" -o "$W/time.txt" "$@" >/dev/null 2>"$W/err.txt" || { cat "$W/err.txt" >&2; exit 1; }
  cat "$W/time.txt"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$W/g.txt"; : > "$W/p.txt"
for i in $(seq "$ROUNDS"); do
  rm -rf "$W/ghome" "$W/oci" "$W/rootfs"
  sync
  read -r gs gm < <(GANTRY_HOME="$W/ghome" GANTRY_SYSTEM_CONFIG="$W/system.toml" measure "$GANTRY" install -v --allow-unsigned "$REF")
  [ -z "${VERBOSE:-}" ] || cat "$W/err.txt"
  "$W/ghome/bin/big" | grep -q "bench ok"
  sync
  read -r ss sm < <(measure skopeo copy --quiet --src-tls-verify=false "docker://$REF" "oci:$W/oci:big")
  read -r us um < <(measure umoci raw unpack --rootless --image "$W/oci:big" "$W/rootfs")
  echo "$gs $gm" >> "$W/g.txt"
  python3 -c "print($ss + $us, max($sm, $um))" >> "$W/p.txt"
  echo "round $i: gantry ${gs}s ${gm}KB | skopeo ${ss}s + umoci ${us}s (peak ${sm}/${um} KB)"
done
G=$(cut -d' ' -f1 "$W/g.txt" | median); GM=$(cut -d' ' -f2 "$W/g.txt" | median)
P=$(cut -d' ' -f1 "$W/p.txt" | median); PM=$(cut -d' ' -f2 "$W/p.txt" | median)
FILES=$(find "$W/ghome/packages/big/current/rootfs" | wc -l)
echo "image: 3 layers, $FILES paths in rootfs"
echo "gantry install:        median ${G}s, peak RSS ${GM} KB"
echo "skopeo copy + umoci:   median ${P}s, peak RSS ${PM} KB"
python3 -c "print(f'ratio (gantry / peers): time {$G/$P:.2f}x, peak RSS {$GM/$PM:.2f}x')"
