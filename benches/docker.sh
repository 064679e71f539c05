#!/usr/bin/env bash
# `sandbox exec --backend docker --profile strict -- true` against the docker CLI doing the same
# job on the same image, side by side in one hyperfine run. Run on demand (never by the tests):
#
#   benches/docker.sh          # RUNS (default 20), WARMUP (3)
#
# The CLI needs `-v /usr:/usr:ro`: the default image mirrors the host's /usr (see images/), which
# sandbox binds itself; without it there is no `true` in the image.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
IMAGE=sandbox/host:latest

scripts/setup >/dev/null
echo "==> cargo build --release"
cargo build --release
SANDBOX=$PWD/target/release/sandbox

TMP=$(mktemp -d /tmp/sandbox-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/ws"
chmod 0777 "$TMP/ws"

OURS="$SANDBOX exec --backend docker --profile strict --workspace $TMP/ws -- true"
CLI="docker run --rm --read-only --network none --cap-drop ALL -v /usr:/usr:ro $IMAGE true"
$OURS
$CLI

hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/docker.json" "$OURS" "$CLI"
python3 - "$TMP/docker.json" <<'PY'
import json, sys
ours, cli = (r["mean"] * 1000 for r in json.load(open(sys.argv[1]))["results"])
print(f"\nsandbox --backend docker: {ours:.1f} ms   docker run: {cli:.1f} ms   ratio: {ours / cli:.2f}x")
PY
