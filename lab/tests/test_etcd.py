"""etcd in the lab (issue 14): etcdctl/etcdutl from the etcd release tarball against the etcd static pods, with
the etcd client certificates; snapshots hold the registry at that moment with a hash; a restore into a new data
directory brings exactly those objects back; membership is real enough that losing quorum stops writes.

Own lab on 127.0.69: lab-1, lab-2, lab-3 control planes."""
import json
import time

import pytest

from k8slab import CERTS, INSTALL_ETCDCTL as INSTALL, KC, Lab, join_command, require_root


@pytest.fixture(scope="module")
def lab():
    require_root()
    lb = Lab("etcd", "127.0.69", hosts=3).up()
    try:
        lb.prepare(1, 2, 3)
        out = lb.ok(1, "kubeadm init --control-plane-endpoint %s:6443 --upload-certs "
                       "--pod-network-cidr=10.244.0.0/16" % lb.addr(1))
        for h in (2, 3):
            lb.ok(h, join_command(out, control_plane=True))
        for h in (1, 2, 3):
            lb.ok(h, INSTALL)
        yield lb
    finally:
        lb.down()


def members(lab, host=1):
    return [l.split(", ") for l in lab.ok(host, "etcdctl " + CERTS + "member list").splitlines()]


def test_membership_follows_kubeadm(lab):
    ms = members(lab)
    assert sorted(m[2] for m in ms) == ["lab-1", "lab-2", "lab-3"] and {m[1] for m in ms} == {"started"}
    assert "https://%s:2380" % lab.addr(2) in [m[3] for m in ms]
    # the same cluster through another member's endpoint
    assert len(members(lab, 3)) == 3
    assert "is healthy" in lab.ok(1, "etcdctl " + CERTS + "endpoint health")
    # each started member's data directory holds the cluster's ID
    ids = {lab.sh(h, "cat /var/lib/etcd/member/lab-cluster-id").stdout.strip() for h in (1, 2, 3)}
    assert len(ids) == 1 and len(ids.pop()) == 16, [lab.sh(h, "ls -R /var/lib/etcd; tail -5 /var/log/labnode/etcd.log").stdout for h in (1, 2, 3)]


def test_clients_need_the_etcd_certificates(lab):
    p = lab.sh(1, "etcdctl --endpoints=https://127.0.0.1:2379 member list")
    assert p.returncode == 1 and "context deadline exceeded" in p.stderr and "unknown authority" in p.stderr, p.stderr
    p = lab.sh(1, "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt member list")
    assert p.returncode == 1 and "context deadline exceeded" in p.stderr, p.stderr
    # a certificate of the cluster CA is not an etcd client certificate
    p = lab.sh(1, "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
                  "--cert=/etc/kubernetes/pki/apiserver-kubelet-client.crt "
                  "--key=/etc/kubernetes/pki/apiserver-kubelet-client.key member list")
    assert p.returncode == 1 and "context deadline exceeded" in p.stderr, p.stderr
    p = lab.sh(1, "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
                  "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/server.key "
                  "member list")
    assert p.returncode == 1 and "private key does not match public key" in p.stderr, p.stderr


