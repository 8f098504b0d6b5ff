"""Drain with the machine's real kubectl against the lab: cordon/uncordon, evictions through pods/eviction that
honour PodDisruptionBudgets (429 until the budget allows it; drain --timeout gives up), evicted pods placed only
on schedulable nodes; the charts' PodDisruptionBudgets.

Own lab on 127.0.68: lab-1 control plane, lab-2 and lab-3 workers."""
import json
import os
import sys
import time

import pytest

from k8slab import Lab, join_command, require_root

KC = "kubectl --kubeconfig /etc/kubernetes/admin.conf "
APP = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
"""


@pytest.fixture(scope="module")
def lab():
    require_root()
    lb = Lab("drain", "127.0.68", hosts=3).up()
    try:
        lb.prepare(1, 2, 3)
        out = lb.ok(1, "kubeadm init --pod-network-cidr=10.244.0.0/16")
        lb.ok(2, join_command(out))
        lb.ok(3, join_command(out))
        lb.ok(1, "curl -fsSL https://github.com/flannel-io/flannel/releases/download/v0.26.1/kube-flannel.yml | "
                 + KC + "apply -f -")
        assert lb.kubectl(1, "wait --for=condition=Ready node --all --timeout=30s").returncode == 0
        yield lb
    finally:
        lb.down()


def pods(lab):
    items = json.loads(lab.ok(1, KC + "get pods -l app=web -o json"))["items"]
    return {p["metadata"]["name"]: p["spec"].get("nodeName") for p in items}


def unschedulable(lab, node):
    return json.loads(lab.ok(1, KC + "get node %s -o json" % node))["spec"].get("unschedulable", False)


def test_drain_blocked_by_a_pdb_then_allowed(lab):
    lab.ok(1, "cat > /root/app.yaml <<'EOF'\n%sEOF\n" % APP + KC + "apply -f /root/app.yaml")
    assert lab.kubectl(1, "rollout status deployment/web --timeout=30s").returncode == 0
    placed = pods(lab)
    assert sorted(placed.values()) == ["lab-2", "lab-3"], placed
    # the budget allows no disruption: the real kubectl retries the eviction (429) until its timeout
    t0 = time.time()
    p = lab.kubectl(1, "drain lab-2 --ignore-daemonsets --delete-emptydir-data --timeout=8s")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Cannot evict pod as it would violate the pod's disruption budget" in p.stderr, p.stderr
    assert time.time() - t0 >= 8
    # the node stays cordoned, the pod stays where it was
    assert unschedulable(lab, "lab-2") is True
    assert pods(lab) == placed
    # a budget that allows one disruption lets the drain through; the replacement avoids the cordoned node
    lab.ok(1, KC + "patch pdb web --type merge -p '{\"spec\":{\"minAvailable\":1}}'")
    out = lab.ok(1, KC + "drain lab-2 --ignore-daemonsets --delete-emptydir-data --timeout=30s")
    assert "evicted" in out and "node/lab-2 drained" in out, out
    deadline = time.time() + 15
    while time.time() < deadline and sorted(pods(lab).values()) != ["lab-3", "lab-3"]:
        time.sleep(0.5)
    assert sorted(pods(lab).values()) == ["lab-3", "lab-3"], pods(lab)
    lab.ok(1, KC + "uncordon lab-2")
    assert unschedulable(lab, "lab-2") is False


def test_cordon_keeps_new_pods_off(lab):
    lab.ok(1, KC + "cordon lab-3")
    assert unschedulable(lab, "lab-3") is True
    lab.ok(1, KC + "scale deployment web --replicas=4")
    deadline = time.time() + 15
    while time.time() < deadline and len(pods(lab)) < 4:
        time.sleep(0.5)
    new = [n for n in pods(lab).values()]
    assert sorted(new) == ["lab-2", "lab-2", "lab-3", "lab-3"], new
    lab.ok(1, KC + "uncordon lab-3")


def test_charts_make_their_pdbs():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from labnode import k8s_helm as H
    kinds = lambda objs: [(o["kind"], o["metadata"]["name"]) for o in objs if o["kind"] == "PodDisruptionBudget"]
    assert kinds(H.chart_objects("kube-prometheus-stack", "mon", "monitoring", {})) == []
    objs = H.chart_objects("kube-prometheus-stack", "mon", "monitoring",
                           {"alertmanager": {"podDisruptionBudget": {"enabled": True}}})
    assert kinds(objs) == [("PodDisruptionBudget", "mon-alertmanager")]
    pdb = [o for o in objs if o["kind"] == "PodDisruptionBudget"][0]
    am = [o for o in objs if o["metadata"]["name"] == "alertmanager-mon-alertmanager"][0]
    others = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet") and o is not am]
    sel = pdb["spec"]["selector"]["matchLabels"]
    assert all(am["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
    assert not any(all(o["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
                   for o in others)
    es = H.chart_objects("elasticsearch", "es", "logging", {})
    assert kinds(es) == [("PodDisruptionBudget", "elasticsearch-master-pdb")]
    assert kinds(H.chart_objects("metrics-server", "ms", "kube-system",
                                 {"podDisruptionBudget": {"enabled": True, "maxUnavailable": 1}})) == \
        [("PodDisruptionBudget", "ms")]
