#!/usr/bin/env python3
"""Benchmark of a Kubernetes upgrade through the plan on the lab's realistic profile (delays close to real life,
scaled by LAB_SCALE): 1 control plane + N workers created at FROM, then upgraded to TO with
spec.upgrade.maxUnavailable set to each of BATCHES (a fresh lab and cluster for each). Prints the upgrade's wall
time, its critical path and their ratio, and bootstrap's own CPU.

Critical path of an upgrade: the first control plane's whole procedure (etcd snapshot, kubeadm, `upgrade apply`,
kubelet, restart; the drains and uncordons run there as kubectl calls) is one chain, and the worker batches
run one after another, the workers of a batch side by side. So: the sum of the simulated delays on the control
plane during the upgrade, plus for each batch the longest sum of one of its workers' delays.

Usage: bench_upgrade.py BOOTSTRAP [WORKERS, default 10] [BATCHES, default 1,3] [FROM, default 1.35.5] [TO, default 1.36.1]
Environment: LAB_DIR, LAB_NET (default /srv/bootstrap-bench, 127.0.30), LAB_SCALE (default 0.05)."""
import os, resource, subprocess, sys, tempfile, time

import benchlib

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1]
workers = int(sys.argv[2]) if len(sys.argv) > 2 else 10
batches = [x for x in (sys.argv[3] if len(sys.argv) > 3 else "1,3").split(",")]
source = sys.argv[4] if len(sys.argv) > 4 else "1.35.5"
target = sys.argv[5] if len(sys.argv) > 5 else "1.36.1"
env = benchlib.environment(LAB_SCALE="0.05")
lab = benchlib.LAB


def sh(args, **kw):
    return benchlib.run(env, args, **kw)


def delays(i, since):
    """(kind, seconds) of the simulated delays lab host `i` logged after `since` (a time.time())."""
    out = sh(lab + ["exec", "lab-%d" % i, "sh", "-c", "cat /var/log/labnode/delays.log 2>/dev/null"]).stdout
    rows = [l.split() for l in out.splitlines()]
    return [(r[1], float(r[2])) for r in rows if len(r) == 3 and float(r[0]) >= since]


def plan(version, batch, work):
    return benchlib.write_plan(env, work, workers, version, "  upgrade: { maxUnavailable: %s }\n" % batch)


print("upgrade %s -> %s on 1+%d hosts, realistic profile, LAB_SCALE=%s (every simulated duration is real life x it)"
      % (source, target, workers, env["LAB_SCALE"]))
print("%-16s %12s %14s %7s %15s" % ("maxUnavailable", "upgrade (s)", "critical (s)", "ratio", "bootstrap CPU"))
try:
    for batch in batches:
        sh(lab + ["down"])
        up = sh(lab + ["up", "--hosts", str(workers + 1), "--profile", "realistic"])
        if up.returncode != 0:
            sys.exit("lab up failed: " + up.stdout + up.stderr)
        work = tempfile.mkdtemp()
        r = sh([binary, "apply", "-f", plan(source, batch, work), "--auto-approve", "--ready-timeout", "300"], cwd=work)
        if r.returncode != 0:
            sys.exit("creating the %s cluster failed:\n%s%s" % (source, r.stdout[-3000:], r.stderr[-2000:]))
        p = plan(target, batch, work)
        since, r0 = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = sh([binary, "apply", "-f", p, "--auto-approve", "--ready-timeout", "300"], cwd=work)
        wall = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            sys.exit("upgrade failed:\n" + r.stdout[-3000:] + r.stderr[-2000:])
        own = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
        size = max(1, int(batch))
        per_worker = [sum(s for _, s in delays(i + 2, since)) for i in range(workers)]
        critical = sum(s for _, s in delays(1, since)) + sum(
            max(per_worker[b:b + size]) for b in range(0, workers, size))
        print("%-16s %12.2f %14.2f %7.2f %13.2f s" % (batch, wall, critical, wall / critical, own))
finally:
    sh(lab + ["down"])
