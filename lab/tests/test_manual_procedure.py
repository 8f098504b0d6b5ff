"""The documented manual procedure (the official kubeadm install guide, typed as a person would, one command
at a time over plain `ssh` as the login user with sudo) on a 1 + 1 lab ends with two Ready nodes.

This is the proof that the lab accepts the real procedure, independent of our product."""
import json
import os
import re
import subprocess
import time

import pytest

from k8slab import Lab, require_root, module_net

NET = module_net("127.0.64")

# https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/install-kubeadm/ and
# .../container-runtimes/ and .../create-cluster-kubeadm/, for v1.34 with containerd and flannel.
EVERY_NODE = [
    "sudo swapoff -a",
    "sudo sed -i '/ swap / s/^\\(.*\\)$/#\\1/g' /etc/fstab",
    "cat <<EOF | sudo tee /etc/modules-load.d/k8s.conf\noverlay\nbr_netfilter\nEOF",
    "sudo modprobe overlay",
    "sudo modprobe br_netfilter",
    "cat <<EOF | sudo tee /etc/sysctl.d/k8s.conf\nnet.bridge.bridge-nf-call-iptables  = 1\n"
    "net.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward                 = 1\nEOF",
    "sudo sysctl --system",
    "lsmod | grep br_netfilter",
    "sysctl net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.ipv4.ip_forward",
    "sudo apt-get update",
    "sudo apt-get install -y containerd",
    "sudo mkdir -p /etc/containerd",
    "containerd config default | sudo tee /etc/containerd/config.toml > /dev/null",
    "sudo sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml",
    "sudo systemctl restart containerd",
    "sudo apt-get update",
    "sudo apt-get install -y apt-transport-https ca-certificates curl gpg",
    "sudo mkdir -p -m 755 /etc/apt/keyrings",
    "curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key | sudo gpg --dearmor -o "
    "/etc/apt/keyrings/kubernetes-apt-keyring.gpg",
    "echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /'"
    " | sudo tee /etc/apt/sources.list.d/kubernetes.list",
    "sudo apt-get update",
    "sudo apt-get install -y kubelet kubeadm kubectl",
    "sudo apt-mark hold kubelet kubeadm kubectl",
    "sudo systemctl enable --now kubelet",
]
CONTROL_PLANE = [
    "sudo kubeadm init --pod-network-cidr=10.244.0.0/16",
    "mkdir -p $HOME/.kube",
    "sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config",
    "sudo chown $(id -u):$(id -g) $HOME/.kube/config",
    # the real kubectl fetches a URL itself, and the lab has no internet: the lab's curl knows the file
    "curl -fsSL https://github.com/flannel-io/flannel/releases/latest/download/kube-flannel.yml | kubectl apply -f -",
]


@pytest.fixture(scope="module")
def lab():
    require_root()
    lb = Lab("manual", NET, hosts=2).up()
    try:
        yield lb
    finally:
        lb.down()


def ssh(lab, i, command, timeout=180):
    inv = json.load(open(os.path.join(lab.dir, "inventory.json")))
    host = inv["hosts"][i - 1]
    argv = ["ssh", "-i", host.get("keyPath") or inv["keyPath"], "-p", str(host.get("port", 22)),
            "-o", "UserKnownHostsFile=" + inv["knownHosts"], "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
            "%s@%s" % (host["user"], host["address"]), command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_all(lab, i, commands):
    outs = []
    for c in commands:
        p = ssh(lab, i, c)
        assert p.returncode == 0, "lab-%d: `%s` failed (%d)\nstdout:\n%s\nstderr:\n%s" % (
            i, c, p.returncode, p.stdout[-3000:], p.stderr[-3000:])
        outs.append(p.stdout)
    return outs


def test_manual_kubeadm_procedure_gives_two_ready_nodes(lab):
    t0 = time.time()
    # root login is refused, the login user works: this is an EC2-like image
    assert ssh(lab, 1, "id -un").stdout.strip() == "ubuntu"
    for i in (1, 2):
        run_all(lab, i, EVERY_NODE)
    # kubelet crash-loops until kubeadm configures it, as the guide warns (between restarts it is
    # "activating"; a restarted process may be "active" for a moment before it exits again)
    states = ssh(lab, 2, "for i in 1 2 3 4 5 6 7 8; do systemctl is-active kubelet; sleep 0.3; done").stdout.split()
    assert "activating" in states, states
    outs = run_all(lab, 1, CONTROL_PLANE)
    init = outs[0]
    assert "Your Kubernetes control-plane has initialized successfully!" in init
    # the person copies the join command kubeadm printed (two lines joined by a backslash)
    m = re.search(r"^(kubeadm join \S+ --token \S+ \\\n\s*--discovery-token-ca-cert-hash sha256:[0-9a-f]{64})",
                  init, re.M)
    assert m, init
    join = " ".join(m.group(1).replace("\\\n", " ").split())
    # ... and checks the CA hash with the documented openssl pipeline
    digest = ssh(lab, 1, "openssl x509 -pubkey -in /etc/kubernetes/pki/ca.crt | openssl rsa -pubin -outform der "
                         "2>/dev/null | openssl dgst -sha256 -hex | sed 's/^.* //'").stdout.strip()
    assert join.endswith("sha256:" + digest)
    p = ssh(lab, 2, "sudo " + join)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "This node has joined the cluster" in p.stdout
    p = ssh(lab, 1, "kubectl wait --for=condition=Ready node --all --timeout=120s")
    assert p.returncode == 0, p.stdout + p.stderr
    out = ssh(lab, 1, "kubectl get nodes").stdout
    rows = [l.split() for l in out.strip().splitlines()[1:]]
    assert sorted((r[0], r[1]) for r in rows) == [("lab-1", "Ready"), ("lab-2", "Ready")], out
    assert [r[2] for r in sorted(rows)] == ["control-plane", "<none>"]
    pods = json.loads(ssh(lab, 1, "kubectl get pods -A -o json").stdout)["items"]
    assert pods and all(p["status"]["phase"] == "Running" for p in pods), \
        [(p["metadata"]["name"], p["status"]["phase"]) for p in pods if p["status"]["phase"] != "Running"]
    assert ssh(lab, 2, "test -s /etc/cni/net.d/10-flannel.conflist").returncode == 0
    print("manual procedure on a 1+1 lab: %.1fs" % (time.time() - t0))
