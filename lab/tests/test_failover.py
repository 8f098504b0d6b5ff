"""Losing the first control plane (issue 14): three control planes behind the lab's load balancer
(`scripts/lab lb up`, the control-plane endpoint) and a worker. The registry's owner replicates every write to
the other etcd members; when the first control plane's machine is wiped, the first live member takes over with
its copy, the others forward to it, the worker's kubelet keeps its API server through the endpoint, and the lost
member can be removed and a new control plane joined. Losing quorum still stops writes.

Own lab on 127.0.78: lab-1, lab-2, lab-3 control planes, lab-4 worker."""
import json
import time

import pytest

from k8slab import CERTS, INSTALL_ETCDCTL as INSTALL, KC, Lab, join_command, require_root


@pytest.fixture(scope="module")
def lab():
    require_root()
    lb = Lab("failover", "127.0.78", hosts=4).up()
    try:
        lb.lab("lb", "up")
        lb.endpoint = "%s.250:6443" % lb.net
        lb.prepare(1, 2, 3, 4)
        out = lb.ok(1, "kubeadm init --control-plane-endpoint %s --upload-certs "
                       "--pod-network-cidr=10.244.0.0/16" % lb.endpoint)
        for h in (2, 3):
            lb.ok(h, join_command(out, control_plane=True))
        lb.ok(4, join_command(out))
        lb.ok(2, INSTALL)
        yield lb
    finally:
        lb.down()


def members(lab, host=2):
    return [l.split(", ") for l in lab.ok(host, "etcdctl " + CERTS + "member list").splitlines()]


def until(check, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def test_the_endpoint_is_the_load_balancer(lab):
    assert lab.lab("lb", "status").returncode == 0
    # every node reaches the API server through it; its certificate names the endpoint
    assert "server: https://%s" % lab.endpoint in lab.ok(4, "cat /etc/kubernetes/kubelet.conf")
    assert lab.ok(4, "curl -fsS --cacert /etc/kubernetes/pki/ca.crt https://%s/livez" % lab.endpoint).strip() == "ok"
    inv = json.loads(open(lab.dir + "/inventory.json").read())
    assert inv["loadBalancer"] == {"address": "%s.250" % lab.net, "port": 6443}


def test_every_member_holds_a_copy_of_the_registry(lab):
    lab.ok(1, KC + "create namespace replicated")
    for h in (2, 3):
        assert until(lambda: '"replicated"' in lab.sh(h, "cat /var/lib/etcd/store.json").stdout, 10), h
        assert lab.ok(h, "stat -c %a /var/lib/etcd/store.json").strip() == "600"
    # the worker is no etcd member: it holds none
    assert lab.sh(4, "test -e /var/lib/etcd/store.json").returncode == 1


def test_losing_the_first_control_plane_keeps_the_cluster(lab):
    lab.ok(1, KC + "create namespace before-loss")
    logged = len(lab.ok(4, "cat /var/log/labnode/kubelet.log"))
    lab.lab("destroy-host", "lab-1")
    # lab-2, the first live member, takes over (requests wait for the election); lab-3 forwards to it; writes work
    # (2 of 3 members answer)
    p = lab.kubectl(3, "create namespace after-loss")
    assert p.returncode == 0, (p.stderr, lab.sh(2, "tail -5 /var/log/labnode/kube-apiserver.log").stdout)
    assert lab.kubectl(3, "get namespace before-loss").returncode == 0
    assert lab.kubectl(3, "get namespace after-loss").returncode == 0
    assert "owns the registry now" in lab.ok(2, "cat /var/log/labnode/kube-apiserver.log")
    # the worker kept its API server through the load balancer: it still posts its status (no CNI here: the
    # nodes are NotReady, but their kubelets report)
    hb = lab.nodes(2)["lab-4"]["lastHeartbeatTime"]
    assert until(lambda: lab.nodes(2)["lab-4"]["lastHeartbeatTime"] != hb, 30), lab.nodes(2)
    # at most a request in flight to lab-1 when it died failed; the next one went through
    log = lab.ok(4, "cat /var/log/labnode/kubelet.log")[logged:]
    assert log.count("Unable to register node") <= 1, log
    assert log.rfind("Unable to register node") < log.rfind("API server reachable again") or \
        "Unable to register node" not in log, log
    # the lost member is still listed until it is removed, from a member that stays
    ms = {m[2]: m for m in members(lab)}
    assert sorted(ms) == ["lab-1", "lab-2", "lab-3"]
    out = lab.ok(2, "etcdctl " + CERTS + "member remove " + ms["lab-1"][0])
    assert "removed from cluster" in out
    assert sorted(m[2] for m in members(lab)) == ["lab-2", "lab-3"]


def test_a_new_control_plane_joins_through_the_new_owner(lab):
    # the wiped machine comes back as a new control plane (lab-1 is a fresh host now)
    lab.prepare(1)
    key = lab.ok(2, "kubeadm init phase upload-certs --upload-certs").strip().splitlines()[-1]
    cmd = lab.ok(2, "kubeadm token create --print-join-command").strip()
    lab.ok(1, cmd + " --control-plane --certificate-key " + key)
    assert until(lambda: sorted(m[2] for m in members(lab)) == ["lab-1", "lab-2", "lab-3"]
                 and {m[1] for m in members(lab)} == {"started"}, 30), members(lab)
    assert lab.kubectl(1, "create namespace rejoined").returncode == 0
    assert until(lambda: '"rejoined"' in lab.sh(1, "cat /var/lib/etcd/store.json").stdout, 10)


def test_losing_quorum_still_stops_writes(lab):
    lab.lab("destroy-host", "lab-3")
    lab.lab("destroy-host", "lab-1")
    time.sleep(5)
    p = lab.kubectl(2, "create namespace no-quorum")
    assert p.returncode == 1 and "etcdserver: request timed out" in p.stderr, p.stderr
    assert lab.kubectl(2, "get namespace after-loss").returncode == 0


def test_the_load_balancer_goes_with_the_lab(lab):
    import socket
    lab.lab("lb", "down")
    assert lab.lab("lb", "status", check=False).returncode == 1
    with pytest.raises(OSError):
        socket.create_connection(("%s.250" % lab.net, 6443), timeout=1).close()
    assert "loadBalancer" not in json.loads(open(lab.dir + "/inventory.json").read())
    lab.lab("lb", "up")
    assert lab.lab("lb", "status").returncode == 0
    pid = int(open(lab.dir + "/lb.pid").read())
    lab.lab("down")
    import os
    assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"
