#!/usr/bin/env bash
# What `sandbox gate` costs against running the same tools by hand, on a Python project with
# five gates (ruff, mypy, bandit, pytest, coverage): (a) a cold `sandbox gate --no-cache` (every
# gate a sandboxed job, two at a time on two cores), (b) the same command lines the presets run,
# bare and one after another from /opt/sandbox-tools/bin in a copy of the project, (c) a warm
# `sandbox gate` whose every result comes from the operator's cache. Run on demand, never by the
# tests.
#
#   benches/gates.sh           # knobs: RUNS (default 10), WARMUP (1), WARM_RUNS (20)
#   PROJECT=/tmp/itsdangerous PYPATH=src:.deps EXCLUDE=.deps benches/gates.sh
#
# PROJECT: the Python project (default tests/fixtures/python-defects); it is copied twice, one
# copy for the gates, one for the bare tools (which write __pycache__ where the gates cannot).
# PYPATH: PYTHONPATH for the test gates and their bare runs (e.g. `src` for a src layout, plus a
# directory of test dependencies the tools' venv lacks). EXCLUDE: one directory of the project
# that ruff, mypy and bandit leave out (that directory of dependencies). Targets (the issue):
# cold / bare <= 0.8x, warm / cold <= 0.05x. Results: benches/gates-trial.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
WARM_RUNS=${WARM_RUNS:-20}
PROJECT=${PROJECT:-tests/fixtures/python-defects}
PYPATH=${PYPATH:-}
EXCLUDE=${EXCLUDE:-}
TOOLS=/opt/sandbox-tools/bin
for arg in "$@"; do
    case $arg in
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

for tool in hyperfine python3 "$TOOLS/ruff" "$TOOLS/mypy" "$TOOLS/bandit" "$TOOLS/pytest" \
    "$TOOLS/coverage"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool is missing; running scripts/setup" >&2
        scripts/setup
        break
    fi
done
if [ ! -d "$PROJECT" ]; then
    echo "bench: PROJECT=$PROJECT is not a directory" >&2
    exit 2
fi

echo "==> cargo build --release"
cargo build --release
SANDBOX=$PWD/target/release/sandbox

TMP=$(mktemp -d /tmp/sandbox-bench.XXXXXX)
# The gate cache lives with the operator ($XDG_CACHE_HOME/sandbox), never in the project: a cache
# of the bench's own keeps the runs from the user's.
export XDG_CACHE_HOME="$TMP/cache"
trap 'rm -rf "$TMP"' EXIT
chmod 0755 "$TMP"
GATED=$TMP/gated  # the gates' copy
BARE=$TMP/bare    # the bare tools' copy
OUT=$TMP/out      # the bare tools' reports (a gate job's /out)
mkdir "$OUT"
for copy in "$GATED" "$BARE"; do
    cp -a "$PROJECT" "$copy"
    rm -rf "$copy/sandbox.toml" "$copy/.sandbox"
    find "$copy" \( -name __pycache__ -o -name .pytest_cache -o -name .ruff_cache \
        -o -name .mypy_cache -o -name .coverage \) -prune -exec rm -rf {} +
    # The gate jobs run as uid 65534 (nobody): the tree must be readable by it.
    chmod -R a+rX "$copy"
done

# The presets' targets (gates/src/presets/python.rs: default args `.`), with EXCLUDE left out.
RUFF_ARGS=(.)
MYPY_ARGS=(.)
BANDIT_ARGS=(.)
if [ -n "$EXCLUDE" ]; then
    RUFF_ARGS=(--extend-exclude "$EXCLUDE" .)
    MYPY_ARGS=(--exclude "^${EXCLUDE%/}/" .)
    BANDIT_ARGS=(-x "./$EXCLUDE" .)
