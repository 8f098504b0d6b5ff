"""Helpers for the Kubernetes-toolchain lab tests: a private lab (own LAB_DIR + LAB_NET) per test module,
commands run inside hosts with `scripts/lab exec`, and the node preparation of the kubeadm install guide."""
import concurrent.futures
import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "scripts", "lab")

# What the official guide has a person run on every node before kubeadm (as root, in one go).
PREPARE_TEMPLATE = r"""
swapoff -a
sed -i '/\sswap\s/s/^/#/' /etc/fstab
printf 'overlay\nbr_netfilter\n' > /etc/modules-load.d/k8s.conf
modprobe overlay
modprobe br_netfilter
printf 'net.bridge.bridge-nf-call-iptables  = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward                 = 1\n' > /etc/sysctl.d/k8s.conf
sysctl --system >/dev/null 2>&1
apt-get update -q >/dev/null
apt-get install -y containerd >/dev/null
mkdir -p /etc/containerd
containerd config default > /etc/containerd/config.toml
sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml
systemctl restart containerd
mkdir -p -m 755 /etc/apt/keyrings
curl -fsSL https://pkgs.k8s.io/core:/stable:/v{minor}/deb/Release.key | gpg --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v{minor}/deb/ /' > /etc/apt/sources.list.d/kubernetes.list
apt-get update -q >/dev/null
apt-get install -y kubelet={deb} kubeadm={deb} kubectl={deb} >/dev/null
apt-mark hold kubelet kubeadm kubectl >/dev/null
systemctl enable --now kubelet
test "$(sysctl -n net.ipv4.ip_forward)" = 1 && systemctl is-active containerd >/dev/null && echo PREPARED
"""


def prepare_script(minor="1.34", deb="1.34.1-1.1"):
    return PREPARE_TEMPLATE.replace("{minor}", minor).replace("{deb}", deb)


PREPARE = prepare_script()

# kubectl as the admin, etcdctl and etcdutl installed from etcd's release tarball, and etcdctl's flags for this
# host's etcd with the healthcheck client certificate (the etcd tests' and the failover tests')
KC = "kubectl --kubeconfig /etc/kubernetes/admin.conf "
INSTALL_ETCDCTL = ("curl -fsSLo /tmp/etcd.tgz https://github.com/etcd-io/etcd/releases/download/v3.6.4/"
                   "etcd-v3.6.4-linux-amd64.tar.gz && tar -xzf /tmp/etcd.tgz -C /tmp && install -m 0755 "
                   "/tmp/etcd-v3.6.4-linux-amd64/etcdctl /tmp/etcd-v3.6.4-linux-amd64/etcdutl /usr/local/bin/")
CERTS = ("--endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
         "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key ")


def module_net(net):
    """A module's fixed 127.0.X net, moved to $LAB_TEST_NET_PREFIX.X when that is set."""
    pre = os.environ.get("LAB_TEST_NET_PREFIX")
    return pre + "." + net.rsplit(".", 1)[1] if pre and net.startswith("127.0.") else net


def require_root():
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the lab tests need root (CI is set, so this is a failure, not a skip)")
        pytest.skip("the lab tests need root")


class Lab:
    def __init__(self, name, net, hosts=2, args=()):
        # LAB_TEST_NET_PREFIX=127.86 moves every module's fixed 127.0.X net to 127.86.X (and its LAB_DIR), so
        # two people can run the lab tests at once
        pre = os.environ.get("LAB_TEST_NET_PREFIX")
        if pre:
            net = module_net(net)
            name = "%s-%s" % (name, pre)
        self.name, self.net, self.n = name, net, hosts
        self.dir = "/srv/lab-t-%s" % name
        self.args = list(args)
        self.env = dict(os.environ, LAB_DIR=self.dir, LAB_NET=net)

    def addr(self, i):
        return "%s.%d" % (self.net, 10 + i)

    def lab(self, *args, check=True, timeout=120, input=None):
        p = subprocess.run([LAB] + list(args), env=self.env, capture_output=True, text=True, timeout=timeout,
                           input=input)
        if check and p.returncode != 0:
            raise AssertionError("scripts/lab %s failed (%d):\n%s\n%s" % (" ".join(args), p.returncode, p.stdout,
                                                                          p.stderr))
        return p

    def up(self):
        self.lab("down", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.lab("up", "--hosts", str(self.n), *self.args)
        return self

    def down(self):
        self.lab("down", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def sh(self, host, script, timeout=120):
        """Run a shell script as root inside host `lab-N` (or N); returns CompletedProcess."""
        h = host if isinstance(host, str) else "lab-%d" % host
        return self.lab("exec", h, "bash", "-c", script, check=False, timeout=timeout)

    def ok(self, host, script, timeout=120):
        p = self.sh(host, script, timeout)
        assert p.returncode == 0, "on %s: %s\nrc=%d\nstdout:\n%s\nstderr:\n%s" % (host, script, p.returncode,
                                                                                  p.stdout, p.stderr)
        return p.stdout

    def kubectl(self, host, args, timeout=120):
        return self.sh(host, "kubectl --kubeconfig /etc/kubernetes/admin.conf " + args, timeout)

    def prepare(self, *hosts, script=None):
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            outs = list(ex.map(lambda h: self.sh(h, script or PREPARE), hosts))
        for h, p in zip(hosts, outs):
            assert "PREPARED" in p.stdout, "preparing lab-%s failed:\n%s\n%s" % (h, p.stdout, p.stderr)

    def clock(self, dur):
        self.lab("clock", "advance", dur)

    def nodes(self, host=1):
        p = self.kubectl(host, "get nodes -o json")
        assert p.returncode == 0, p.stderr
        out = {}
        for n in json.loads(p.stdout)["items"]:
            ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
            out[n["metadata"]["name"]] = ready
        return out


def join_command(init_output, control_plane=False):
    """The worker (or control-plane) join command kubeadm init printed, as one line."""
    text = init_output.replace("\\\n", " ")
    lines = [l.strip() for l in text.splitlines() if l.strip().startswith("kubeadm join")]
    for l in lines:
        if ("--control-plane" in l) == control_plane:
            return " ".join(l.split())
    raise AssertionError("no join command in:\n" + init_output)
