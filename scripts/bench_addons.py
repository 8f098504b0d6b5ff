#!/usr/bin/env python3
"""Benchmark of the add-on phase of `bootstrap apply` on the lab's realistic profile: a 1 control plane + 1
worker cluster is brought up once (without add-ons), then, alternately for this binary and OTHER, an apply that
turns on metrics-server, monitoring (Prometheus and Grafana) and logging (Elasticsearch, Kibana, Fluentd) is
timed, and an apply that turns them off again (not timed) follows it. Prints each run's wall time and its
add-on phase (from the first add-on release's start to the last one's end, in the control plane's log), then
the medians.

Usage: bench_addons.py BOOTSTRAP OTHER [RUNS, default 2]   (env: LAB_DIR, LAB_NET, LAB_SCALE, default 0.2)"""
import datetime, os, statistics, subprocess, sys, tempfile, time

import benchlib

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
this, other = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
env = benchlib.environment(LAB_SCALE="0.2")
lab = benchlib.LAB
ADDONS = "  addons: { metricsServer: { enabled: true }, monitoring: { enabled: true }, logging: { enabled: true } }\n"


def sh(args, **kw):
    return benchlib.run(env, args, **kw)


def plan(work, addons):
    return benchlib.write_plan(env, work, 1, spec_extra=ADDONS if addons else "")


def apply(binary, work, addons):
    p = plan(work, addons)
    t = time.perf_counter()
    r = sh([binary, "apply", "-f", p, "--auto-approve", "--ready-timeout", "600"], cwd=work)
    if r.returncode != 0:
        sys.exit("apply (%s) failed:\n" % binary + r.stdout[-3000:] + r.stderr[-2000:])
    return time.perf_counter() - t


def addon_phase(work, since):
    """Seconds from the first add-on release's start to the last one's end, in cp-1's log after line `since`."""
    with open(os.path.join(work, ".bootstrap", "logs", "cp-1.log")) as f:
        lines = f.read().splitlines()[since:]
    stamps = []
    for line in lines:
        ts, _, rest = line.partition(" ")
        if rest.startswith("step release ") and not rest.startswith("step release cni/") and (
                rest.endswith(": started") or ": done in " in rest):
            stamps.append(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())
    return max(stamps) - min(stamps), len(lines)


def log_lines(work):
    try:
        with open(os.path.join(work, ".bootstrap", "logs", "cp-1.log")) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


sh(lab + ["down"])
up = sh(lab + ["up", "--hosts", "2", "--profile", "realistic"])
if up.returncode != 0:
    sys.exit("lab up failed: " + up.stdout + up.stderr)
try:
    work = tempfile.mkdtemp()
    apply(this, work, False)
    print("add-on apply (metrics-server, monitoring, logging: 5 releases) on the realistic profile, LAB_SCALE=%s"
          % env["LAB_SCALE"])
    print("%-9s %10s %16s" % ("binary", "apply (s)", "add-on phase (s)"))
    got = {"this": [], "other": []}
    for _ in range(runs):
        for label, b in (("other", other), ("this", this)):
            n = log_lines(work)
            wall = apply(b, work, True)
            phase, _ = addon_phase(work, n)
            got[label].append((wall, phase))
            print("%-9s %10.2f %16.2f" % (label, wall, phase), flush=True)
            apply(b, work, False)
    for label in ("other", "this"):
        print("median %-6s apply %.2f s, add-on phase %.2f s" % (
            label, statistics.median(w for w, _ in got[label]), statistics.median(p for _, p in got[label])))
finally:
    sh(lab + ["down"])
