"""Volumes in the lab: a StatefulSet's claims bind only to a StorageClass the cluster has (a kubeadm cluster has
none), and a pod whose claim stays Pending is never scheduled, like the real scheduler's VolumeBinding plugin."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from labnode import k8s_helm as H  # noqa: E402
from labnode import k8s_rest as R  # noqa: E402
from labnode import k8s_store as S  # noqa: E402

UNBOUND = ("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes "
           "are available: 1 Preemption is not helpful for scheduling.")


def _cluster():
    st = S.new_store()
    S.init_cluster(st, {"kubernetesVersion": "v1.34.1", "endpoint": "127.0.0.1:6443", "podSubnet": "10.244.0.0/16",
                        "caPem": ""}, "cp", 1000.0)
    # a pod network, so that the node is Ready and takes pods
    S.put_object(st, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-flannel"}}, 1000.0)
    for o in H.chart_objects("flannel", "flannel", "kube-flannel", {"podCidr": "10.244.0.0/16"}):
        S.put_object(st, o, 1000.0, "helm")
    r = S.heartbeat(st, "cp", {"runtimeOk": True, "cniConfig": None}, 1000.0)
    S.heartbeat(st, "cp", {"runtimeOk": True, "cniConfig": r["cni"]["file"]}, 1001.0)
    assert S.node_ready(st, st["nodes"]["cp"], 1002.0)[0] == "True"
    return st


def _install(st, values):
    S.put_object(st, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}}, 1000.0)
    for o in H.chart_objects("elasticsearch", "elasticsearch", "logging", values):
        S.put_object(st, o, 1000.0, "helm")


def _es_pod(st):
    pods = [p for p in S.list_pods(st, 1002.0) if p["metadata"]["name"] == "elasticsearch-master-0"]
    assert len(pods) == 1
    return pods[0], R.rest_pod(st, pods[0], 1002.0)


def _claims(st):
    return {c["metadata"]["name"]: (c["status"]["phase"], problem) for c, problem in S.statefulset_claims(st, 1002.0)}


def _class(name, default=False, provisioner="rancher.io/local-path"):
    md = {"name": name}
    if default:
        md["annotations"] = {S.DEFAULT_CLASS: "true"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": md, "provisioner": provisioner}


def test_claim_without_a_class_on_a_kubeadm_cluster_stays_pending():
    st = _cluster()
    # the chart's default: persistence on, a claim template without storageClassName
    _install(st, {"replicas": 1})
    sts = st["objects"][S.obj_key("apps", "StatefulSet", "logging", "elasticsearch-master")]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "30Gi"
    assert _claims(st) == {"elasticsearch-master-elasticsearch-master-0": (
        "Pending", "no persistent volumes available for this claim and no storage class is set")}
    raw, pod = _es_pod(st)
    assert raw["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    assert pod["status"]["conditions"] == [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": UNBOUND, "lastTransitionTime": pod["metadata"]["creationTimestamp"]}]
    # so helm --wait counts it not ready
    status = S.get_objects(st, "statefulsets", "logging", None, False, 1002.0)["items"][0]["status"]
    assert status.get("readyReplicas", 0) == 0
    # a class that is not the default does not help a claim that names none
    S.put_object(st, _class("manual"), 1000.0)
    assert _claims(st)["elasticsearch-master-elasticsearch-master-0"][0] == "Pending"
    # a default class does: the claim binds to it and the pod is scheduled
    S.put_object(st, _class("standard", default=True), 1000.0)
    assert _claims(st) == {"elasticsearch-master-elasticsearch-master-0": ("Bound", None)}
    raw, pod = _es_pod(st)
    assert pod["spec"]["nodeName"] == "cp" and raw["status"]["phase"] == "Running"
    assert S.get_objects(st, "statefulsets", "logging", None, False, 1002.0)["items"][0]["status"]["readyReplicas"] == 1


def test_claim_of_a_named_class_binds_only_when_the_class_exists():
    st = _cluster()
    _install(st, {"replicas": 1, "persistence": {"enabled": True},
                  "volumeClaimTemplate": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                                          "resources": {"requests": {"storage": "5Gi"}}}})
    assert _claims(st) == {"elasticsearch-master-elasticsearch-master-0": (
        "Pending", 'storageclass.storage.k8s.io "fast" not found')}
    _, pod = _es_pod(st)
    assert not pod["spec"].get("nodeName") and pod["status"]["conditions"][0]["message"] == UNBOUND
    # a class without a provisioner binds only to a PersistentVolume of it
    S.put_object(st, _class("fast", provisioner="kubernetes.io/no-provisioner"), 1000.0)
    assert _claims(st)["elasticsearch-master-elasticsearch-master-0"] == (
        "Pending", "no persistent volumes available for this claim")
    S.put_object(st, _class("fast"), 1000.0)
    res = [r for r in R.BUILTIN if r.kind == "PersistentVolumeClaim"][0]
    pvcs = dict(R.materialize(st, res, 1002.0))
    claim = pvcs[S.obj_key("", "PersistentVolumeClaim", "logging", "elasticsearch-master-elasticsearch-master-0")]
    assert claim["status"]["phase"] == "Bound" and claim["status"]["capacity"] == {"storage": "5Gi"}
    assert claim["spec"]["storageClassName"] == "fast" and claim["spec"]["volumeName"].startswith("pvc-")
    _, pod = _es_pod(st)
    assert pod["spec"]["nodeName"] == "cp"


def test_persistence_off_makes_no_claim():
    st = _cluster()
    _install(st, {"replicas": 1, "persistence": {"enabled": False}})
    assert _claims(st) == {}
    _, pod = _es_pod(st)
    assert pod["spec"]["nodeName"] == "cp"
