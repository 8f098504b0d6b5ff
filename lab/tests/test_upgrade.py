"""kubeadm upgrades in the lab are as strict as the real procedure: one minor at a time, kubeadm first, the
control plane before the nodes, kubelets never newer than the API server; versions follow what was upgraded.

Own lab on 127.0.67 (a 1.34.7 cluster: lab-1 control plane, lab-2 worker)."""
import json
import time

import pytest

from k8slab import Lab, join_command, prepare_script, require_root

KC = "kubectl --kubeconfig /etc/kubernetes/admin.conf "


def repo(minor):
    """Point apt at the pkgs.k8s.io repository of `minor` (as the upgrade guide says)."""
    return ("sed -i 's#/v1\\.[0-9]*/deb/#/v%s/deb/#' /etc/apt/sources.list.d/kubernetes.list && apt-get update -q "
            ">/dev/null && " % minor)


def install(pkg, ver, minor):
    return (repo(minor) + "apt-mark unhold %s >/dev/null && apt-get install -y --allow-downgrades %s=%s-1.1 >/dev/null "
            "&& apt-mark hold %s >/dev/null" % (pkg, pkg, ver, pkg))


def restart_kubelet():
    return "systemctl daemon-reload && systemctl restart kubelet"


@pytest.fixture(scope="module")
def lab():
    require_root()
    lb = Lab("upgrade", "127.0.67", hosts=2).up()
    try:
        lb.prepare(1, 2, script=prepare_script("1.34", "1.34.7-1.1"))
        out = lb.ok(1, "kubeadm init --pod-network-cidr=10.244.0.0/16")
        lb.ok(2, join_command(out))
        lb.ok(1, "curl -fsSL https://github.com/flannel-io/flannel/releases/download/v0.26.1/kube-flannel.yml | "
                 + KC + "apply -f -")
        assert lb.kubectl(1, "wait --for=condition=Ready node --all --timeout=30s").returncode == 0
        yield lb
    finally:
        lb.down()


def kubelet_versions(lab):
    nodes = json.loads(lab.ok(1, KC + "get nodes -o json"))["items"]
    return {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes}


def test_the_repository_carries_the_maintained_releases(lab):
    out = lab.ok(2, repo("1.36") + "apt-cache madison kubeadm")
    assert "1.36.1-1.1" in out and "1.36.2-1.1" not in out
    out = lab.ok(2, repo("1.35") + "apt-cache madison kubeadm")
    assert "1.35.5-1.1" in out and "1.35.0-1.1" in out
    lab.ok(2, repo("1.34") + "true")


def test_nodes_cannot_go_first(lab):
    # a worker's `kubeadm upgrade node` before the control plane ran `upgrade apply`
    lab.ok(2, install("kubeadm", "1.35.5", "1.35"))
    p = lab.sh(2, "kubeadm upgrade node")
    assert p.returncode == 1 and "run 'kubeadm upgrade apply v1.35.5' on a control plane node first" in p.stderr, \
        p.stderr
    # a kubelet newer than the API server never registers its status
    lab.ok(2, install("kubelet", "1.35.5", "1.35") + " && " + restart_kubelet())
    time.sleep(3)
    assert kubelet_versions(lab)["lab-2"] == "v1.34.7"
    assert "is newer than the API server version v1.34.7" in lab.ok(2, "cat /var/log/labnode/kubelet.log")
    lab.ok(2, install("kubelet", "1.34.7", "1.34") + " && " + restart_kubelet())


def test_one_minor_at_a_time_and_kubeadm_first(lab):
    lab.ok(1, install("kubeadm", "1.36.1", "1.36"))
    plan = lab.ok(1, "kubeadm upgrade plan")
    assert "kubeadm can upgrade only 1 minor version at a time: upgrade to v1.35 first" in plan, plan
    assert "kubeadm upgrade apply v1.36.1" not in plan
    p = lab.sh(1, "kubeadm upgrade apply v1.36.1 -y")
    assert p.returncode == 1 and "too high; kubeadm can upgrade only 1 minor version at a time" in p.stderr, p.stderr
    # a newer kubeadm does not apply an older minor either
    p = lab.sh(1, "kubeadm upgrade apply v1.35.5 -y")
    assert p.returncode == 1 and 'can only be used to upgrade to Kubernetes version "v1.36"' in p.stderr, p.stderr
    lab.ok(1, install("kubeadm", "1.35.0", "1.35"))
    p = lab.sh(1, "kubeadm upgrade apply v1.35.5 -y")
    assert p.returncode == 1 and "is higher than the kubeadm version" in p.stderr, p.stderr
    assert "Server Version: v1.34.7" in lab.ok(1, KC + "version")


def test_upgrade_follows_the_procedure(lab):
    lab.ok(1, install("kubeadm", "1.35.5", "1.35"))
    assert "kubeadm upgrade apply v1.35.5" in lab.ok(1, "kubeadm upgrade plan")
    out = lab.ok(1, "kubeadm upgrade apply v1.35.5 -y")
    assert '[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "v1.35.5"' in out
    # the static pod restarts on its new manifest: the API server is the new binary
    deadline = time.time() + 20
    while time.time() < deadline:
        p = lab.sh(1, KC + "version -o json")
        if p.returncode == 0 and json.loads(p.stdout)["serverVersion"]["gitVersion"] == "v1.35.5":
            break
        time.sleep(0.5)
    assert json.loads(p.stdout)["serverVersion"]["gitVersion"] == "v1.35.5", p.stdout + p.stderr
    assert json.loads(lab.ok(1, "curl -fsS --cacert /etc/kubernetes/pki/ca.crt https://%s:6443/version"
                             % lab.addr(1)))["gitVersion"] == "v1.35.5"
    assert "manifest changed, restarting" in lab.ok(1, "cat /var/log/labnode/kubelet.log")
    # kubelets report the version they run (apt restarts an upgraded package's service, as Debian's do)
    lab.ok(1, KC + "drain lab-1 --ignore-daemonsets --delete-emptydir-data")
    lab.ok(1, install("kubelet", "1.35.5", "1.35") + " && " + restart_kubelet())
    lab.ok(1, KC + "uncordon lab-1")
    lab.ok(2, "kubeadm upgrade node")
    lab.ok(2, install("kubelet", "1.35.5", "1.35") + " && " + restart_kubelet())
    deadline = time.time() + 20
    while time.time() < deadline and set(kubelet_versions(lab).values()) != {"v1.35.5"}:
        time.sleep(0.5)
    assert kubelet_versions(lab) == {"lab-1": "v1.35.5", "lab-2": "v1.35.5"}
    assert lab.kubectl(1, "wait --for=condition=Ready node --all --timeout=30s").returncode == 0