def test_snapshot_save_status_and_restore(lab):
    lab.ok(1, KC + "create namespace before")
    out = lab.ok(1, "etcdctl " + CERTS + "snapshot save /root/snap.db")
    assert "Snapshot saved at /root/snap.db" in out
    assert lab.ok(1, "stat -c %a /root/snap.db").strip() == "600"
    status = lab.ok(1, "etcdutl snapshot status /root/snap.db -w json")
    assert json.loads(status)["revision"] > 0 and json.loads(status)["totalKey"] > 10
    # etcdctl 3.6 no longer has status/restore
    p = lab.sh(1, "etcdctl snapshot status /root/snap.db")
    assert p.returncode == 1 and 'unknown command "status"' in p.stderr
    # a truncated or tampered copy is refused
    lab.ok(1, "head -c 300 /root/snap.db > /root/cut.db && cp /root/snap.db /root/bad.db && "
              "printf 'X' | dd of=/root/bad.db bs=1 seek=40 conv=notrunc 2>/dev/null")
    for f in ("cut", "bad"):
        p = lab.sh(1, "etcdutl snapshot status /root/%s.db" % f)
        assert p.returncode == 1 and ("integrity check failed" in p.stderr or "invalid database" in p.stderr), p.stderr
        p = lab.sh(1, "etcdutl snapshot restore /root/%s.db --data-dir /root/x-%s" % (f, f))
        assert p.returncode == 1 and lab.sh(1, "test -e /root/x-%s" % f).returncode == 1
    # after the snapshot: one namespace more, one less
    lab.ok(1, KC + "create namespace after && " + KC + "delete namespace before --wait=false")
    deadline = time.time() + 20
    while time.time() < deadline and lab.kubectl(1, "get namespace before").returncode == 0:
        time.sleep(0.5)
    # the documented restore: static pods stopped, snapshot restored into a new data dir, etcd pointed at it
    a1 = lab.addr(1)
    lab.ok(1, "mkdir -p /root/m && mv /etc/kubernetes/manifests/*.yaml /root/m/ && "
              "for i in $(seq 60); do curl -sk https://%s:6443/livez >/dev/null || break; sleep 0.5; done" % a1)
    p = lab.sh(1, "etcdutl snapshot restore /root/snap.db --data-dir /var/lib/etcd")
    assert p.returncode == 1 and "not empty" in p.stderr
    lab.ok(1, "etcdutl snapshot restore /root/snap.db --data-dir /var/lib/etcd-restored --name lab-1 "
              "--initial-cluster lab-1=https://%s:2380 --initial-advertise-peer-urls https://%s:2380" % (a1, a1))
    lab.ok(1, "sed -i 's#--data-dir=/var/lib/etcd$#--data-dir=/var/lib/etcd-restored#' /root/m/etcd.yaml && "
              "grep -q etcd-restored /root/m/etcd.yaml && mv /root/m/*.yaml /etc/kubernetes/manifests/")
    deadline = time.time() + 30
    while time.time() < deadline and lab.kubectl(1, "get namespace before").returncode != 0:
        time.sleep(0.5)
    assert lab.kubectl(1, "get namespace before").returncode == 0
    assert lab.kubectl(1, "get namespace after").returncode == 1
    # a restored etcd is a new one-member cluster
    assert [m[2] for m in members(lab)] == ["lab-1"]


def rejoin(initial_cluster):
    """The documented re-join of a member: its etcd stopped, its data wiped, its manifest told the members."""
    return ("mkdir -p /root/e && mv /etc/kubernetes/manifests/etcd.yaml /root/e/ && "
            "for i in $(seq 60); do [ -z \"$(ss -Hltn 'sport = :2380')\" ] && break; sleep 0.5; done && "
            "rm -rf /var/lib/etcd/* && sed -i 's#^\\( *- --initial-cluster=\\).*#\\1%s#' /root/e/etcd.yaml && "
            "grep -q -- '--initial-cluster-state=existing' /root/e/etcd.yaml && "
            "mv /root/e/etcd.yaml /etc/kubernetes/manifests/" % initial_cluster)


def test_kubeadm_writes_the_members_into_etcd_yaml(lab):
    y = lab.ok(3, "cat /etc/kubernetes/manifests/etcd.yaml")
    assert "--initial-cluster=lab-1=https://%s:2380,lab-2=https://%s:2380,lab-3=https://%s:2380" % (
        lab.addr(1), lab.addr(2), lab.addr(3)) in y and "--initial-cluster-state=existing" in y, y
    y = lab.ok(1, "cat /etc/kubernetes/manifests/etcd.yaml")
    assert "--initial-cluster=lab-1=https://%s:2380" % lab.addr(1) in y and "initial-cluster-state" not in y, y


