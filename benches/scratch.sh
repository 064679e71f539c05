#!/usr/bin/env bash
# What a scratch workspace costs over `rw`, on a 10 000-file workspace: the overlay view, the
# copy view (what runs where overlayfs cannot), and the same with a job that edits 10 files
# (change set, patch, no write-back), side by side with bubblewrap's `--tmp-overlay` (a
# throw-away overlay: no change set) in one hyperfine run. Run on demand, never by the tests.
#
#   benches/scratch.sh         # knobs: RUNS (default 30), WARMUP (3), FILES (10000)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
FILES=${FILES:-10000}

for tool in hyperfine bwrap python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool is missing; running scripts/setup" >&2
        scripts/setup
        break
    fi
done
if [ "$(id -u)" != 0 ]; then
    echo "bench: the overlay view needs root (without it every scratch view is a copy)" >&2
    exit 1
fi

echo "==> cargo build --release"
cargo build --release
SANDBOX=$PWD/target/release/sandbox

TMP=$(mktemp -d /tmp/sandbox-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
WS=$TMP/ws
python3 - "$WS" "$FILES" <<'EOF'
import os, sys
root, files = sys.argv[1], int(sys.argv[2])
for i in range(files):
    d = os.path.join(root, f"d{i // 100}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i % 100}"), "w") as f:
        f.write(f"line one of file {i}\nline two\n" * 8)
EOF
chmod -R a+rwX "$WS"
COPY_PROFILE=$TMP/copy.toml
printf 'extends = "standard"\n[filesystem]\nscratch_view = "copy"\n' > "$COPY_PROFILE"

EXEC=("$SANDBOX" exec --backend native --workspace "$WS")
EDIT="for i in 0 1 2 3 4 5 6 7 8 9; do echo edit >> d\$i/f\$i; done"
declare -a NAMES=(
    "rw, true"
    "scratch overlay, true"
    "scratch copy, true"
    "scratch overlay, edit 10 files"
    "scratch copy, edit 10 files"
    "bwrap --tmp-overlay, true"
)
declare -a COMMANDS=(
    "${EXEC[*]} --profile standard --workspace-mode rw -- true"
    "${EXEC[*]} --profile standard --workspace-mode scratch -- true"
    "${EXEC[*]} --profile $COPY_PROFILE --workspace-mode scratch -- true"
    "${EXEC[*]} --profile standard --workspace-mode scratch --commit never --diff $TMP/patch -- sh -c '$EDIT'"
    "${EXEC[*]} --profile $COPY_PROFILE --workspace-mode scratch --commit never --diff $TMP/patch -- sh -c '$EDIT'"
    "bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --overlay-src $WS --tmp-overlay $WS --unshare-all true"
)
args=()
for i in "${!NAMES[@]}"; do
    if ! sh -c "${COMMANDS[$i]}" >/dev/null 2>&1; then
        echo "bench: \`${COMMANDS[$i]}\` fails here; left out" >&2
        continue
    fi
    args+=(-n "${NAMES[$i]}" "${COMMANDS[$i]}")
done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "==> host: $(uname -r), $(nproc) cpus; sandbox at $commit; workspace: $FILES files"
hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$TMP/scratch.json" \
    "${args[@]}"

python3 - "$TMP/scratch.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
base = next(r["mean"] for r in results if r["command"] == "rw, true")
print()
print("| command | mean ms | σ | / rw |")
print("|---|---:|---:|---:|")
for r in results:
    print(f'| {r["command"]} | {r["mean"]*1000:.1f} | {r["stddev"]*1000:.1f} | {r["mean"]/base:.2f}x |')
EOF
