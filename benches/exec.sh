#!/usr/bin/env bash
# Startup cost of `sandbox exec -- true` against bubblewrap, side by side in one hyperfine run.
# Run on demand (never by the tests):
#
#   benches/exec.sh            # build, time (back-to-back and spaced), peak RSS
#   benches/exec.sh --trace    # also: syscall counts (strace), kernel time per syscall and a
#                              # CPU profile per phase (perf, when installed)
#
# Knobs (environment): RUNS (default 50), WARMUP (3), SPACED_RUNS (30; 0 skips the spaced
# pass), SPACE (seconds idle before each spaced run, 0.3), TRACE_RUNS (100).
# Results and the analysis of where the time goes: benches/README.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-50}
WARMUP=${WARMUP:-3}
SPACED_RUNS=${SPACED_RUNS:-30}
SPACE=${SPACE:-0.3}
TRACE_RUNS=${TRACE_RUNS:-100}
TRACE=0
for arg in "$@"; do
    case $arg in
        --trace) TRACE=1 ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

for tool in hyperfine bwrap python3 /usr/bin/time; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool is missing; running scripts/setup" >&2
        scripts/setup
        break
    fi
done

echo "==> cargo build --release"
cargo build --release
SANDBOX=$PWD/target/release/sandbox

TMP=$(mktemp -d /tmp/sandbox-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
WS=$TMP/ws
mkdir "$WS"
chmod 0777 "$WS"

# --backend native: the profiles say `prefer = "auto"`, which picks docker when an engine with the
# image answers; this bench compares the native jail with bubblewrap.
STRICT=("$SANDBOX" exec --backend native --profile strict --workspace "$WS" -- true)
STANDARD=("$SANDBOX" exec --backend native --profile standard --workspace "$WS" -- true)
BWRAP=(bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --unshare-all true)

# Fail early and clearly if a command does not run here at all.
for cmd in STRICT STANDARD BWRAP; do
    declare -n argv=$cmd
    if ! "${argv[@]}"; then
        echo "bench: \`${argv[*]}\` fails on this host; fix that first" >&2
        exit 1
    fi
done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | head -1)
echo "==> host: $(uname -r), $(nproc) cpus; sandbox at $commit${dirty:+ (+ uncommitted changes)}"
echo "    bwrap $(bwrap --version 2>&1 | awk '{print $2}'), $(hyperfine --version)"

# hyperfine -N runs each command without a shell: $WS contains no spaces (mktemp).
timing() {
    local json=$1
    shift
    hyperfine -N --warmup "$WARMUP" --style basic --export-json "$json" "$@" \
        -n "sandbox strict" "${STRICT[*]}" \
        -n "sandbox standard" "${STANDARD[*]}" \
        -n "bwrap" "${BWRAP[*]}"
}

echo
echo "==> back-to-back: $RUNS runs each, warmup $WARMUP"
timing "$TMP/hot.json" --runs "$RUNS"
if [[ $SPACED_RUNS -gt 0 ]]; then
    echo
    echo "==> spaced: $SPACED_RUNS runs each, ${SPACE}s idle before each (a lone call, as an agent makes it)"
    timing "$TMP/spaced.json" --runs "$SPACED_RUNS" --prepare "sleep $SPACE"
fi

# Peak RSS: GNU time's %M is the largest ru_maxrss among the process and its waited-for
# descendants (supervisor, jail init, job). /usr/bin/time itself sets the floor (`true` alone).
peak_rss() {
    local out values=()
    for _ in 1 2 3 4 5; do
        out=$(/usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1)
        values+=("$out")
    done
    printf '%s\n' "${values[@]}" | sort -n | sed -n 3p
}
rss_true=$(peak_rss true)
rss_strict=$(peak_rss "${STRICT[@]}")
rss_standard=$(peak_rss "${STANDARD[@]}")
rss_bwrap=$(peak_rss "${BWRAP[@]}")

echo
echo "==> summary"
python3 - "$TMP/hot.json" "$TMP/spaced.json" "$rss_true" "$rss_strict" "$rss_standard" "$rss_bwrap" <<'EOF'
import json, os, sys

hot, spaced, rss_true, rss_strict, rss_standard, rss_bwrap = sys.argv[1:7]

def table(path, title):
    if not os.path.exists(path):
        return
    results = {r["command"]: r for r in json.load(open(path))["results"]}
    base = results["bwrap"]["mean"]
    print(f"{title}")
    print(f"  {'command':<18}{'mean ms':>9}{'± σ':>8}{'median':>9}{'min':>8}{'user':>7}{'sys':>7}{'/ bwrap':>9}")
    for name, r in results.items():
        ms = lambda s: s * 1000
        print(f"  {name:<18}{ms(r['mean']):9.2f}{ms(r['stddev'] or 0):8.2f}{ms(r['median']):9.2f}"
              f"{ms(r['min']):8.2f}{ms(r['user']):7.2f}{ms(r['system']):7.2f}{r['mean'] / base:8.2f}x")