def test_a_member_with_data_from_before_the_restore_never_starts(lab):
    a2 = lab.addr(2)
    # lab-2's etcd still runs on its old data directory (the cluster before the restore): added again as a
    # member, it is refused by the restored cluster (cluster ID mismatch) and stays unstarted
    out = lab.ok(1, "etcdctl " + CERTS + "member add lab-2 --peer-urls=https://%s:2380" % a2)
    assert "ETCD_INITIAL_CLUSTER_STATE=\"existing\"" in out
    time.sleep(6)
    assert sorted(m[1] for m in members(lab)) == ["started", "unstarted"], members(lab)
    # while it has not started, the two-member cluster has no quorum: writes time out
    p = lab.kubectl(1, "create namespace q0")
    assert p.returncode == 1 and "etcdserver: request timed out" in p.stderr, p.stderr
    # its data wiped, but its manifest names members the cluster does not have: etcd's bootstrap check
    # refuses it (as etcd: "member count is unequal"), it stays unstarted
    a1 = lab.addr(1)
    lab.ok(2, rejoin("lab-1=https://%s:2380,lab-2=https://%s:2380,lab-3=https://%s:2380" % (a1, a2, lab.addr(3))))
    time.sleep(6)
    assert sorted(m[1] for m in members(lab)) == ["started", "unstarted"], members(lab)
    assert "member count is unequal" in lab.ok(2, "cat /var/log/labnode/etcd.log")
    # the documented re-join: data wiped, the members as they are now: it starts in the restored cluster
    lab.ok(2, rejoin("lab-1=https://%s:2380,lab-2=https://%s:2380" % (a1, a2)))
    deadline = time.time() + 20
    while time.time() < deadline and sorted(m[2] for m in members(lab)) != ["lab-1", "lab-2"]:
        time.sleep(0.5)
    assert sorted(m[2] for m in members(lab)) == ["lab-1", "lab-2"]
    assert lab.ok(2, "cat /var/lib/etcd/member/lab-cluster-id").strip() == \
        lab.ok(1, "cat /var/lib/etcd-restored/member/lab-cluster-id").strip()


def test_losing_quorum_stops_writes(lab):
    a3 = lab.addr(3)
    # etcd's strict reconfiguration check: a third member only once the second has started
    assert sorted(m[2] for m in members(lab)) == ["lab-1", "lab-2"]
    lab.ok(1, "etcdctl " + CERTS + "member add lab-3 --peer-urls=https://%s:2380" % a3)
    lab.ok(3, rejoin("lab-1=https://%s:2380,lab-2=https://%s:2380,lab-3=https://%s:2380" % (lab.addr(1), lab.addr(2), a3)))
    deadline = time.time() + 10
    while time.time() < deadline and sorted(m[2] for m in members(lab)) != ["lab-1", "lab-2", "lab-3"]:
        time.sleep(0.5)
    assert lab.kubectl(1, "create namespace q1").returncode == 0
    # two of three etcd static pods stop: no quorum, the API server refuses writes, reads still answer
    for h in (2, 3):
        lab.ok(h, "mkdir -p /root/m && mv /etc/kubernetes/manifests/etcd.yaml /root/m/")
    time.sleep(3)
    p = lab.kubectl(1, "create namespace q2")
    assert p.returncode == 1 and "etcdserver: request timed out" in p.stderr, p.stderr
    p = lab.sh(1, "etcdctl " + CERTS + "endpoint health")
    assert p.returncode == 1 and "unhealthy" in p.stderr
    # a member cannot be removed without quorum either (the proposal cannot commit)
    ids = {m[2]: m[0] for m in members(lab)}
    p = lab.sh(1, "etcdctl " + CERTS + "member remove " + ids["lab-3"])
    assert p.returncode == 1 and "etcdserver: request timed out" in p.stderr, p.stderr
    lab.ok(2, "mv /root/m/etcd.yaml /etc/kubernetes/manifests/")
    time.sleep(3)
    assert lab.kubectl(1, "create namespace q3").returncode == 0
    out = lab.ok(1, "etcdctl " + CERTS + "member remove " + ids["lab-3"])
    assert "Member %s removed from cluster" % ids["lab-3"] in out
    assert sorted(m[2] for m in members(lab)) == ["lab-1", "lab-2"]


def test_reset_of_a_control_plane_removes_its_member(lab):
    assert sorted(m[2] for m in members(lab)) == ["lab-1", "lab-2"]
    out = lab.ok(2, "kubeadm reset -f")
    assert "Removing member" in out
    assert [m[2] for m in members(lab)] == ["lab-1"]
    assert lab.kubectl(1, "create namespace q4").returncode == 0
