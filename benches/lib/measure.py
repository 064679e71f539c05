"""Throughput, latency percentiles and memory of sandbox against bubblewrap (and docker run),
for benches/run. Prints JSON on stdout; benches/run renders the table.

    measure.py throughput N CONCURRENCY NAME -- CMD...   # N jobs, CONCURRENCY at a time
    measure.py memory N NAME -- CMD...                    # N at once: RSS of the supervisors
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import time


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def one(command):
    started = time.perf_counter()
    result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, result.returncode


def throughput(jobs, concurrency, name, command):
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(lambda _: one(command), range(jobs)))
    wall = time.perf_counter() - started
    latencies = [seconds * 1000 for seconds, _ in results]
    failed = sum(1 for _, code in results if code != 0)
    return {
        "name": name, "jobs": jobs, "concurrency": concurrency, "failed": failed,
        "wall_s": wall, "jobs_per_s": jobs / wall,
        "p50_ms": percentile(latencies, 0.50), "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
    }


def field_kib(path, name):
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid):
    return field_kib(f"/proc/{pid}/status", "VmRSS")


def pss_kib(pid):
    """Proportional set size: pages shared between supervisors (the binary's text) are split
    among them, so the sum over N jobs is what N jobs cost the machine."""
    return field_kib(f"/proc/{pid}/smaps_rollup", "Pss")


def memory(count, name, command):
    """Starts `count` jobs that sleep, samples the RSS of each supervisor (the process we
    started, not the job) while all are running, and reports per job and in total."""
    processes = [subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(count)]
    time.sleep(1.5)
    samples = [(rss_kib(p.pid), pss_kib(p.pid)) for p in processes]
    for p in processes:
        p.wait()
    live = [s for s in samples if s[0] > 0]
    rss = [r for r, _ in live]
    pss = [p for _, p in live]
    return {
        "name": name, "jobs": count, "sampled": len(live),
        "per_job_mib": (sum(rss) / len(rss) / 1024) if rss else 0.0,
        "max_mib": max(rss) / 1024 if rss else 0.0,
        "total_mib": sum(rss) / 1024,
        "pss_total_mib": sum(pss) / 1024,
    }


def main():
    mode = sys.argv[1]
    split = sys.argv.index("--")
    command = sys.argv[split + 1:]
    if mode == "throughput":
        jobs, concurrency, name = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        print(json.dumps(throughput(jobs, concurrency, name, command)))
    elif mode == "memory":
        count, name = int(sys.argv[2]), sys.argv[3]
        print(json.dumps(memory(count, name, command)))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