fi
toml_array() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }
{
    printf '[defaults]\nprofile = "gate"\ntimeout = "5m"\n'
    printf '\n[[gate]]\nname = "ruff"\nuses = "ruff"\nargs = %s\n' "$(toml_array "${RUFF_ARGS[@]}")"
    printf '\n[[gate]]\nname = "mypy"\nuses = "mypy"\nargs = %s\n' "$(toml_array "${MYPY_ARGS[@]}")"
    printf '\n[[gate]]\nname = "bandit"\nuses = "bandit"\nargs = %s\n' \
        "$(toml_array "${BANDIT_ARGS[@]}")"
    for gate in pytest coverage; do
        printf '\n[[gate]]\nname = "%s"\nuses = "%s"\n' "$gate" "$gate"
        if [ -n "$PYPATH" ]; then
            printf 'env = { PYTHONPATH = "%s" }\n' "$PYPATH"
        fi
    done
} >"$GATED/sandbox.toml"
chmod a+r "$GATED/sandbox.toml"

# (b): the presets' command lines, one after another, reports to $OUT instead of /out. A tool
# that finds something exits non-zero: that is its answer, not a failure of the run.
BARE_SH=$TMP/bare.sh
{
    echo '#!/usr/bin/env bash'
    printf 'cd %q\n' "$BARE"
    # shellcheck disable=SC2016 # $PATH is the script's own, expanded when it runs
    printf 'export PATH=%q:"$PATH"\n' "$TOOLS"
    printf 'ruff check --no-cache --output-format json %s >/dev/null 2>&1 || true\n' \
        "$(printf '%q ' "${RUFF_ARGS[@]}")"
    printf 'mypy --cache-dir=/dev/null --no-pretty --no-color-output --show-column-numbers '
    printf -- '--show-error-end --show-error-codes %s >/dev/null 2>&1 || true\n' \
        "$(printf '%q ' "${MYPY_ARGS[@]}")"
    printf 'bandit -f json -q -r %s >/dev/null 2>&1 || true\n' "$(printf '%q ' "${BANDIT_ARGS[@]}")"
    if [ -n "$PYPATH" ]; then
        printf 'export PYTHONPATH=%q\n' "$PYPATH"
    fi
    printf 'pytest -q -p no:cacheprovider -o junit_family=xunit1 --junitxml=%q ' "$OUT/junit.xml"
    printf '>/dev/null 2>&1 || true\n'
    printf 'coverage run --data-file=%q -m pytest -q -p no:cacheprovider >/dev/null 2>&1; ' \
        "$OUT/.coverage"
    printf 'coverage json --data-file=%q -o %q >/dev/null 2>&1 || true\n' \
        "$OUT/.coverage" "$OUT/coverage.json"
} >"$BARE_SH"
chmod +x "$BARE_SH"

COLD="$SANDBOX gate --backend native --no-cache --output json --workspace $GATED"
WARM="$SANDBOX gate --backend native --output json --workspace $GATED"

# Fail early and clearly: every gate must give an answer (no `error`), and every bare tool must
# run (a bare tool's own breakdown, once, to compare with the gates' durations).
echo "==> checking the gates and the bare tools once"
$COLD >"$TMP/cold.json" || true
python3 - "$TMP/cold.json" <<'EOF'
import json, sys
verdict = json.load(open(sys.argv[1]))
broken = [f'{g["name"]}: {g.get("reason")}' for g in verdict["gates"] if g["status"] == "error"]
if broken:
    sys.exit("bench: gates in error, fix that first:\n  " + "\n  ".join(broken))
EOF
bare_ms=()
while IFS= read -r line; do
    case $line in
        ruff* | mypy* | bandit* | pytest* | coverage*)
            start=$(date +%s%N)
            (cd "$BARE" && export PATH=$TOOLS:$PATH && eval "${line% || true}") && code=0 || code=$?
            if [ "$code" -ge 126 ]; then
                echo "bench: the bare \`${line%% *}\` cannot run (exit $code)" >&2
                exit 1
            fi
            bare_ms+=("${line%% *}=$((($(date +%s%N) - start) / 1000000))")
            ;;
        export\ PYTHONPATH=*) eval "$line" ;;
    esac
done <"$BARE_SH"
unset PYTHONPATH

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | head -1)
files=$(find "$GATED" -name '*.py' -not -path '*/.git/*' | wc -l)
lines=$(find "$GATED" -name '*.py' -not -path '*/.git/*' -exec cat {} + | wc -l)
echo "==> host: $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg);" \
    "sandbox at $commit${dirty:+ (+ uncommitted changes)}"
