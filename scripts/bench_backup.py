#!/usr/bin/env python3
"""Benchmark of `bootstrap backup` (and one `bootstrap restore`) on a lab cluster with the full add-on stack:
1 control plane + 2 workers, flannel, metrics-server, monitoring, logging, tracing, dashboard and the example app.
Prints the archive and snapshot sizes, the median wall time of RUNS backups and the time of one
restore of the last archive. The lab's `fast` profile: the figures are bootstrap's own work (SSH, etcdctl
install check, snapshot, SFTP download, archive), not simulated delays.
Usage: bench_backup.py BOOTSTRAP [RUNS, default 5]   (LAB_DIR / LAB_NET to move the lab; needs root)"""
import os, re, shutil, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.abspath(sys.argv[1])
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
env = dict(os.environ, NO_COLOR="1")
env.setdefault("LAB_DIR", "/srv/bootstrap-bench-backup")
env.setdefault("LAB_NET", "127.0.31")
lab = ["bash", os.path.join(root, "scripts/lab")]
net, ldir = env["LAB_NET"], env["LAB_DIR"]


def sh(args, **kw):
    return subprocess.run(args, env=env, capture_output=True, text=True, **kw)


def must(p, what):
    if p.returncode != 0:
        sys.exit("bench_backup: %s failed (exit %d):\n%s%s" % (what, p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


PLAN = """apiVersion: bootstrap.k8s.lab/v1alpha1
kind: Cluster
metadata:
  name: bench
spec:
  kubernetes:
    version: "1.34.1"
  network:
    cni: flannel
    podSubnet: 10.244.0.0/16
  ssh:
    user: ubuntu
    keyPath: {dir}/id_ed25519
    knownHosts: {dir}/known_hosts
  hosts:
    - {{ name: cp-1, address: {net}.11, role: control-plane }}
    - {{ name: worker-1, address: {net}.12, role: worker }}
    - {{ name: worker-2, address: {net}.13, role: worker }}
  addons:
    metricsServer: {{ enabled: true }}
    monitoring: {{ enabled: true }}
    logging: {{ enabled: true }}
    tracing: {{ enabled: true }}
    dashboard: {{ enabled: true }}
  manifests: [ apps/my-app.yaml ]
"""

work = tempfile.mkdtemp(prefix="bench-backup-")
try:
    sh(lab + ["down"])
    must(sh(lab + ["up", "--hosts", "3"]), "lab up")
    os.makedirs(os.path.join(work, "apps"))
    shutil.copy(os.path.join(root, "Plans/apps/my-app.yaml"), os.path.join(work, "apps/my-app.yaml"))
    plan = os.path.join(work, "plan.yaml")
    with open(plan, "w") as f:
        f.write(PLAN.format(dir=ldir, net=net))
    t = time.perf_counter()
    must(sh([binary, "apply", "-f", plan, "--auto-approve"], cwd=work), "apply")
    print("apply with the full add-on stack: %.1f s" % (time.perf_counter() - t))
    walls, sizes, snaps = [], [], []
    for i in range(runs):
        out = os.path.join(work, "b%d.bootstrap-backup" % i)
        t = time.perf_counter()
        p = must(sh([binary, "backup", "-f", plan, "--out", out], cwd=work), "backup")
        walls.append(time.perf_counter() - t)
        m = re.search(r"(\d+) bytes \(snapshot (\d+) bytes\)", p.stdout)
        sizes.append(int(m.group(1)))
        snaps.append(int(m.group(2)))
    print("backup: archive %d bytes (snapshot %d bytes), median wall %.2f s (min %.2f, max %.2f) over %d runs; "
          "load average %.1f" % (sizes[-1], snaps[-1], statistics.median(walls), min(walls), max(walls), runs,
                                  os.getloadavg()[0]))
    t = time.perf_counter()
    must(sh([binary, "restore", "-f", plan, "--from", os.path.join(work, "b%d.bootstrap-backup" % (runs - 1)),
             "--auto-approve"], cwd=work), "restore")
    print("restore of that archive (1 control plane, 2 workers Ready again): %.1f s" % (time.perf_counter() - t))
finally:
    sh(lab + ["down"])
    shutil.rmtree(work, ignore_errors=True)
