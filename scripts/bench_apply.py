#!/usr/bin/env python3
"""Benchmark of `bootstrap apply` on the lab's realistic profile (delays close to real life, scaled by
LAB_SCALE). For each scale and each size 1 + N it brings up a lab, applies a 1 control plane + N workers plan,
and prints the wall time, the critical path and their ratio, how busy the machine was, and bootstrap's own CPU.

Critical path: the simulated durations that must happen one after another. Every host runs its steps up to
its images in parallel (repository, one package transaction, containerd, the images init or join needs), the
first control plane then runs init, and each worker's join waits for init. So: the sum of every simulated delay
on the control plane (its whole chain up to init, plus the CNI it applies) plus the longest worker's delays
that ended after init (its join, and any image the join still had to pull).

Why more than one scale: every lab host's simulated tools, sshd, sudo and daemons run on this machine's cores,
where real hosts would each have their own. All hosts do the same work at the same moments (connect and
prepare, install, join), and at LAB_SCALE=0.05 (every duration 20 times shorter than in real life) 51 hosts'
worth of it leaves the cores saturated for much of the run, the control plane's critical chain waiting for a
core with everything else. The 1+50 figure then measures the lab's CPU as much as bootstrap. `busy` is the
machine's average load during the apply, `saturated` the share of 0.2 s slices with every core busy, and
`bootstrap CPU` what bootstrap itself used.

After the largest apply of the first scale: a no-op apply, a no-op `plan --refresh` (target: under a second on
50 hosts), and the cost of one simulated tool call in a lab host, directly and through the host's fork server.
With --baseline OTHER: for each scale and size, this binary and OTHER (e.g. one built from main) alternately,
--ab-runs times each (default 2), each run on a freshly brought up lab of the same shape; prints every run
with its critical path, then the median wall time of this binary against OTHER's (the no-op checks are skipped).

Usage: bench_apply.py BOOTSTRAP [SIZES, default 1,10,50] [SCALES, default 0.05,0.2] [--baseline OTHER] [--ab-runs N]"""
import json, os, resource, statistics, subprocess, sys, tempfile, time

import benchlib

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args, baseline, ab_runs = [], None, 2
_i = 1
while _i < len(sys.argv):
    if sys.argv[_i] == "--baseline":
        baseline = os.path.abspath(sys.argv[_i + 1])
        _i += 2
    elif sys.argv[_i] == "--ab-runs":
        ab_runs = int(sys.argv[_i + 1])
        _i += 2
    else:
        args.append(sys.argv[_i])
        _i += 1
binary = os.path.abspath(args[0])
sizes = [int(x) for x in (args[1] if len(args) > 1 else "1,10,50").split(",")]
env = benchlib.environment()
lab = benchlib.LAB


def sh(args, **kw):
    return benchlib.run(env, args, **kw)


def delays(host):
    """(kind, seconds, end time) of each simulated delay on `host`."""
    out = sh(lab + ["exec", host, "sh", "-c", "cat /var/log/labnode/delays.log 2>/dev/null"]).stdout
    return [(parts[1], float(parts[2]), float(parts[0])) for parts in (l.split() for l in out.splitlines())
            if len(parts) == 3]


def critical_path(workers):
    """Every delay on the first control plane (its chain up to init, and the CNI it applies), plus the longest
    worker's delays from the end of init on (its join and whatever the join had to wait for then, such as
    images it had not pulled yet): what could not overlap."""
    cp = delays("lab-1")
    init_end = max([t for k, _, t in cp if k == "init"] or [0.0])
    after = [sum(s for _, s, t in delays("lab-%d" % (i + 2)) if t > init_end) for i in range(workers)]
    return sum(s for _, s, _ in cp) + max(after or [0.0])


TOOL_COST = r"""
import os, resource, subprocess, time
def server_cpu():
    try:
        pid = int(open("/run/labnode/forkserver.pid").read())
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0
out = []
for direct in ("1", ""):
    env = dict(os.environ, LABNODE_DIRECT=direct)
    n = 100
    s0, r0, t = server_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    for _ in range(n):
        subprocess.run(["sysctl", "-n", "net.ipv4.ip_forward"], env=env, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter() - t) / n
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime + server_cpu() - s0) / n
    out.append("%s %.1f ms wall, %.1f ms CPU" % ("python3 -m labnode directly" if direct else "through the fork server",
                                                 wall * 1000, cpu * 1000))
print("; ".join(out))
"""


def tool_call_cost():
    """CPU and wall of one simulated tool call (`sysctl -n`) in a lab host, directly and through its fork server."""
    r = sh(lab + ["exec", "lab-2", "/usr/bin/python3", "-c", TOOL_COST])
    return "one lab tool call (sysctl -n, 100 times in lab-2): " + (r.stdout.strip() or r.stderr.strip())


def plan(workers, work):
    return benchlib.write_plan(env, work, workers)


def busy_ticks():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


class Load:
    """How busy the machine's cores were while a command ran: on average, and the share of 0.2 s slices in
    which they were all busy (saturated: every lab host and bootstrap then wait for a core)."""

    def __init__(self):
        import threading
        self.slices, self.stop = [], threading.Event()
        self.first = busy_ticks()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        prev = self.first
        while not self.stop.wait(0.2):
            cur = busy_ticks()
            if cur[1] > prev[1]:
                self.slices.append((cur[0] - prev[0]) / (cur[1] - prev[1]))
            prev = cur

    def done(self):
        self.stop.set()
        self.thread.join()
        last = busy_ticks()
        average = (last[0] - self.first[0]) / max(1, last[1] - self.first[1])
        saturated = sum(1 for x in self.slices if x >= 0.95) / max(1, len(self.slices))
        return average, saturated