echo "    project: $PROJECT ($files .py files, $lines lines); $(hyperfine --version)"
if pgrep -x rustc >/dev/null || pgrep -f 'cargo (test|build)' >/dev/null; then
    echo "    WARNING: a cargo build or test runs on this host; the figures are polluted" >&2
fi

echo
echo "==> cold and bare: $RUNS runs each, warmup $WARMUP"
hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic --ignore-failure \
    --export-json "$TMP/cold-bare.json" \
    --prepare "rm -rf $XDG_CACHE_HOME/sandbox/gates" -n "sandbox gate, cold (--no-cache)" "$COLD" \
    --prepare "true" -n "bare tools, one after another" "$BARE_SH"
echo
# After the cold runs (their --prepare empties the cache): fill it, check that it serves all.
$WARM >/dev/null || true
$WARM >"$TMP/warm.json" || true
python3 - "$TMP/warm.json" <<'EOF'
import json, sys
missed = [g["name"] for g in json.load(open(sys.argv[1]))["gates"] if not g["cached"]]
if missed:
    sys.exit(f"bench: the warm run is not all cached ({', '.join(missed)}); fix that first")
EOF
echo "==> warm: $WARM_RUNS runs, every gate from the cache"
hyperfine --warmup "$WARMUP" --runs "$WARM_RUNS" --style basic --ignore-failure \
    --export-json "$TMP/warm-timing.json" -n "sandbox gate, warm (cached)" "$WARM"
echo "    load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$TMP/cold-bare.json" "$TMP/warm-timing.json" "$TMP/cold.json" "$TMP/warm.json" \
    "${bare_ms[@]}" <<'EOF'
import json, sys

cold_bare, warm_timing, cold_verdict, warm_verdict = sys.argv[1:5]
bare_ms = dict(item.split("=") for item in sys.argv[5:])
results = json.load(open(cold_bare))["results"] + json.load(open(warm_timing))["results"]
cold, bare, warm = (r["mean"] for r in results)
print()
print("| command | mean s | σ | min | max | / bare |")
print("|---|---:|---:|---:|---:|---:|")
for r in results:
    print(f'| {r["command"]} | {r["mean"]:.3f} | {r["stddev"] or 0:.3f} | {r["min"]:.3f} '
          f'| {r["max"]:.3f} | {r["mean"] / bare:.2f}x |')
print()
verdict = lambda ok: "met" if ok else "MISSED"
print(f"cold / bare: {cold / bare:.2f}x (target <= 0.8x: {verdict(cold / bare <= 0.8)})")
print(f"warm / cold: {warm / cold:.3f}x (target <= 0.05x: {verdict(warm / cold <= 0.05)})")
print()
# One cold and one warm run's own account of each gate: in a cold run a gate's time is its
# job; in a warm run it is the cache key (the tool's --version asked on the host, the inputs
# hashed). The bare column is each tool timed alone once.
cold_gates = {g["name"]: g for g in json.load(open(cold_verdict))["gates"]}
warm_gates = {g["name"]: g for g in json.load(open(warm_verdict))["gates"]}
print("| gate | status | findings | cold job ms | bare tool ms | warm (cached) ms |")
print("|---|---|---:|---:|---:|---:|")
for name, g in cold_gates.items():
    print(f'| {name} | {g["status"]} | {len(g["findings"])} | {g["duration_ms"]:.0f} '
          f'| {bare_ms.get(name, "?")} | {warm_gates[name]["duration_ms"]:.0f} |')
total = sum(g["duration_ms"] for g in cold_gates.values())
print(f'| (sum; wall) | | | {total:.0f}; {json.load(open(cold_verdict))["duration_ms"]:.0f} '
      f'| {sum(int(v) for v in bare_ms.values())} '
      f'| {sum(g["duration_ms"] for g in warm_gates.values()):.0f}; '
      f'{json.load(open(warm_verdict))["duration_ms"]:.0f} |')
EOF