table(hot, "back-to-back (hyperfine -N, mean of all runs)")
table(spaced, "spaced (idle before each run)")
print("peak RSS (largest process of the tree, GNU time %M, median of 5)")
for name, kib in [("sandbox strict", rss_strict), ("sandbox standard", rss_standard),
                  ("bwrap", rss_bwrap), ("true (floor)", rss_true)]:
    print(f"  {name:<18}{int(kib) / 1024:7.1f} MiB")
print(f"  ratio strict / bwrap: {int(rss_strict) / int(rss_bwrap):.2f}x")
EOF

[[ $TRACE -eq 1 ]] || exit 0

# --- Where the time goes -------------------------------------------------------------------------
echo
echo "==> mounts visible inside the jail (lines of /proc/self/mountinfo)"
printf '  sandbox strict %s, sandbox standard %s, bwrap %s, host %s\n' \
    "$("${STRICT[@]:0:$((${#STRICT[@]} - 1))}" cat /proc/self/mountinfo | wc -l)" \
    "$("${STANDARD[@]:0:$((${#STANDARD[@]} - 1))}" cat /proc/self/mountinfo | wc -l)" \
    "$(bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --unshare-all cat /proc/self/mountinfo | wc -l)" \
    "$(wc -l </proc/self/mountinfo)"

if ! command -v strace >/dev/null 2>&1; then
    echo "bench: installing strace (bench only)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace </dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace </dev/null; }
fi
echo
echo "==> syscalls per run (strace -f -c; counts are exact, strace's times are not)"
strace -f -c -o "$TMP/strace-sandbox.txt" "${STRICT[@]}"
strace -f -c -o "$TMP/strace-bwrap.txt" "${BWRAP[@]}"
python3 - "$TMP/strace-sandbox.txt" "$TMP/strace-bwrap.txt" <<'EOF'
import re, sys
def counts(path):
    out = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and re.match(r"^[\d.]+$", f[0]) and f[-1] != "total":
            out[f[-1]] = int(f[3])
        elif f and f[-1] == "total":
            out["TOTAL"] = int(f[3])
    return out
s, b = counts(sys.argv[1]), counts(sys.argv[2])
print(f"  {'syscall':<22}{'sandbox strict':>15}{'bwrap':>8}")
keys = ["TOTAL"] + sorted((k for k in set(s) | set(b) if k != "TOTAL"),
                          key=lambda k: -max(s.get(k, 0), b.get(k, 0)))
for k in keys[:26]:
    print(f"  {k:<22}{s.get(k, 0):>15}{b.get(k, 0):>8}")
EOF

if ! command -v perf >/dev/null 2>&1; then
    echo
    echo "bench: perf is not installed (Debian: linux-perf); skipping the kernel-time and CPU profiles"
    exit 0
fi

cat >"$TMP/loop.sh" <<EOF
#!/bin/sh
i=0
while [ \$i -lt $TRACE_RUNS ]; do "\$@" >/dev/null; i=\$((i + 1)); done
EOF
chmod +x "$TMP/loop.sh"

echo
echo "==> kernel time per syscall, $TRACE_RUNS back-to-back runs (perf trace -s; includes time blocked)"
for which in STRICT BWRAP; do
    declare -n argv=$which
    perf trace -s -o "$TMP/ptrace-$which.txt" -- "$TMP/loop.sh" "${argv[@]}" >/dev/null 2>&1 || true
done
python3 - "$TMP/ptrace-STRICT.txt" "$TMP/ptrace-BWRAP.txt" "$TRACE_RUNS" <<'EOF'
import collections, re, sys
runs = int(sys.argv[3])
def summary(path):
    tot = collections.defaultdict(lambda: [0, 0.0])
    for line in open(path):
        m = re.match(r"\s+(\w+)\s+(\d+)\s+\d+\s+([\d.]+)\s", line)
        if m:
            tot[m.group(1)][0] += int(m.group(2))
            tot[m.group(1)][1] += float(m.group(3))
    return tot
# Syscalls that only wait for another process (or a pipe) say nothing about setup cost.
waits = {"wait4", "poll", "read", "ppoll", "epoll_wait", "futex", "clock_nanosleep", "vfork"}
s, b = summary(sys.argv[1]), summary(sys.argv[2])
print(f"  {'syscall':<20}{'sandbox calls':>14}{'ms/run':>8}{'bwrap calls':>13}{'ms/run':>8}")
names = sorted((n for n in set(s) | set(b) if n not in waits), key=lambda n: -s[n][1])
for n in names[:22]:
    print(f"  {n:<20}{s[n][0] / runs:14.1f}{s[n][1] / runs:8.3f}{b[n][0] / runs:13.1f}{b[n][1] / runs:8.3f}")
EOF

echo
echo "==> CPU per run by phase, $TRACE_RUNS back-to-back runs (perf record -g, sampled)"
if ! perf record -q -F 4999 -g -o "$TMP/perf.data" -- "$TMP/loop.sh" "${STRICT[@]}" >/dev/null 2>&1; then
    echo "bench: perf record failed (kernel.perf_event_paranoid, or no permission); skipping"
    exit 0
fi
perf script -i "$TMP/perf.data" --show-task-events -F comm,pid,tid,time,ip,sym,dso 2>/dev/null >"$TMP/perf.txt"
python3 - "$TMP/perf.txt" "$TRACE_RUNS" 4999 <<'EOF'
# Attributes each sample to a process of the tree (supervisor, jail init, job) and a phase of it
# (from the fork/exec/exit events), then to the syscall it was in, a page fault, or user code.
import collections, re, sys
path, runs, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
per = 1000.0 / hz / runs
parent, forked, execd, exited, samples, cur = {}, {}, {}, {}, [], None
for line in open(path):
    if "PERF_RECORD_" in line:
        m = re.match(r"\s*(\S+)\s+(\d+)/(\d+)\s+([\d.]+):\s+PERF_RECORD_(\w+)(.*)", line)
        if not m:
            continue
        _, pid, _, t, kind, rest = m.groups()
        pid, t = int(pid), float(t)
        if kind == "FORK":
            c, ct, p, _ = map(int, re.search(r"\((\d+):(\d+)\):\((\d+):(\d+)\)", rest).groups())
            if c == ct and c != p:
                parent[c], forked[c] = p, t
        elif kind == "COMM" and "exec" in rest:
            execd[pid] = t
        elif kind == "EXIT":
            exited.setdefault(pid, t)
        continue
    m = re.match(r"\s*(\S+)\s+(\d+)/(\d+)\s+([\d.]+):\s*$", line)
    if m:
        cur = [m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)), []]
        samples.append(cur)
    elif cur is not None and line.strip():
        cur[4].append(line.strip())
children = collections.defaultdict(list)
for c in sorted(forked, key=forked.get):
    children[parent[c]].append(c)
loop_pids = set()
def role(comm, pid, tid, t):
    depth, p = 0, pid
    while p in parent and parent[p] in parent:
        depth, p = depth + 1, parent[p]
    # depth 0: the loop's own children (supervisor), 1: jail init, 2: job
    if comm in ("loop.sh", "sh", "dash") or depth > 2:
        return None
    first = children[pid][0] if children[pid] else None
    if depth == 0:
        if tid != pid:
            return "supervisor: output/wait threads"
        if first and t < forked[first]:
            return "supervisor: start, plan, cgroup create, clone"
        if first and first in exited and t >= exited[first]:
            return "supervisor: after the jail (stats, cgroup rmdir, exit)"
        return "supervisor: while the jail runs"
    if depth == 1:
        if first and t >= forked[first]:
            return "jail init: reap, exit, namespace teardown"
        return "jail init: cgroup join, mounts, pivot_root, lo"
    if comm != "sandbox" and pid in execd and t >= execd[pid]:
        return "job: the command itself (true)"
    return "job: rlimits, caps, landlock, seccomp, execve"
def category(frames):
    names = [re.sub(r"^\S+\s+", "", f).split(" (")[0] for f in frames]
    if "do_syscall_64" in names:
        i = names.index("do_syscall_64")
        name = names[i - 1] if i > 0 else "?"
        return "syscall " + re.sub(r"^(__x64_sys_|__do_sys_|__se_sys_)", "", name).split(".")[0]
    if any("exc_page_fault" in n for n in names):
        return "page faults"
    if frames and "kernel.kallsyms" in frames[0]:
        return "kernel, other"
    dso = re.search(r"\(([^)]*)\)\s*$", frames[0]) if frames else None
    return "user code: " + (dso.group(1).rsplit("/", 1)[-1] if dso else "?")
table, totals = collections.Counter(), collections.Counter()
for comm, pid, tid, t, frames in samples:
    r = role(comm, pid, tid, t)
    if r:
        table[(r, category(frames))] += 1
        totals[r] += 1
print(f"  total {sum(totals.values()) * per:.2f} ms CPU per run (all processes, both cpus)")
for r, n in sorted(totals.items(), key=lambda x: -x[1]):
    print(f"  {n * per:6.2f}  {r}")
    for (rr, c), m in sorted(table.items(), key=lambda x: -x[1]):
        if rr == r and m * per >= 0.05:
            print(f"            {m * per:5.2f}  {c}")
EOF
