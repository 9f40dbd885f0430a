#!/usr/bin/env bash
# Benchmark: gantry install against the tools a user would pick instead, and against floors
# measured on the same layers in the same run. Two images, both pushed by `gantry publish` to one
# loopback docker-registry:
#   A: 3 layers, ~20k files, ~300 MB (mixed sizes, half of each file compressible)
#   B: 10 layers, 100k small files (RSS must not grow with layers or files)
# For each image, ROUNDS times (medians printed), with wall time and peak RSS:
#   gantry install            (fresh GANTRY_HOME each round: no layer cache)
#   skopeo copy + umoci raw unpack
#   podman pull               (overlay storage under a temp --root)
#   floors: decompression alone (gzip -dc of all layers at once, to /dev/null), GNU tar extracting
#           all layers at once into a tmpfs, and the same onto the disk followed by sync
# Then, on image A: reinstall of the installed digest, `gantry list` with 100 packages, and
# progress bars on a terminal against --quiet.
# Needs: docker-registry, skopeo, umoci, podman, cc, python3, GNU tar and gzip, /usr/bin/time,
# script (util-linux), and a tmpfs at /dev/shm.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
PROFILE=${PROFILE:-release}
CASES=${CASES:-"A B"}
cargo build --profile "$PROFILE" --quiet --bin gantry
# cargo puts the dev profile's binaries under debug/.
OUT_DIR=$PROFILE
[ "$PROFILE" = dev ] && OUT_DIR=debug
GANTRY="${CARGO_TARGET_DIR:-$PWD/target}/$OUT_DIR/gantry"
W=$(mktemp -d "${TMPDIR:-/var/tmp}/gantry-bench.XXXXXX")
SHM=$(mktemp -d /dev/shm/gantry-bench.XXXXXX)
: > "$W/system.toml" # an empty system layer for gantry
cleanup() {
  kill "$REG_PID" 2>/dev/null || true
  for d in "$W"/*/proot; do
    [ -d "$d" ] && podman --root "$d" --runroot "${d%proot}prun" --storage-driver overlay system reset -f >/dev/null 2>&1
  done
  rm -rf "$W" "$SHM"
}
REG_PID=
trap cleanup EXIT

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

printf '#include <stdio.h>\nint main(void){puts("bench ok");return 0;}\n' > "$W/hello.c"
cc -O2 -static -o "$W/hello" "$W/hello.c"

# make_image NAME LAYERS FILES_PER_LAYER SIZES BIG_EVERY: layer dirs under $W/src/NAME
make_image() {
  python3 - "$W/src/$1" "$2" "$3" "$4" "$5" <<'PY'
import os, sys, random
root, layers, per, sizes, big_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(s) for s in sys.argv[4].split(",")], int(sys.argv[5])
random.seed(42)
files = total = 0
for layer in range(layers):
    for n in range(per):
        d = os.path.join(root, f"l{layer}", f"usr/share/l{layer}/d{n // 100:03d}")
        os.makedirs(d, exist_ok=True)
        size = random.choice(sizes)
        if big_every and n % big_every == 0:
            size = 2_000_000
        body = os.urandom(size // 2) + (b"gantry benchmark text " * (size // 44 + 1))[: size - size // 2]
        with open(os.path.join(d, f"f{n:05d}.dat"), "wb") as f:
            f.write(body)
        files += 1
        total += size
print(f"{layers} layers, {files} files, {total / 1e6:.0f} MB")
PY
  mkdir -p "$W/src/$1/l0/usr/local/bin"
  cp "$W/hello" "$W/src/$1/l0/usr/local/bin/hello"
}

# blobs REF: the registry's files of the image's layer blobs, one per line
blobs() {
  python3 - "$PORT" "$1" "$W/regdata" <<'PY'
import json, sys, urllib.request
port, ref, data = sys.argv[1:]
repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
def get(what):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/{repo}/manifests/{what}", headers={"Accept": ", ".join([
        "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json"])})
    return json.load(urllib.request.urlopen(req))
m = get(tag)
if "manifests" in m:
    m = get(m["manifests"][0]["digest"])
for l in m["layers"]:
    hexd = l["digest"].split(":", 1)[1]
    print(f"{data}/docker/registry/v2/blobs/sha256/{hexd[:2]}/{hexd}/data")
PY
}

measure() { # prints "seconds maxrss_kb" of a command
  /usr/bin/time -f "%e %M" -o "$W/time.txt" "$@" >/dev/null 2>"$W/err.txt" || { cat "$W/err.txt" >&2; exit 1; }
  cat "$W/time.txt"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms_median() { # ms_median N CMD...: median wall time in ms of N runs (output discarded)
  python3 - "$@" <<'PY'
import subprocess, sys, time
n, cmd = int(sys.argv[1]), sys.argv[2:]
ts = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    ts.append((time.perf_counter() - t) * 1e3)
ts.sort()
print(f"{ts[len(ts) // 2]:.1f}")
PY
}
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}x' if b else 'n/a')" "$1" "$2"; }

SUMMARY="$W/summary.txt"
: > "$SUMMARY"
run_case() { # run_case NAME REF LABEL
  local name=$1 ref=$2 label=$3
  local -a layers
  mapfile -t layers < <(blobs "$ref")
  local dec="gzip -dc" i j
  for f in g s p d t k; do : > "$W/$f.txt"; done
  for i in $(seq "$ROUNDS"); do
    # Fresh places each round, and nothing deleted until the end (see the README).
    local r="$W/$name.$i"
    mkdir -p "$r"
    sync
    read -r gs gm < <(GANTRY_HOME="$r/ghome" GANTRY_SYSTEM_CONFIG="$W/system.toml" measure "$GANTRY" install --quiet --allow-unsigned --name "$name" "$ref")
    "$r/ghome/bin/$name" | grep -q "bench ok"
    sync
    read -r ss sm < <(measure skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$r/oci:$name")
    read -r us um < <(measure umoci raw unpack --rootless --image "$r/oci:$name" "$r/rootfs")
    sync
    read -r ps pm < <(measure podman --root "$r/proot" --runroot "$r/prun" --storage-driver overlay pull -q --tls-verify=false "docker://$ref")
    sync
    # Floors: the same layer blobs, all at once.
    read -r ds _ < <(measure bash -c 'for b in "$@"; do '"$dec"' "$b" >/dev/null & done; wait' _ "${layers[@]}")
    mkdir -p "$SHM/x"; for j in "${!layers[@]}"; do mkdir "$SHM/x/$j"; done
    read -r ts _ < <(measure bash -c 'd=$1; shift; j=0; for b in "$@"; do tar -xzf "$b" -C "$d/$j" & j=$((j+1)); done; wait' _ "$SHM/x" "${layers[@]}")
    rm -rf "$SHM/x"
    mkdir -p "$r/tardisk"; for j in "${!layers[@]}"; do mkdir "$r/tardisk/$j"; done
    sync
    read -r ks _ < <(measure bash -c 'd=$1; shift; j=0; for b in "$@"; do tar -xzf "$b" -C "$d/$j" & j=$((j+1)); done; wait; sync' _ "$r/tardisk" "${layers[@]}")
    echo "$gs $gm" >> "$W/g.txt"
    python3 -c "print(f'{$ss + $us:.2f}', max($sm, $um))" >> "$W/s.txt"
    echo "$ps $pm" >> "$W/p.txt"
    echo "$ds" >> "$W/d.txt"; echo "$ts" >> "$W/t.txt"; echo "$ks" >> "$W/k.txt"
    echo "  round $i: gantry ${gs}s ${gm}KB | skopeo ${ss}s + umoci ${us}s (${sm}/${um} KB) | podman ${ps}s ${pm}KB | decompress ${ds}s, tar tmpfs ${ts}s, tar disk+sync ${ks}s"
  done
  local G GM S SM P PM D T K paths
  G=$(cut -d' ' -f1 "$W/g.txt" | median); GM=$(cut -d' ' -f2 "$W/g.txt" | median)
  S=$(cut -d' ' -f1 "$W/s.txt" | median); SM=$(cut -d' ' -f2 "$W/s.txt" | median)
  P=$(cut -d' ' -f1 "$W/p.txt" | median); PM=$(cut -d' ' -f2 "$W/p.txt" | median)
  D=$(median < "$W/d.txt"); T=$(median < "$W/t.txt"); K=$(median < "$W/k.txt")
  paths=$(find "$W/$name.1/ghome/packages/$name/current/rootfs" | wc -l)
  {
    echo "image $label: ${#layers[@]} layers, $paths paths in rootfs, $(cat "${layers[@]}" | wc -c | awk '{printf "%.0f", $1/1e6}') MB compressed (medians of $ROUNDS)"
    echo "  gantry install           ${G}s  peak RSS ${GM} KB (target <= 40960 KB)"
    echo "  skopeo copy + umoci      ${S}s  peak RSS ${SM} KB   gantry/this: time $(ratio "$G" "$S") (target <= 0.25x), RSS $(ratio "$GM" "$SM")"
    echo "  podman pull (overlay)    ${P}s  peak RSS ${PM} KB   gantry/this: time $(ratio "$G" "$P") (target <= 0.25x), RSS $(ratio "$GM" "$PM")"
    echo "  floor: gzip -dc, all     ${D}s                      gantry/this: $(ratio "$G" "$D")"
    echo "  floor: tar -xz to tmpfs  ${T}s                      gantry/this: $(ratio "$G" "$T") (target <= 1.3x)"
    echo "  GNU tar to disk + sync   ${K}s                      gantry/this: $(ratio "$G" "$K")"
  } | tee -a "$SUMMARY"
}

for c in $CASES; do
  case $c in
    A) make_image a 3 6700 200,1500,4000,12000,30000 500 ;;
    B) make_image b 10 10000 200,1500,4000 0 ;;
  esac
  lower=$(echo "$c" | tr 'A-Z' 'a-z')
  ref="127.0.0.1:$PORT/bench/$lower:1"
  srcs=()
  for d in "$W/src/$lower"/l*; do srcs+=("$d"); done
  mapfile -t srcs < <(printf '%s\n' "${srcs[@]}" | sort -V)
  GANTRY_HOME="$W/pubhome" "$GANTRY" publish "${srcs[@]}" --entrypoint /usr/local/bin/hello --to "$ref" >/dev/null
  # The sources stay until the end: deleting them now would slow the measured runs.
  echo "image $c pushed"
  run_case "$lower" "$ref" "$c"
done

# ── reinstall, list, progress bars (image A when it ran, else the last one)
first=$(echo "$CASES" | awk '{print tolower($1)}')
ref="127.0.0.1:$PORT/bench/$first:1"
export GANTRY_HOME="$W/lhome" GANTRY_SYSTEM_CONFIG="$W/system.toml"
"$GANTRY" install --quiet --allow-unsigned --name big "$ref"
REINSTALL=$(ms_median 21 "$GANTRY" install --quiet --allow-unsigned --name big "$ref")
mkdir -p "$W/tiny/usr/bin"
cp "$W/hello" "$W/tiny/usr/bin/hello"
GANTRY_HOME="$W/pubhome" "$GANTRY" publish "$W/tiny" --entrypoint /usr/bin/hello --to "127.0.0.1:$PORT/bench/tiny:1" >/dev/null
for n in $(seq 99); do "$GANTRY" install --quiet --allow-unsigned --name "tiny$n" "127.0.0.1:$PORT/bench/tiny:1"; done
LIST=$(ms_median 21 "$GANTRY" list)
PKGS=$("$GANTRY" list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["packages"]))')
# Progress bars need a terminal: both sides run under script(1), which gives them one.
bars() { script -qec "$*" /dev/null >/dev/null; }
: > "$W/bars.txt"; : > "$W/quiet.txt"
for i in $(seq "$ROUNDS"); do
  for mode in bars quiet; do
    sync
    flag=""; [ "$mode" = quiet ] && flag="--quiet"
    read -r s _ < <(GANTRY_HOME="$W/p$mode$i" measure bash -c "$(declare -f bars); bars '$GANTRY' install $flag --allow-unsigned --name big '$ref'")
    echo "$s" >> "$W/$mode.txt"
  done
done
B=$(median < "$W/bars.txt"); Q=$(median < "$W/quiet.txt")
{
  echo "reinstall of the installed digest: ${REINSTALL} ms (median of 21; target <= 10 ms)"
  echo "gantry list with $PKGS packages: ${LIST} ms (median of 21; target <= 20 ms)"
  echo "progress bars on a terminal: ${B}s, --quiet: ${Q}s, cost $(python3 -c "print(f'{($B - $Q) / $Q * 100:+.1f}%')") (medians of $ROUNDS; target <= 2%)"
  echo "inflater: gantry zlib-rs (flate2), floors GNU gzip $(gzip --version | head -1 | awk '{print $2}')"
} | tee -a "$SUMMARY"
echo
echo "── summary"
cat "$SUMMARY"
