"""Fixtures for the lab's own tests (and engineer B's Kubernetes-tool tests).

`lab` is a module-scoped factory: `lab(3)`, `lab(2, "amazon-linux-2023")`, `lab(1, key="fresh")`,
`lab(1, cpus=1, memory=1024)` bring up a
lab in a private LAB_DIR (/srv/bootstrap-lab-test-…) and LAB_NET (127.X.Y), reused within the test module
for the same arguments, torn down (`scripts/lab down`) at the end of the module.

    def test_x(lab):
        l = lab(2)
        r = l.ssh("lab-1", "sudo -n swapoff -a && cat /proc/swaps")
        assert r.returncode == 0, r.stderr

Needs root: without it the tests are skipped, or FAIL when the CI env var is set.
"""
import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABCTL = os.path.join(ROOT, "lab", "labctl.py")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
_counter = [0]


def require_root():
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the lab tests need root (CI is set, so this is a failure, not a skip)")
        pytest.skip("the lab tests need root")


class Lab:
    """A running lab: its directory, network, inventory and helpers to reach its hosts."""

    def __init__(self, lab_dir, net):
        self.dir = lab_dir
        self.net = net
        self.env = dict(os.environ, LAB_DIR=lab_dir, LAB_NET=net)
        self.up_seconds = None
        self.up_output = ""

    # -- lifecycle
    def labctl(self, *args, check=False, timeout=300, input=None):
        r = subprocess.run([PY, LABCTL] + [str(a) for a in args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError("scripts/lab %s failed (%d):\n%s\n%s" % (" ".join(map(str, args)), r.returncode,
                                                                        r.stdout, r.stderr))
        return r

    def up(self, n_hosts, os_name, profile="fast", extra=()):
        t0 = time.time()
        r = self.labctl("up", "--hosts", n_hosts, "--os", os_name, "--profile", profile, *extra, timeout=600)
        self.up_seconds = time.time() - t0
        self.up_output = r.stdout + r.stderr
        return r

    def down(self):
        return self.labctl("down", timeout=120)

    # -- inventory
    @property
    def inventory(self):
        with open(os.path.join(self.dir, "inventory.json")) as f:
            return json.load(f)

    @property
    def hosts(self):
        return self.inventory["hosts"]

    def host(self, ref):
        for h in self.hosts:
            if ref in (h["name"], h["address"]):
                return h
        if isinstance(ref, int):
            return self.hosts[ref - 1]
        raise KeyError(ref)

    @property
    def key(self):
        return self.inventory["keyPath"]

    @property
    def known_hosts(self):
        return self.inventory["knownHosts"]

    # -- reaching hosts
    def ssh_argv(self, ref, user=None, known_hosts=None, extra=()):
        h = self.host(ref)
        return ["ssh", "-i", self.key, "-o", "UserKnownHostsFile=" + (known_hosts or self.known_hosts),
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-p", str(h["port"])] + list(extra) + \
               ["%s@%s" % (user or h["user"], h["address"])]

    def ssh(self, ref, command, user=None, check=False, timeout=120, input=None, known_hosts=None):
        """Run a shell command on a host over real ssh as its login user; CompletedProcess (text)."""
        r = subprocess.run(self.ssh_argv(ref, user, known_hosts) + ["--", command], capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError("ssh %s %r failed (%d):\n%s\n%s" % (ref, command, r.returncode, r.stdout, r.stderr))
        return r

    def exec(self, ref, command, check=False, timeout=120):
        """Run a shell command as root inside the host's namespaces (no ssh)."""
        r = self.labctl("exec", self.host(ref)["name"], "/bin/bash", "-c", command, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("exec %s %r failed (%d):\n%s\n%s" % (ref, command, r.returncode, r.stdout, r.stderr))
        return r

    def holder_pids(self):
        out = []
        for h in self.hosts:
            try:
                with open(os.path.join(self.dir, "hosts", h["name"], "holder.pid")) as f:
                    out.append(int(f.read()))
            except (OSError, ValueError):
                pass
        return out

    def namespaces(self):
        ns = set()
        for h in self.hosts:
            try:
                with open(os.path.join(self.dir, "hosts", h["name"], "ns")) as f:
                    ns.add(f.read().strip())
            except OSError:
                pass
        return ns


def free_net():
    """A LAB_NET unlikely to collide with another concurrent test run (checked by `up` anyway)."""
    _counter[0] += 1
    a = 100 + os.getpid() % 140
    b = (_counter[0] * 7 + os.getpid() // 140) % 250 + 1
    return "127.%d.%d" % (a, b)


def new_lab(n_hosts=3, os_name="ubuntu-22.04", profile="fast", extra=()):
    require_root()
    last = None
    for _ in range(5):
        net = free_net()
        d = "/srv/bootstrap-lab-test-%d-%s" % (os.getpid(), net.replace(".", "-"))
        lab = Lab(d, net)
        r = lab.up(n_hosts, os_name, profile, extra)
        if r.returncode == 0:
            return lab
        last = r
        lab.down()
        if "already taken" not in r.stderr:
            break
    raise AssertionError("scripts/lab up failed:\n%s\n%s" % (last.stdout, last.stderr))


@pytest.fixture(scope="module")
def lab():
    labs = {}

    def make(n_hosts=3, os="ubuntu-22.04", profile="fast", key=None, cpus=None, memory=None):
        k = (n_hosts, os, profile, key, cpus, memory)
        if k not in labs:
            extra = (["--cpus", cpus] if cpus else []) + (["--memory", memory] if memory else [])
            labs[k] = new_lab(n_hosts, os, profile, extra)
        return labs[k]

    yield make
    for l in labs.values():
        l.down()