scales = (args[2] if len(args) > 2 else os.environ.get("LAB_SCALES", "0.05,0.2")).split(",")


def one_apply(bin_path, n):
    """A fresh lab of 1 + n hosts, one apply: (wall, critical, busy, saturated, bootstrap CPU, plan, work dir).
    The lab stays up (the no-op runs use it); the next one_apply or the caller takes it down."""
    sh(lab + ["down"])
    up = sh(lab + ["up", "--hosts", str(n + 1), "--profile", "realistic"])
    if up.returncode != 0:
        sys.exit("lab up failed: " + up.stdout + up.stderr)
    work = tempfile.mkdtemp()
    p = plan(n, work)
    load, r0 = Load(), resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = sh([bin_path, "apply", "-f", p, "--auto-approve", "--ready-timeout", "300"], cwd=work)
    wall = time.perf_counter() - t
    (busy, saturated), r1 = load.done(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit("apply (%s) failed:\n" % bin_path + r.stdout[-3000:] + r.stderr[-2000:])
    own = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    return wall, critical_path(n), busy, saturated, own, p, work


if baseline:
    print("apply on the realistic profile, this binary against %s, alternating, %d runs each, a fresh lab each run;"
          " LAB_SCALE=s: every simulated duration is real life x s" % (baseline, ab_runs))
    print("%-6s %-8s %-9s %10s %14s %7s %6s %15s" % ("scale", "hosts", "binary", "apply (s)", "critical (s)",
                                                     "ratio", "busy", "bootstrap CPU"))
    lines = []
    for scale in scales:
        env["LAB_SCALE"] = scale
        for n in sizes:
            walls = {"this": [], "baseline": []}
            for _ in range(ab_runs):
                for label, b in (("this", binary), ("baseline", baseline)):
                    wall, critical, busy, _, own, _, _ = one_apply(b, n)
                    walls[label].append((wall, critical))
                    print("%-6s %-8s %-9s %10.2f %14.2f %7.2f %5.0f%% %13.2f s" % (
                        scale, "1+%d" % n, label, wall, critical, wall / critical, busy * 100, own), flush=True)
            this = statistics.median(w for w, _ in walls["this"])
            base = statistics.median(w for w, _ in walls["baseline"])
            crit = statistics.median(c for _, c in walls["this"])
            lines.append("LAB_SCALE=%s 1+%d: this %.2f s, baseline %.2f s: %.2fx (target 0.75x); this against its "
                         "critical path %.2f s: %.2fx" % (scale, n, this, base, this / base, crit, this / crit))
    sh(lab + ["down"])
    print("\n".join(lines))
    sys.exit(0)
print("apply on the realistic profile; LAB_SCALE=s: every simulated duration is real life x s")
print("%-6s %-8s %10s %14s %7s %6s %10s %15s" % ("scale", "hosts", "apply (s)", "critical (s)", "ratio", "busy",
                                                 "saturated", "bootstrap CPU"))
summary = []
for si, scale in enumerate(scales):
    env["LAB_SCALE"] = scale
    results = {}
    for n in sizes:
        wall, critical, busy, saturated, own, p, work = one_apply(binary, n)
        results[n] = wall
        print("%-6s %-8s %10.2f %14.2f %7.2f %5.0f%% %9.0f%% %13.2f s" % (
            scale, "1+%d" % n, wall, critical, wall / critical, busy * 100, saturated * 100, own))
        if si == 0 and n == sizes[-1]:
            noops = []
            for _ in range(5):
                t = time.perf_counter()
                r = sh([binary, "apply", "-f", p, "--auto-approve"], cwd=work)
                noops.append(time.perf_counter() - t)
                if r.returncode != 0 or "No changes." not in r.stdout:
                    sys.exit("no-op apply changed something:\n" + r.stdout[-2000:])
            print("no-op apply on 1+%d hosts (connect, refresh facts, preflight, readiness): median %.3f s over 5 "
                  "(min %.3f, max %.3f); load average %.1f" % (n, statistics.median(noops), min(noops), max(noops),
                                                             os.getloadavg()[0]))
            plans, cpus = [], []
            for _ in range(5):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                r = sh([binary, "plan", "-f", p, "--refresh", "--detailed-exitcode"], cwd=work)
                plans.append(time.perf_counter() - t)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                if r.returncode != 0 or "no drift" not in r.stdout:
                    sys.exit("no-op plan --refresh found changes or failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
            print("no-op plan --refresh on 1+%d hosts (connect, facts): median %.3f s over 5 (min %.3f, max %.3f; "
                  "bootstrap's CPU %.2f s; target: under 1 s); load average %.1f"
                  % (n, statistics.median(plans), min(plans), max(plans), statistics.median(cpus), os.getloadavg()[0]))
            print(tool_call_cost())
        sh(lab + ["down"])
    if len(sizes) > 1:
        summary.append("at LAB_SCALE=%s: %.2fx" % (scale, results[sizes[-1]] / results[sizes[0]]))
if summary:
    print("1+%d vs 1+%d wall time %s (target: within 1.2x)" % (sizes[-1], sizes[0], "; ".join(summary)))
