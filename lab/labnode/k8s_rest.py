"""The Kubernetes REST API of the simulated API server, for real clients (kubectl, client-go).

Served next to the lab's own POST /rpc (kubeadm, kubelet, helm and the imitation kubectl speak that) on the
same store, under the same lock: discovery (legacy and aggregated), get/list with label and field selectors
(as Tables when the client asks), watch, create, update (resourceVersion preconditions), merge / strategic
merge / JSON patches, server-side apply, delete with propagation, pods/eviction with PodDisruptionBudgets,
Self/SubjectAccessReviews answered from RBAC. Unknown paths get the real server's 404 Status.

Objects the lab derives (nodes from kubelet reports, pods from their controllers, workload status) are
materialized per request; every object's resourceVersion comes from a content hash, so it changes exactly
when what a client sees changes (View.snapshot)."""
import collections
import copy
import hashlib
import ipaddress
import json
import re
import time
import uuid

import yaml

from . import common
from . import k8s_rbac as RBAC
from . import k8s_schema as SCHEMA
from . import k8s_store as S

ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
NO_DC = ["create", "delete", "get", "list", "patch", "update", "watch"]


class Res:
    """One REST resource: group/version/plural -> kind, scope, verbs, short names, subresources."""

    def __init__(self, group, version, name, kind, namespaced, short=(), verbs=None, subs=(), categories=(),
                 singular=None):
        self.group, self.version, self.name, self.kind = group, version, name, kind
        self.namespaced, self.short, self.verbs = namespaced, list(short), list(verbs or ALL)
        self.subs = list(subs)   # (name, (group, version, kind), verbs)
        self.categories = list(categories)
        self.singular = singular or kind.lower()

    @property
    def gv(self):
        return self.group + "/" + self.version if self.group else self.version

    @property
    def qualified(self):
        """`deployments.apps`, `pods`: how messages name the resource."""
        return self.name + ("." + self.group if self.group else "")


STATUS = ("status", None, ["get", "patch", "update"])


def _sub(name, gvk=None, verbs=("get", "patch", "update")):
    return (name, gvk, list(verbs))


BUILTIN = [
    Res("", "v1", "bindings", "Binding", True, verbs=["create"]),
    Res("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    Res("", "v1", "endpoints", "Endpoints", True, ["ep"]),
    Res("", "v1", "events", "Event", True, ["ev"]),
    Res("", "v1", "limitranges", "LimitRange", True, ["limits"]),
    Res("", "v1", "namespaces", "Namespace", False, ["ns"], NO_DC,
        [_sub("finalize", None, ["update"]), _sub("status")]),
    Res("", "v1", "nodes", "Node", False, ["no"], subs=[_sub("proxy", ("", "v1", "NodeProxyOptions"),
                                                             ["create", "delete", "get", "patch", "update"]),
                                                        _sub("status")]),
    Res("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"], subs=[_sub("status")]),
    Res("", "v1", "persistentvolumes", "PersistentVolume", False, ["pv"], subs=[_sub("status")]),
    Res("", "v1", "pods", "Pod", True, ["po"], categories=["all"],
        subs=[_sub("binding", ("", "v1", "Binding"), ["create"]),
              _sub("eviction", ("policy", "v1", "Eviction"), ["create"]),
              _sub("log", None, ["get"]), _sub("status")]),
    Res("", "v1", "resourcequotas", "ResourceQuota", True, ["quota"], subs=[_sub("status")]),
    Res("", "v1", "secrets", "Secret", True),
    Res("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"],
        subs=[_sub("token", ("authentication.k8s.io", "v1", "TokenRequest"), ["create"])]),
    Res("", "v1", "services", "Service", True, ["svc"], NO_DC, categories=["all"], subs=[_sub("status")]),
    Res("apiregistration.k8s.io", "v1", "apiservices", "APIService", False, subs=[_sub("status")]),
    Res("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], categories=["all"], subs=[_sub("status")]),
    Res("apps", "v1", "deployments", "Deployment", True, ["deploy"], categories=["all"],
        subs=[_sub("scale", ("autoscaling", "v1", "Scale")), _sub("status")]),
    Res("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], categories=["all"],
        subs=[_sub("scale", ("autoscaling", "v1", "Scale")), _sub("status")]),
    Res("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], categories=["all"],
        subs=[_sub("scale", ("autoscaling", "v1", "Scale")), _sub("status")]),
    Res("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, verbs=["create"]),
    Res("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, verbs=["create"]),
    Res("authorization.k8s.io", "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", True,
        verbs=["create"]),
    Res("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
        verbs=["create"]),
    Res("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False,
        verbs=["create"]),
    Res("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False, verbs=["create"]),
    Res("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ["hpa"],
        categories=["all"], subs=[_sub("status")]),
    Res("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ["hpa"],
        categories=["all"], subs=[_sub("status")]),
    Res("batch", "v1", "cronjobs", "CronJob", True, ["cj"], categories=["all"], subs=[_sub("status")]),
    Res("batch", "v1", "jobs", "Job", True, categories=["all"], subs=[_sub("status")]),
    Res("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    Res("networking.k8s.io", "v1", "ingresses", "Ingress", True, ["ing"], subs=[_sub("status")]),
    Res("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ["netpol"]),
    Res("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"], subs=[_sub("status")]),
    Res("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Res("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Res("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Res("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Res("storage.k8s.io", "v1", "csidrivers", "CSIDriver", False),
    Res("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ["sc"]),
    Res("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration",
        False),
    Res("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration", False),
    Res("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
        ["crd", "crds"], categories=["api-extensions"], subs=[_sub("status")]),
    Res("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ["pc"]),
    Res("coordination.k8s.io", "v1", "leases", "Lease", True),
    Res("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False),
    Res("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
]
# the order the real server lists its groups in
GROUP_ORDER = ["", "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
               "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io", "policy",
               "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
               "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
               "discovery.k8s.io", "flowcontrol.apiserver.k8s.io"]
NAMESPACE_FINALIZE_SECONDS = 1.0
# derived, not stored: these kinds are materialized by View
DERIVED = {"Node", "Pod", "ReplicaSet"}
REVIEWS = {"SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview", "LocalSubjectAccessReview",
           "SelfSubjectReview", "TokenReview", "Binding"}


def resources(st):
    """Every served resource: the built-ins, then CRDs (from the store and from the catalogue's charts)."""
    out = list(BUILTIN)
    seen = {(r.group, r.version, r.name) for r in out}
    for o in st["objects"].values():
        if o.get("kind") != "CustomResourceDefinition":
            continue
        spec = o.get("spec") or {}
        names = spec.get("names") or {}
        if not names.get("kind"):
            continue
        for v in spec.get("versions") or [{"name": spec.get("version", "v1"), "served": True}]:
            if v.get("served", True) is False:
                continue
            p = names.get("plural") or S.plural(names["kind"])
            if (spec.get("group"), v.get("name"), p) in seen:
                continue
            seen.add((spec.get("group"), v.get("name"), p))
            subs = [_sub("status")] if "status" in (v.get("subresources") or {}) else []
            out.append(Res(spec.get("group", ""), v.get("name"), p, names["kind"],
                           spec.get("scope", "Namespaced") == "Namespaced", names.get("shortNames") or [],
                           subs=subs, categories=names.get("categories") or [], singular=names.get("singular")))
    for rel in st["releases"].values():
        for av, kind, nsd in S.CHART_CRDS.get(rel["chartName"], []):
            g, v = av.split("/")
            p = S.plural(kind)
            if (g, v, p) not in seen:
                seen.add((g, v, p))
                out.append(Res(g, v, p, kind, nsd))
    return out


def find_res(st, group, version, name):
    for r in resources(st):
        if r.group == group and r.version == version and r.name == name:
            return r
    return None


def res_for_kind(st, group, kind):
    for r in resources(st):
        if r.group == group and r.kind == kind:
            return r
    return None


# ------------------------------------------------------------------ responses
class Reply:
    def __init__(self, code, body, ctype="application/json", stream=None):
        self.code, self.body, self.ctype, self.stream = code, body, ctype, stream


class Fail(Exception):
    """A request that ends in a Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        d = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
             "reason": self.reason, "details": self.details or {}, "code": self.code}
        if self.reason == "NotFound" and not self.details:
            d["details"] = {}
        return d


def not_found(res, name):
    d = {"name": name, "kind": res.name}
    if res.group:
        d["group"] = res.group
    return Fail(404, "NotFound", '%s "%s" not found' % (res.qualified, name), d)


def no_such_path():
    return Fail(404, "NotFound", "the server could not find the requested resource")


def invalid(res, name, errors):
    """422 Invalid with causes; errors: [(field, reason, detail)] as the real field.ErrorList renders them.
    Unknown fields (strict field validation) are a 400 instead, as the real decoder reports them."""
    unknown = [f for f, r, _ in errors if r == "FieldValueNotDeclared"]
    if unknown:
        return Fail(400, "BadRequest", "strict decoding error: " + ", ".join('unknown field "%s"' % f for f in unknown))
    causes = [{"reason": r, "message": m, "field": f} for f, r, m in errors]
    kind = res.kind + ("." + res.group if res.group else "")
    msgs = ["%s: %s" % (f, m) if f else m for f, r, m in errors]
    text = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    return Fail(422, "Invalid", '%s "%s" is invalid: %s' % (kind, name, text),
                {"name": name, "group": res.group, "kind": res.kind, "causes": causes})


# ------------------------------------------------------------------ views: materialized objects and their versions
class View:
    """resourceVersions of what clients see, and the recent deletions a watch must replay."""

    def __init__(self):
        self.rv = {}                       # object key -> (content hash, rv, rv when first seen)
        self.seen = {}                     # kind id -> set of keys in the last full snapshot
        self.log = collections.deque(maxlen=4000)   # (rv, kind id, key, event type, object): writes seen
        self.last = {}                     # object key -> the object as last seen

    def stamp(self, st, key, obj):
        md = obj.setdefault("metadata", {})
        md.pop("resourceVersion", None)
        h = hashlib.md5(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
        cur = self.rv.get(key)
        if cur is None or cur[0] != h:
            st["resourceVersion"] += 1
            rv = st["resourceVersion"]
            cur = (h, rv, cur[2] if cur else rv)
            self.rv[key] = cur
        md["resourceVersion"] = str(cur[1])
        return obj

    def created_rv(self, key):
        cur = self.rv.get(key)
        return cur[2] if cur else 0

    def forget(self, st, kid, key, obj):
        st["resourceVersion"] += 1
        rv = st["resourceVersion"]
        self.rv.pop(key, None)
        if obj is not None:
            obj = copy.deepcopy(obj)
            obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
            self.log.append((rv, kid, key, "DELETED", obj))

    def record(self, kid, key, typ, obj):
        """A write through the API: watches replay it even if it is undone before their next poll."""
        self.log.append((int(obj["metadata"]["resourceVersion"]), kid, key, typ, copy.deepcopy(obj)))

    def snapshot(self, st, res, now):
        """{key: object} of every object of `res` in the cluster, stamped; objects gone since the last snapshot
        are remembered as deleted (for watches)."""
        kid = _kid(res)
        out = {}
        for key, o in materialize(st, res, now):
            out[key] = self.stamp(st, key, o)
        before = self.seen.get(kid)
        if before is not None:
            for key in before - set(out):
                self.forget(st, kid, key, self.last.pop(key, None))
        self.seen[kid] = set(out)
        self.last.update(out)
        return out


def _kid(res):
    return res.group + "/" + res.kind


def materialize(st, res, now):
    """[(key, object)] of `res` as a client sees it (status filled in where the lab derives it)."""
    kind, g = res.kind, res.group
    if kind == "Node" and g == "":
        return [(S.obj_key("", "Node", "", n), rest_node(S.node_view(st, n, now))) for n in sorted(st["nodes"])]
    if kind == "Pod" and g == "":
        return [(S.obj_key("", "Pod", p["metadata"]["namespace"], p["metadata"]["name"]), rest_pod(st, p, now))
                for p in S.list_pods(st, now)]
    if kind == "ReplicaSet" and g == "apps":
        return replica_sets(st, now)
    items = [(k, copy.deepcopy(o)) for k, o in st["objects"].items()
             if o.get("kind") == kind and S._group(o.get("apiVersion", "")) == g]
    if kind == "ServiceAccount" and g == "":
        # the service account controller's `default` in every namespace
        have = {k for k, _ in items}
        for k, o in list(st["objects"].items()):
            if o.get("kind") == "Namespace" and not o["metadata"].get("deletionTimestamp"):
                ns = o["metadata"]["name"]
                key = S.obj_key("", "ServiceAccount", ns, "default")
                if key not in have:
                    items.append((key, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
                        "name": "default", "namespace": ns, "creationTimestamp": o["metadata"].get("creationTimestamp"),
                        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "sa/%s/default" % ns))}}))
    if kind == "Lease" and g == "coordination.k8s.io":
        # every kubelet's heartbeat lease
        for n, node in sorted(st["nodes"].items()):
            key = S.obj_key("coordination.k8s.io", "Lease", "kube-node-lease", n)
            renew = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(node.get("heartbeat", now)))
            items.append((key, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {
                "name": n, "namespace": "kube-node-lease", "creationTimestamp": S.ts(node.get("createdAt", now)),
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "lease/" + node.get("uid", n))),
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": n, "uid": node.get("uid")}]},
                "spec": {"holderIdentity": n, "leaseDurationSeconds": 40, "renewTime": renew}}))
    if kind == "PersistentVolumeClaim" and g == "":
        for o, _ in S.statefulset_claims(st, now):
            key = S.obj_key("", "PersistentVolumeClaim", o["metadata"]["namespace"], o["metadata"]["name"])
            if key not in st["objects"]:
                items.append((key, o))
    if kind == "Secret" and g == "":
        for o in S.system_secrets(st, now):
            items.append((S.obj_key("", "Secret", o["metadata"]["namespace"], o["metadata"]["name"]), o))
    if kind in ("Deployment", "DaemonSet", "StatefulSet") and g == "apps" and items:
        S.workload_status(st, [o for _, o in items], now)
    if kind == "PodDisruptionBudget" and items:
        pods = S.list_pods(st, now)
        for _, o in items:
            o["status"] = pdb_status(st, o, pods)
    if kind == "Namespace":
        for _, o in items:
            o.setdefault("spec", {"finalizers": ["kubernetes"]})
            o["status"] = {"phase": "Terminating" if o["metadata"].get("deletionTimestamp") else "Active"}
            o["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = o["metadata"]["name"]
    for k, o in items:
        o["apiVersion"] = res.gv if S._group(o.get("apiVersion", "")) == g else o["apiVersion"]
        managed_fields(st, k, o)
    items.sort(key=lambda x: (x[1]["metadata"].get("namespace", ""), x[1]["metadata"]["name"]))
    return items


def managed_fields(st, key, o):
    owners = (st.get("fieldOwners") or {}).get(key)
    md = o["metadata"]
    stamps = {m.get("manager"): m for m in md.get("managedFields") or [] if isinstance(m, dict)}
    if not owners:
        md.pop("managedFields", None)
        return
    ops = (st.get("fieldOps") or {}).get(key, {})
    out = []
    for m in sorted(owners):
        out.append({"manager": m, "operation": ops.get(m) or stamps.get(m, {}).get("operation", "Update"),
                    "apiVersion": o.get("apiVersion"), "time": stamps.get(m, {}).get("time") or
                    md.get("creationTimestamp"), "fieldsType": "FieldsV1", "fieldsV1": S.fields_v1(owners[m])})
    md["managedFields"] = out


DERIVED_TAINTS = {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/unschedulable"}


def rest_node(n):
    st_ = n["status"]
    st_["daemonEndpoints"] = {"kubeletEndpoint": {"Port": 10250}}
    for c in st_["conditions"]:
        c.setdefault("lastTransitionTime", c.get("lastHeartbeatTime"))
        c.setdefault("message", {"MemoryPressure": "kubelet has sufficient memory available",
                                 "DiskPressure": "kubelet has no disk pressure",
                                 "PIDPressure": "kubelet has sufficient PID available"}.get(c["type"], ""))
    # the Ready condition is the last one, as on a real node
    st_["conditions"].sort(key=lambda c: c["type"] == "Ready")
    return n


def _pod_ip(st, p):
    node = p["spec"].get("nodeName")
    n = st["nodes"].get(node) if node else None
    if not n:
        return None
    if p["spec"].get("hostNetwork"):
        return n.get("address")
    cidr = n.get("podCIDR")
    if not cidr:
        return None
    net = ipaddress.ip_network(cidr, strict=False)
    h = int(hashlib.sha256((p["metadata"]["namespace"] + "/" + p["metadata"]["name"]).encode()).hexdigest(), 16)
    return str(net.network_address + 2 + h % max(1, net.num_addresses - 4))


def rest_pod(st, p, now):
    md, spec, status = p["metadata"], p["spec"], p["status"]
    ready = status["conditions"][0]["status"]
    t = md["creationTimestamp"]
    scheduled = "True" if spec.get("nodeName") else "False"
    why = [c.get("message") for c in status["conditions"] if c.get("type") == "PodScheduled" and c.get("message")]
    status["conditions"] = [
        {"type": "PodReadyToStartContainers", "status": "True" if status["phase"] == "Running" else "False",
         "lastTransitionTime": t},
        {"type": "Initialized", "status": "True", "lastTransitionTime": t},
        {"type": "Ready", "status": ready, "lastTransitionTime": t},
        {"type": "ContainersReady", "status": ready, "lastTransitionTime": t},
        {"type": "PodScheduled", "status": scheduled, "lastTransitionTime": t}]
    if scheduled == "False":
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": why[0] if why else
                                 "0/%d nodes are available: no node fits the pod." % len(st["nodes"]),
                                 "lastTransitionTime": t}]
    ip = _pod_ip(st, p)
    if ip and status["phase"] != "Pending":
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if status.get("hostIP"):
        status["hostIPs"] = [{"ip": status["hostIP"]}]
    else:
        status.pop("hostIP", None)
    status["startTime"] = t
    status["qosClass"] = "BestEffort"
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    for ref in md.get("ownerReferences") or []:
        ref.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, "%s/%s/%s" % (ref["kind"], md["namespace"],
                                                                                ref["name"]))))
        ref.setdefault("blockOwnerDeletion", True)
        if ref["kind"] == "Node":
            ref["uid"] = st["nodes"].get(ref["name"], {}).get("uid", ref["uid"])
    for kind, owner in (("DaemonSet", "apps"), ("StatefulSet", "apps")):
        for ref in md.get("ownerReferences") or []:
            if ref["kind"] == kind:
                o = st["objects"].get(S.obj_key(owner, kind, md["namespace"], ref["name"]))
                if o:
                    ref["uid"] = o["metadata"]["uid"]
    ann = md.get("annotations") or {}
    if ann.get("kubernetes.io/config.source") == "file":
        ann["kubernetes.io/config.mirror"] = S.short_hash(md["name"], n=32)
        ann["kubernetes.io/config.hash"] = ann["kubernetes.io/config.mirror"]
        md["annotations"] = ann
    return p


def replica_sets(st, now):
    """The current ReplicaSet of each Deployment (the lab keeps no old ones)."""
    out = []
    pods = None
    for k, o in sorted(st["objects"].items()):
        if o.get("kind") != "Deployment":
            continue
        md, spec = o["metadata"], o.get("spec") or {}
        tmpl = spec.get("template") or {}
        ns = md.get("namespace", "default")
        rsname = "%s-%s" % (md["name"], S.short_hash(k, json.dumps(tmpl, sort_keys=True), n=10))
        if pods is None:
            pods = S.list_pods(st, now)
        mine = [p for p in pods if p["metadata"]["namespace"] == ns and
                (p["metadata"].get("ownerReferences") or [{}])[0].get("name") == rsname]
        ready = sum(1 for p in mine if p["status"]["conditions"][0]["status"] == "True")
        labels = dict((tmpl.get("metadata") or {}).get("labels") or {})
        labels["pod-template-hash"] = rsname.rsplit("-", 1)[1]
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": rsname, "namespace": ns, "labels": labels,
                           "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "ReplicaSet/%s/%s" % (ns, rsname))),
                           "creationTimestamp": md.get("creationTimestamp"), "generation": 1,
                           "annotations": {"deployment.kubernetes.io/revision": "1"},
                           "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": md["name"],
                                                "uid": md.get("uid"), "controller": True,
                                                "blockOwnerDeletion": True}]},
              "spec": {"replicas": int(spec.get("replicas", 1) or 0),
                       "selector": copy.deepcopy(spec.get("selector") or {}), "template": copy.deepcopy(tmpl)},
              "status": {"replicas": len(mine), "fullyLabeledReplicas": len(mine), "readyReplicas": ready,
                         "availableReplicas": ready, "observedGeneration": 1}}
        out.append((S.obj_key("apps", "ReplicaSet", ns, rsname), rs))
    return out


# ------------------------------------------------------------------ selectors
def label_reqs(text):
    if not text:
        return []
    return S.parse_selector(text)


FIELDS = {
    "Pod": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"},
    "Node": {"spec.unschedulable"},
    "Event": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
              "reportingComponent", "source", "type"},
    "Secret": {"type"},
    "Namespace": {"status.phase"},
    "ReplicaSet": {"status.replicas"},
    "Job": {"status.successful"},
    "Service": {"spec.clusterIP", "spec.type"},
}


def field_reqs(res, text):
    reqs = []
    for part in [p for p in (text or "").split(",") if p.strip()]:
        m = re.match(r"^\s*([^!=]+?)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise Fail(400, "BadRequest", 'invalid selector: \'%s\'; can\'t understand \'%s\'' % (text, part))
        f, op, v = m.groups()
        if f not in ("metadata.name", "metadata.namespace") and f not in FIELDS.get(res.kind, ()):
            raise Fail(400, "BadRequest", 'field label not supported: %s' % f)
        reqs.append((f, op != "!=", v))
    return reqs


def _field(o, path):
    cur = o
    for p in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def matches(o, lreqs, freqs):
    if lreqs and not S.match_selector(o["metadata"].get("labels") or {}, lreqs):
        return False
    for f, eq, v in freqs:
        if (_field(o, f) == v) != eq:
            return False
    return True


# ------------------------------------------------------------------ discovery
def _resource_doc(r, legacy):
    d = {"name": r.name, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
         "verbs": r.verbs}
    if r.short:
        d["shortNames"] = r.short
    if r.categories:
        d["categories"] = r.categories
    out = [d]
    for name, gvk, verbs in r.subs:
        s = {"name": r.name + "/" + name, "singularName": "", "namespaced": r.namespaced,
             "kind": gvk[2] if gvk else r.kind, "verbs": verbs}
        if gvk and (gvk[0], gvk[1]) != (r.group, r.version):
            s["group"], s["version"] = gvk[0], gvk[1]
        out.append(s)
    return out


def groups(st):
    """[(group, [versions preferred first], [Res])]"""
    by = collections.OrderedDict()
    for r in resources(st):
        by.setdefault(r.group, collections.OrderedDict()).setdefault(r.version, []).append(r)
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(((g, list(vs.keys()), vs) for g, vs in by.items()),
                  key=lambda x: (order.get(x[0], len(order)), x[0]))


def aggregated(st, core, v2beta1=False):
    items = []
    for g, versions, by in groups(st):
        if (g == "") != core:
            continue
        vs = []
        for v in versions:
            rs = []
            for r in sorted(by[v], key=lambda r: r.name):
                d = {"resource": r.name, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                     "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
                     "verbs": r.verbs}
                if r.short:
                    d["shortNames"] = r.short
                if r.categories:
                    d["categories"] = r.categories
                subs = []
                for name, gvk, verbs in r.subs:
                    gvk = gvk or (r.group, r.version, r.kind)
                    subs.append({"subresource": name, "responseKind": {"group": gvk[0], "version": gvk[1],
                                                                        "kind": gvk[2]}, "verbs": verbs})
                if subs:
                    d["subresources"] = subs
                rs.append(d)
            vs.append({"version": v, "resources": rs, "freshness": "Current"})
        items.append({"metadata": {"name": g, "creationTimestamp": None}, "versions": vs})
    return {"kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/" + ("v2beta1" if v2beta1 else "v2"),
            "metadata": {}, "items": items}


def discovery(st, parts, accept, server_address):
    """/api, /apis, /apis/G, /api/v1, /apis/G/V (None when the path is not a discovery document)."""
    want_agg = None
    for alt in (accept or "").split(","):
        if "as=APIGroupDiscoveryList" in alt and "g=apidiscovery.k8s.io" in alt:
            want_agg = "v2beta1" if "v=v2beta1" in alt else "v2"
            break
    if parts == ["api"]:
        if want_agg:
            return Reply(200, aggregated(st, True, want_agg == "v2beta1"),
                         "application/json;g=apidiscovery.k8s.io;v=%s;as=APIGroupDiscoveryList" % want_agg)
        return Reply(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
    if parts == ["apis"]:
        if want_agg:
            return Reply(200, aggregated(st, False, want_agg == "v2beta1"),
                         "application/json;g=apidiscovery.k8s.io;v=%s;as=APIGroupDiscoveryList" % want_agg)
        gs = []
        for g, versions, _ in groups(st):
            if g:
                gs.append(_group_doc(g, versions))
        return Reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
    if len(parts) == 2 and parts[0] == "apis":
        for g, versions, _ in groups(st):
            if g == parts[1]:
                d = _group_doc(g, versions)
                d.update({"kind": "APIGroup", "apiVersion": "v1"})
                return Reply(200, d)
        raise no_such_path()
    if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
        g, v = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        rs = [r for r in resources(st) if r.group == g and r.version == v]
        if not rs:
            raise no_such_path()
        docs = []
        for r in sorted(rs, key=lambda r: r.name):
            docs += _resource_doc(r, True)
        return Reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": rs[0].gv,
                           "resources": docs})
    return None


def _group_doc(g, versions):
    vs = [{"groupVersion": g + "/" + v, "version": v} for v in versions]
    return {"name": g, "versions": vs, "preferredVersion": vs[0]}


# ------------------------------------------------------------------ tables
def age(t, now):
    if not t:
        return "<unknown>"
    try:
        import calendar
        secs = max(0, int(now - calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))))
    except ValueError:
        return "<unknown>"
    return human_duration(secs)


def human_duration(secs):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if secs < 120:
        return "%ds" % secs
    m = secs // 60
    if m < 10:
        s = secs % 60
        return "%dm%ds" % (m, s) if s else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = secs // 3600
    if h < 8:
        mm = m % 60
        return "%dh%dm" % (h, mm) if mm else "%dh" % h
    if h < 48:
        return "%dh" % h
    if h < 24 * 8:
        hh = h % 24
        return "%dd%dh" % (h // 24, hh) if hh else "%dd" % (h // 24)
    if h < 24 * 365 * 2:
        return "%dd" % (h // 24)
    return "%dy" % (h // 24 // 365)


def _col(name, typ="string", priority=0, fmt="", desc=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": priority}


def _containers(o):
    cs = ((((o.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _selector_text(sel):
    if not sel:
        return "<none>"
    parts = ["%s=%s" % kv for kv in sorted((sel.get("matchLabels") or {}).items())] if "matchLabels" in sel or \
        "matchExpressions" in sel else ["%s=%s" % kv for kv in sorted(sel.items())]
    for e in sel.get("matchExpressions") or [] if isinstance(sel.get("matchExpressions"), list) else []:
        op = e.get("operator")
        if op in ("In", "NotIn"):
            parts.append("%s %s (%s)" % (e["key"], op.lower(), ",".join(e.get("values") or [])))
        elif op == "Exists":
            parts.append(e["key"])
        else:
            parts.append("!" + e["key"])
    return ",".join(parts) or "<none>"


def table_columns_and_cells(kind, o, now):
    md = o["metadata"]
    name = md["name"]
    a = age(md.get("creationTimestamp"), now)
    spec, status = o.get("spec") or {}, o.get("status") or {}
    if kind == "Node":
        ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
        s = {"True": "Ready", "False": "NotReady"}.get(ready.get("status"), "Unknown")
        if spec.get("unschedulable"):
            s += ",SchedulingDisabled"
        roles = sorted(k.split("/", 1)[1] for k in md.get("labels", {}) if k.startswith("node-role.kubernetes.io/"))
        ni = status.get("nodeInfo") or {}
        addr = {x["type"]: x["address"] for x in status.get("addresses") or []}
        cols = [_col("Name", fmt="name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version"),
                _col("Internal-IP", priority=1), _col("External-IP", priority=1), _col("OS-Image", priority=1),
                _col("Kernel-Version", priority=1), _col("Container-Runtime", priority=1)]
        return cols, [name, s, ",".join(roles) or "<none>", a, ni.get("kubeletVersion", ""),
                      addr.get("InternalIP", "<none>"), addr.get("ExternalIP", "<none>"), ni.get("osImage", ""),
                      ni.get("kernelVersion", ""), ni.get("containerRuntimeVersion", "")]
    if kind == "Pod":
        cs = status.get("containerStatuses") or []
        reason = status.get("phase", "")
        for c in cs:
            w = (c.get("state") or {}).get("waiting")
            if w and w.get("reason"):
                reason = w["reason"]
        restarts = sum(c.get("restartCount", 0) for c in cs)
        cols = [_col("Name", fmt="name"), _col("Ready"), _col("Status"), _col("Restarts", "string"), _col("Age"),
                _col("IP", priority=1), _col("Node", priority=1), _col("Nominated Node", priority=1),
                _col("Readiness Gates", priority=1)]
        return cols, [name, "%d/%d" % (sum(1 for c in cs if c.get("ready")), len(cs)), reason, str(restarts), a,
                      status.get("podIP") or "<none>", spec.get("nodeName") or "<none>", "<none>", "<none>"]
    if kind == "Namespace":
        return [_col("Name", fmt="name"), _col("Status"), _col("Age")], [name, status.get("phase", "Active"), a]
    if kind == "Deployment":
        cn, im = _containers(o)
        return ([_col("Name", fmt="name"), _col("Ready"), _col("Up-to-date", "integer"),
                 _col("Available", "integer"), _col("Age"), _col("Containers", priority=1),
                 _col("Images", priority=1), _col("Selector", priority=1)],
                [name, "%d/%d" % (status.get("readyReplicas", 0), int(spec.get("replicas", 1) or 0)),
                 status.get("updatedReplicas", 0), status.get("availableReplicas", 0), a, cn, im,
                 _selector_text(spec.get("selector"))])
    if kind == "ReplicaSet":
        cn, im = _containers(o)
        return ([_col("Name", fmt="name"), _col("Desired", "integer"), _col("Current", "integer"),
                 _col("Ready", "integer"), _col("Age"), _col("Containers", priority=1), _col("Images", priority=1),
                 _col("Selector", priority=1)],
                [name, spec.get("replicas", 0), status.get("replicas", 0), status.get("readyReplicas", 0), a, cn,
                 im, _selector_text(spec.get("selector"))])
    if kind == "DaemonSet":
        cn, im = _containers(o)
        nsel = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        return ([_col("Name", fmt="name"), _col("Desired", "integer"), _col("Current", "integer"),
                 _col("Ready", "integer"), _col("Up-to-date", "integer"), _col("Available", "integer"),
                 _col("Node Selector"), _col("Age"), _col("Containers", priority=1), _col("Images", priority=1),
                 _col("Selector", priority=1)],
                [name, status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
                 status.get("numberReady", 0), status.get("updatedNumberScheduled", 0),
                 status.get("numberAvailable", 0), ",".join("%s=%s" % kv for kv in sorted(nsel.items())) or
                 "<none>", a, cn, im, _selector_text(spec.get("selector"))])
    if kind == "StatefulSet":
        cn, im = _containers(o)
        return ([_col("Name", fmt="name"), _col("Ready"), _col("Age"), _col("Containers", priority=1),
                 _col("Images", priority=1)],
                [name, "%d/%d" % (status.get("readyReplicas", 0), int(spec.get("replicas", 1) or 0)), a, cn, im])
    if kind == "Service":
        ports = []
        for p in spec.get("ports") or []:
            s = "%s/%s" % (p.get("port"), p.get("protocol", "TCP"))
            if p.get("nodePort"):
                s = "%s:%s/%s" % (p.get("port"), p["nodePort"], p.get("protocol", "TCP"))
            ports.append(s)
        ext = ",".join(spec.get("externalIPs") or []) or ("<pending>" if spec.get("type") == "LoadBalancer"
                                                           else "<none>")
        return ([_col("Name", fmt="name"), _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"),
                 _col("Age"), _col("Selector", priority=1)],
                [name, spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), ext,
                 ",".join(ports) or "<none>", a, ",".join("%s=%s" % kv for kv in sorted(
                     (spec.get("selector") or {}).items())) or "<none>"])
    if kind == "ConfigMap":
        return ([_col("Name", fmt="name"), _col("Data", "integer"), _col("Age")],
                [name, len(o.get("data") or {}) + len(o.get("binaryData") or {}), a])
    if kind == "Secret":
        return ([_col("Name", fmt="name"), _col("Type"), _col("Data", "integer"), _col("Age")],
                [name, o.get("type", "Opaque"), len(o.get("data") or {}), a])
    if kind == "ServiceAccount":
        return [_col("Name", fmt="name"), _col("Secrets", "integer"), _col("Age")], \
            [name, len(o.get("secrets") or []), a]
    if kind == "PodDisruptionBudget":
        return ([_col("Name", fmt="name"), _col("Min Available"), _col("Max Unavailable"),
                 _col("Allowed Disruptions", "integer"), _col("Age")],
                [name, str(spec["minAvailable"]) if "minAvailable" in spec else "N/A",
                 str(spec["maxUnavailable"]) if "maxUnavailable" in spec else "N/A",
                 status.get("disruptionsAllowed", 0), a])
    if kind == "Lease":
        return [_col("Name", fmt="name"), _col("Holder"), _col("Age")], \
            [name, spec.get("holderIdentity", ""), a]
    if kind == "NetworkPolicy":
        return [_col("Name", fmt="name"), _col("Pod-Selector"), _col("Age")], \
            [name, _selector_text(spec.get("podSelector")) if spec.get("podSelector") else "<none>", a]
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        subj = o.get("subjects") or []
        ref = o.get("roleRef") or {}
        pick = lambda k: ",".join((s.get("namespace") + "/" if k == "ServiceAccount" and s.get("namespace") else "")
                                  + s.get("name", "") for s in subj if s.get("kind") == k)
        return ([_col("Name", fmt="name"), _col("Role"), _col("Age"), _col("Users", priority=1),
                 _col("Groups", priority=1), _col("ServiceAccounts", priority=1)],
                [name, "%s/%s" % (ref.get("kind"), ref.get("name")), a, pick("User"), pick("Group"),
                 pick("ServiceAccount")])
    if kind in ("Role", "ClusterRole"):
        return [_col("Name", fmt="name"), _col("Created At", fmt="date")], [name, md.get("creationTimestamp")]
    if kind == "Event":
        inv = o.get("involvedObject") or {}
        return ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")],
                [age(o.get("lastTimestamp") or md.get("creationTimestamp"), now), o.get("type", ""),
                 o.get("reason", ""), "%s/%s" % ((inv.get("kind") or "").lower(), inv.get("name", "")),
                 o.get("message", "")])
    return [_col("Name", fmt="name"), _col("Age")], [name, a]


def to_table(kind, items, rv, include, now):
    cols = None
    rows = []
    for o in items:
        c, cells = table_columns_and_cells(kind, o, now)
        cols = cols or c
        row = {"cells": cells}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o["metadata"]}
        rows.append(row)
    if cols is None:
        cols, _ = table_columns_and_cells(kind, {"metadata": {"name": ""}}, now)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)},
            "columnDefinitions": cols, "rows": rows}


def wants_table(accept):
    return "as=Table" in (accept or "") and "g=meta.k8s.io" in (accept or "")


# ------------------------------------------------------------------ PodDisruptionBudgets
def _int_or_percent(v, total, round_up):
    if isinstance(v, str) and v.endswith("%"):
        import math
        x = float(v[:-1]) * total / 100.0
        return int(math.ceil(x) if round_up else math.floor(x))
    return int(v)


def _sel_matches(sel, labels):
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        op, k, vals = e.get("operator"), e.get("key"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def pdb_pods(pdb, pods):
    sel = (pdb.get("spec") or {}).get("selector")
    if sel is None:
        return []
    ns = pdb["metadata"].get("namespace")
    return [p for p in pods if p["metadata"]["namespace"] == ns and _sel_matches(sel, p["metadata"].get("labels")
                                                                                  or {})]


def pdb_status(st, pdb, pods):
    mine = pdb_pods(pdb, pods)
    healthy = sum(1 for p in mine if p["status"]["conditions"][0]["status"] == "True")
    # expected: the scale of the pods' controllers
    expected = 0
    owners = set()
    for p in mine:
        ref = (p["metadata"].get("ownerReferences") or [{}])[0]
        owners.add((ref.get("kind"), ref.get("name")))
    ns = pdb["metadata"].get("namespace")
    for kind, name in owners:
        if kind == "ReplicaSet":
            dep = name.rsplit("-", 1)[0]
            o = st["objects"].get(S.obj_key("apps", "Deployment", ns, dep))
            expected += int(((o or {}).get("spec") or {}).get("replicas", 1) or 0) if o else 1
        elif kind == "StatefulSet":
            o = st["objects"].get(S.obj_key("apps", "StatefulSet", ns, name))
            expected += int(((o or {}).get("spec") or {}).get("replicas", 1) or 0) if o else 1
        else:
            expected += sum(1 for p in mine if (p["metadata"].get("ownerReferences") or [{}])[0].get("name") == name)
    spec = pdb.get("spec") or {}
    if "minAvailable" in spec:
        desired = _int_or_percent(spec["minAvailable"], expected, True)
    elif "maxUnavailable" in spec:
        desired = max(0, expected - _int_or_percent(spec["maxUnavailable"], expected, True))
    else:
        desired = expected
    allowed = max(0, healthy - desired)
    cond = {"type": "DisruptionAllowed", "status": "True" if allowed > 0 else "False",
            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods", "message": "",
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "lastTransitionTime": pdb["metadata"].get("creationTimestamp")}
    return {"observedGeneration": pdb["metadata"].get("generation", 1), "disruptionsAllowed": allowed,
            "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected, "conditions": [cond]}


# ------------------------------------------------------------------ patches
def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# built-in groups: strategic merge patches work on them (not on custom resources)
SMP_GROUPS = {"", "apps", "batch", "policy", "rbac.authorization.k8s.io", "networking.k8s.io", "coordination.k8s.io",
              "autoscaling", "storage.k8s.io", "scheduling.k8s.io", "discovery.k8s.io", "node.k8s.io",
              "admissionregistration.k8s.io", "apiregistration.k8s.io", "apiextensions.k8s.io",
              "authorization.k8s.io", "authentication.k8s.io"}
# fields whose lists merge by a key in a strategic merge patch (the Go types' patchMergeKey)
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey", "conditions": "type",
    "ownerReferences": "uid", "secrets": "name", "addresses": "type", "resourceClaims": "name",
    "readinessGates": "conditionType", "ports": None,   # containerPort in containers, port in services
}
PRIMITIVE_MERGE = {"finalizers"}


def _merge_key(field, items):
    if field == "ports":
        sample = next((x for x in items if isinstance(x, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def strategic_patch(target, patch, field=None):
    """A strategic merge patch, as far as kubectl's patches need: maps merge, null deletes, lists with a merge
    key merge by it (with $patch: delete/replace, $setElementOrder, $deleteFromPrimitiveList, $retainKeys)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            out[f] = [x for x in out.get(f) or [] if x not in (v or [])]
            continue
        if v is None:
            out.pop(k, None)
            continue
        cur = out.get(k)
        if isinstance(v, dict):
            r = strategic_patch(cur if isinstance(cur, dict) else {}, v, k)
            if r is None:
                out.pop(k, None)
            else:
                out[k] = r
        elif isinstance(v, list):
            key = _merge_key(k, v + (cur or [] if isinstance(cur, list) else []))
            if k in PRIMITIVE_MERGE and isinstance(cur, list):
                out[k] = cur + [x for x in v if x not in cur]
            elif key and isinstance(cur, list):
                merged = [copy.deepcopy(x) for x in cur]
                for item in v:
                    if not isinstance(item, dict):
                        continue
                    if item.get("$patch") == "replace":
                        merged = [dict((kk, vv) for kk, vv in x.items() if kk != "$patch") for x in v]
                        break
                    idx = next((i for i, x in enumerate(merged) if isinstance(x, dict) and
                                x.get(key) == item.get(key)), None)
                    if item.get("$patch") == "delete":
                        if idx is not None:
                            merged.pop(idx)
                        continue
                    if idx is None:
                        merged.append(strategic_patch({}, item, None))
                    else:
                        merged[idx] = strategic_patch(merged[idx], item, None)
                order = patch.get("$setElementOrder/" + k)
                if order:
                    pos = {json.dumps(x.get(key)): i for i, x in enumerate(order) if isinstance(x, dict)}
                    merged.sort(key=lambda x: pos.get(json.dumps(x.get(key)), len(pos)))
                out[k] = merged
            else:
                out[k] = copy.deepcopy(v)
        else:
            out[k] = v
    if retain is not None:
        out = {k: v for k, v in out.items() if k in retain}
    return out


def json_patch(doc, ops):
    """RFC 6902."""
    doc = copy.deepcopy(doc)

    def walk(path):
        if path == "":
            return None, None
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur, parts[-1]

    for op in ops if isinstance(ops, list) else []:
        try:
            o, path = op["op"], op.get("path", "")
            parent, last = walk(path)
            if o in ("add", "replace"):
                if isinstance(parent, list):
                    i = len(parent) if last == "-" else int(last)
                    if o == "add":
                        parent.insert(i, copy.deepcopy(op["value"]))
                    else:
                        parent[i] = copy.deepcopy(op["value"])
                else:
                    if o == "replace" and last not in parent:
                        raise KeyError(path)
                    parent[last] = copy.deepcopy(op["value"])
            elif o == "remove":
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    del parent[last]
            elif o == "test":
                p2, l2 = walk(path)
                val = p2[int(l2)] if isinstance(p2, list) else p2[l2]
                if val != op["value"]:
                    raise Fail(422, "Invalid", "the server rejected our request due to an error in our request")
            elif o in ("move", "copy"):
                fp, fl = walk(op["from"])
                val = fp[int(fl)] if isinstance(fp, list) else fp[fl]
                if o == "move":
                    if isinstance(fp, list):
                        fp.pop(int(fl))
                    else:
                        del fp[fl]
                parent, last = walk(path)
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(val))
                else:
                    parent[last] = copy.deepcopy(val)
            else:
                raise Fail(422, "Invalid", 'Unexpected kind: %s' % o)
        except (KeyError, IndexError, ValueError, TypeError):
            raise Fail(422, "Invalid", "the server rejected our request due to an error in our request")
    return doc


# ------------------------------------------------------------------ the API
class API:
    def __init__(self, server):
        self.server = server          # k8s_apiserver.Server: .st, save()
        self.view = View()

    # -------------------------------------------------------------- entry
    def handle(self, method, path, query, headers, body, user, lock):
        """Reply for one request. `lock` guards the store; watches take it per poll."""
        parts = [p for p in path.split("/") if p]
        accept = headers.get("Accept") or ""
        if not parts or parts[0] not in ("api", "apis"):
            if parts and parts[0] == "openapi":
                return self.openapi(parts, user, lock)
            raise no_such_path()
        with lock:
            st = self.server.st
            if st is None or st.get("cluster") is None:
                raise Fail(503, "ServiceUnavailable", "the cluster store is empty")
            self.finalize(st)
            user = self.impersonate(st, user, headers)
            if (parts[0] == "api" and len(parts) <= 2) or (parts[0] == "apis" and len(parts) <= 3):
                if method != "GET":
                    raise Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                        "resource")
                self.authorize(st, user, {"verb": "get", "path": path})
                addr = "%s:%s" % (self.server.address or "", self.server.port or 6443)
                rep = discovery(st, parts, accept, addr)
                if rep is not None:
                    return rep
            r = self.route(st, parts)
        return self.dispatch(method, r, query, headers, body, user, lock)

    def route(self, st, parts):
        """(res, namespace, name, subresource) of a resource path."""
        if parts[0] == "api":
            if len(parts) < 3 or parts[1] != "v1":
                raise no_such_path()
            g, v, rest = "", "v1", parts[2:]
        else:
            if len(parts) < 4:
                raise no_such_path()
            g, v, rest = parts[1], parts[2], parts[3:]
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (g == "" and len(rest) == 3 and
                                                              rest[2] in ("status", "finalize")):
            ns, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise no_such_path()
        res = find_res(st, g, v, rest[0])
        if res is None:
            raise no_such_path()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and sub not in [s[0] for s in res.subs]:
            raise no_such_path()
        if ns is not None and not res.namespaced:
            raise no_such_path()
        return res, ns, name, sub

    # -------------------------------------------------------------- auth
    def impersonate(self, st, user, headers):
        imp = headers.get_all("Impersonate-User") if hasattr(headers, "get_all") else None
        imp_user = (imp or [None])[0] if imp else headers.get("Impersonate-User")
        imp_groups = (headers.get_all("Impersonate-Group") if hasattr(headers, "get_all") else None) or []
        if not imp_user:
            if imp_groups:
                raise Fail(500, "InternalError", "Internal error occurred: requested %s without impersonating a "
                                                 "user" % imp_groups)
            return user
        if imp_user.startswith("system:serviceaccount:") and imp_user.count(":") == 3:
            _, _, ns, sa = imp_user.split(":")
            attrs = {"verb": "impersonate", "group": "", "resource": "serviceaccounts", "namespace": ns, "name": sa}
        else:
            attrs = {"verb": "impersonate", "group": "", "resource": "users", "name": imp_user}
        self.authorize(st, user, attrs)
        for gname in imp_groups:
            self.authorize(st, user, {"verb": "impersonate", "group": "", "resource": "groups", "name": gname})
        return RBAC.user_for(imp_user, imp_groups)

    def authorize(self, st, user, attrs):
        ok, _ = RBAC.allowed(st, user, attrs)
        if not ok:
            d = {}
            if attrs.get("path") is None:
                d = {"name": attrs.get("name") or "", "group": attrs["group"], "kind": attrs["resource"]}
            raise Fail(403, "Forbidden", RBAC.forbidden_message(user, attrs), d)

    # -------------------------------------------------------------- verbs
    def dispatch(self, method, r, query, headers, body, user, lock):
        res, ns, name, sub = r
        q = lambda k, d=None: (query.get(k) or [d])[0]
        watch = q("watch") in ("true", "1")
        if method == "GET":
            verb = "get" if name else ("watch" if watch else "list")
        elif method == "POST":
            verb = "create"
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            raise Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        allowed_verbs = res.verbs if not sub else next(s[2] for s in res.subs if s[0] == sub)
        if verb not in allowed_verbs and not (verb in ("list", "watch") and "list" in allowed_verbs):
            raise Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if method == "POST" and name and not sub:
            raise Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        with lock:
            st = self.server.st
            self.authorize(st, user, {"verb": verb, "group": res.group, "resource": res.name, "subresource": sub,
                                      "namespace": ns, "name": name})
        if verb == "watch":
            return self.watch(res, ns, query, headers, lock)
        with lock:
            st = self.server.st
            now = common.now()
            if verb == "get":
                return self.get(st, res, ns, name, sub, query, headers, now)
            if verb == "list":
                return self.list(st, res, ns, query, headers, now)
            dry = q("dryRun") == "All"
            if verb == "create":
                rep = self.create(st, res, ns, name, sub, body, headers, query, user, now, dry)
            elif verb == "update":
                rep = self.update(st, res, ns, name, sub, self.decode(body), query, headers, now, dry)
            elif verb == "patch":
                rep = self.patch(st, res, ns, name, sub, body, headers.get("Content-Type") or "", query,
                                 headers, now, dry)
            elif verb == "delete":
                rep = self.delete(st, res, ns, name, self.decode(body) if body else {}, query, now, dry)
            else:
                rep = self.delete_collection(st, res, ns, query, now, dry)
            if not dry:
                self.server.save(force=False)
            return rep

    def decode(self, body):
        if not body:
            raise Fail(400, "BadRequest", "the body of the request was in an unknown format - accepted media types "
                                          "include: application/json, application/yaml")
        if body[:4] == b"k8s\x00":
            from . import k8s_proto
            try:
                return k8s_proto.decode(body)
            except (ValueError, IndexError, UnicodeDecodeError) as e:
                raise Fail(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                                                        "accepted media types include: application/json, "
                                                        "application/yaml (%s)" % e)
        try:
            d = json.loads(body)
        except ValueError:
            try:
                d = yaml.safe_load(body)
            except yaml.YAMLError as e:
                raise Fail(400, "BadRequest", "the body of the request was in an unknown format: %s" % e)
        if not isinstance(d, dict):
            raise Fail(400, "BadRequest", "the body of the request was in an unknown format")
        return d

    # -------------------------------------------------------------- reads
    def objects(self, st, res, now):
        return self.view.snapshot(st, res, now)

    def current(self, st, res, ns, name, now):
        key = self.key(res, ns, name)
        o = self.objects(st, res, now).get(key)
        if o is None:
            raise not_found(res, name)
        return key, o

    def written(self, st, res, key, now, typ="MODIFIED"):
        o = self.objects(st, res, now)[key]
        self.view.record(_kid(res), key, typ, o)
        return o

    def key(self, res, ns, name):
        return S.obj_key(res.group, res.kind, ns if res.namespaced else "", name)

    def get(self, st, res, ns, name, sub, query, headers, now):
        if res.namespaced and ns is None:
            raise no_such_path()
        if sub == "log":
            self.current(st, res, ns, name, now)
            return Reply(200, "lab: container logs are not simulated\n", "text/plain")
        if sub == "scale":
            _, o = self.current(st, res, ns, name, now)
            return Reply(200, scale_of(o))
        _, o = self.current(st, res, ns, name, now)
        if wants_table(headers.get("Accept")):
            return Reply(200, to_table(res.kind, [o], o["metadata"]["resourceVersion"],
                                       (query.get("includeObject") or ["Metadata"])[0], now),
                         "application/json;as=Table;v=v1;g=meta.k8s.io")
        return Reply(200, o)

    def list(self, st, res, ns, query, headers, now):
        lreqs = label_reqs((query.get("labelSelector") or [""])[0])
        freqs = field_reqs(res, (query.get("fieldSelector") or [""])[0])
        items = [o for o in self.objects(st, res, now).values()
                 if (ns is None or o["metadata"].get("namespace") == ns) and matches(o, lreqs, freqs)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        rv = str(st["resourceVersion"])
        if wants_table(headers.get("Accept")):
            return Reply(200, to_table(res.kind, items, rv, (query.get("includeObject") or ["Metadata"])[0], now),
                         "application/json;as=Table;v=v1;g=meta.k8s.io")
        return Reply(200, {"kind": res.kind + "List", "apiVersion": res.gv, "metadata": {"resourceVersion": rv},
                           "items": items})

    # -------------------------------------------------------------- watch
    def watch(self, res, ns, query, headers, lock):
        q = lambda k, d=None: (query.get(k) or [d])[0]
        lreqs = label_reqs(q("labelSelector", ""))
        freqs = field_reqs(res, q("fieldSelector", ""))
        timeout = float(q("timeoutSeconds") or 1800)
        since = q("resourceVersion") or ""
        initial = q("sendInitialEvents") == "true"
        bookmarks = q("allowWatchBookmarks") == "true"
        table = wants_table(headers.get("Accept"))
        include = q("includeObject", "Metadata")
        kid = _kid(res)
        api = self

        def visible(o):
            return (ns is None or o["metadata"].get("namespace") == ns) and matches(o, lreqs, freqs)

        def ev(typ, o, now):
            if table and typ != "BOOKMARK":
                o = to_table(res.kind, [o], o["metadata"]["resourceVersion"], include, now)
            return (json.dumps({"type": typ, "object": o}) + "\n").encode()

        def stream(alive):
            deadline = time.time() + timeout
            with lock:
                st = api.server.st
                now = common.now()
                snap = api.objects(st, res, now)
                out = []
                state = {}
                if since in ("", "0") or initial:
                    for k, o in sorted(snap.items()):
                        if visible(o):
                            out.append(ev("ADDED", o, now))
                            state[k] = o["metadata"]["resourceVersion"]
                    if initial and bookmarks:
                        out.append(ev("BOOKMARK", {"kind": res.kind, "apiVersion": res.gv, "metadata": {
                            "resourceVersion": str(st["resourceVersion"]),
                            "annotations": {"k8s.io/initial-events-end": "true"}}}, now))
                else:
                    try:
                        base = int(since)
                    except ValueError:
                        base = 0
                    for rv, dk, k, typ, o in list(api.view.log):
                        if dk == kid and typ == "DELETED" and rv > base and visible(o) and k not in snap:
                            out.append(ev("DELETED", o, now))
                    for k, o in sorted(snap.items()):
                        if not visible(o):
                            continue
                        state[k] = o["metadata"]["resourceVersion"]
                        if int(o["metadata"]["resourceVersion"]) > base:
                            out.append(ev("ADDED" if api.view.created_rv(k) > base else "MODIFIED", o, now))
                last_rv = st["resourceVersion"]
            for chunk in out:
                yield chunk
            last_poll = time.time()
            while time.time() < deadline:
                if not alive(0.3):
                    return
                with lock:
                    st = api.server.st
                    if st is None:
                        return
                    if st["resourceVersion"] == last_rv and time.time() - last_poll < 2.0:
                        continue
                    now = common.now()
                    api.finalize(st)
                    out = []
                    for rv, dk, k, typ, o in list(api.view.log):
                        if dk != kid or rv <= last_rv:
                            continue
                        if typ != "DELETED" and visible(o):
                            if k not in state:
                                out.append(ev("ADDED", o, now))
                            elif state[k] != o["metadata"]["resourceVersion"]:
                                out.append(ev("MODIFIED", o, now))
                            state[k] = o["metadata"]["resourceVersion"]
                        elif k in state:
                            del state[k]
                            out.append(ev("DELETED", o, now))
                    snap = api.objects(st, res, now)
                    last_rv = st["resourceVersion"]
                    last_poll = time.time()
                    for k, o in sorted(snap.items()):
                        if visible(o):
                            rv = o["metadata"]["resourceVersion"]
                            if k not in state:
                                out.append(ev("ADDED", o, now))
                            elif state[k] != rv:
                                out.append(ev("MODIFIED", o, now))
                            state[k] = rv
                        elif k in state:
                            del state[k]
                            out.append(ev("DELETED", o, now))
                    for k in [k for k in state if k not in snap]:
                        del state[k]
                        gone = next((o for rv, dk, kk, typ, o in reversed(api.view.log)
                                     if kk == k and typ == "DELETED"), None)
                        if gone is not None:
                            out.append(ev("DELETED", gone, now))
                for chunk in out:
                    yield chunk

        return Reply(200, None, "application/json", stream=stream)

    # -------------------------------------------------------------- writes
    def manager(self, query, headers, default=None):
        m = (query.get("fieldManager") or [None])[0]
        if m:
            return m
        ua = headers.get("User-Agent") or ""
        return default or (ua.split("/")[0] if ua else "unknown")

    def check_terminating(self, st, res, ns):
        if res.namespaced and ns in (st.get("nsTerminating") or {}):
            raise Fail(403, "Forbidden", '%s "%s" is forbidden: unable to create new content in namespace %s because '
                                         'it is being terminated' % (res.qualified, "", ns),
                       {"kind": res.name, "causes": [{"reason": "NamespaceTerminating", "message":
                                                      "namespace %s is being terminated" % ns,
                                                      "field": "metadata.namespace"}]})

    def check_namespace(self, st, res, ns):
        if res.namespaced and S.obj_key("", "Namespace", "", ns) not in st["objects"]:
            raise Fail(404, "NotFound", 'namespaces "%s" not found' % ns, {"name": ns, "kind": "namespaces"})

    def prepare(self, st, res, ns, obj, name=None, create=False):
        """Check an incoming object against the request (kind, version, name, namespace)."""
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if not kind:
            raise Fail(400, "BadRequest", "Object 'Kind' is missing in '%s'" % json.dumps(obj)[:200])
        if not av:
            raise Fail(400, "BadRequest", "Object 'apiVersion' is missing in '%s'" % json.dumps(obj)[:200])
        if av != res.gv or kind != res.kind:
            raise Fail(400, "BadRequest", "the API version in the data (%s) does not match the expected API version "
                                          "(%s)" % (av, res.gv) if av != res.gv else
                       "the kind in the data (%s) does not match the expected kind (%s)" % (kind, res.kind))
        md = obj.get("metadata")
        if md is None:
            md = obj["metadata"] = {}
        if not isinstance(md, dict):
            raise Fail(400, "BadRequest", "metadata must be an object")
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise Fail(400, "BadRequest", "the namespace of the provided object does not match the namespace sent "
                                              "on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if name is not None and md.get("name") and md["name"] != name:
            raise Fail(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)"
                       % (md["name"], name))
        if name is not None:
            md["name"] = name
        if create and not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + S.short_hash(md["generateName"], str(time.time()), n=5)
        return md

    def create(self, st, res, ns, name, sub, body, headers, query, user, now, dry):
        if sub == "eviction":
            return self.evict(st, res, ns, name, self.decode(body), now, dry)
        if sub:
            raise Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        obj = self.decode(body)
        if res.kind in REVIEWS:
            return self.review(st, res, ns, obj, user)
        if res.namespaced and ns is None:
            raise no_such_path()
        md = self.prepare(st, res, ns, obj, create=True)
        if not md.get("name"):
            raise invalid(res, "", [("metadata.name", "FieldValueRequired",
                                     "Required value: name or generateName is required")])
        if res.kind in DERIVED:
            raise Fail(405, "MethodNotAllowed", "lab: %s are made by the lab (kubelets, controllers), not created "
                                                "through the API" % res.name)
        self.check_namespace(st, res, ns)
        self.check_terminating(st, res, ns)
        key = self.key(res, ns, md["name"])
        if key in st["objects"] or key in self.objects(st, res, now):
            raise Fail(409, "AlreadyExists", '%s "%s" already exists' % (res.qualified, md["name"]),
                       {"name": md["name"], "group": res.group, "kind": res.name})
        errs = SCHEMA.validate(st, res.kind, res.group, obj, None, strict=self.strict(query))
        if errs:
            raise invalid(res, md["name"], errs)
        for f in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
                  "deletionTimestamp"):
            md.pop(f, None)
        SCHEMA.default(st, res.kind, obj)
        if dry:
            o = copy.deepcopy(obj)
            o["metadata"].update({"uid": str(uuid.uuid4()), "creationTimestamp": S.ts(now), "generation": 1})
            return Reply(201, o)
        S.put_object(st, obj, now, self.manager(query, headers), ssa=False)
        return Reply(201, self.written(st, res, key, now, "ADDED"))

    def strict(self, query):
        return (query.get("fieldValidation") or ["Warn"])[0] == "Strict"

    def update(self, st, res, ns, name, sub, obj, query, headers, now, dry):
        if res.namespaced and ns is None:
            raise no_such_path()
        key, cur = self.current(st, res, ns, name, now)
        if sub == "status":
            return Reply(200, cur)     # the lab derives status itself
        if sub == "scale":
            return self.update_scale(st, res, ns, name, obj, cur, query, headers, now, dry)
        md = self.prepare(st, res, ns, obj, name)
        rv = md.get("resourceVersion")
        if rv and rv != cur["metadata"]["resourceVersion"]:
            raise Fail(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                                        'please apply your changes to the latest version and try again'
                       % (res.qualified, name), {"name": name, "group": res.group, "kind": res.name})
        errs = SCHEMA.validate(st, res.kind, res.group, obj, cur, strict=self.strict(query))
        if errs:
            raise invalid(res, name, errs)
        if res.kind == "Node":
            if not dry:
                write_node(st, name, obj)
                self.server.save()
            return Reply(200, self.written(st, res, key, now))
        if res.kind == "Pod":
            if not dry:
                write_pod_meta(st, ns, name, obj, cur)
            return Reply(200, self.written(st, res, key, now))
        if res.kind == "ReplicaSet":
            return Reply(200, cur)
        if key not in st["objects"] and res.kind == "ServiceAccount":
            adopted = copy.deepcopy(cur)                # `default`: written once a client changes it
            adopted["metadata"].pop("managedFields", None)
            st["objects"][key] = adopted
        if key not in st["objects"]:
            raise Fail(405, "MethodNotAllowed", "lab: %s/%s is kept by the lab itself" % (res.name, name))
        mf = md.pop("managedFields", None)
        SCHEMA.default(st, res.kind, obj, cur)
        if dry:
            return Reply(200, obj)
        S.update_object(st, key, obj, self.manager(query, headers), now)
        if mf is not None and mf != cur["metadata"].get("managedFields"):
            set_managed_fields(st, key, mf)
        return Reply(200, self.written(st, res, key, now))

    def update_scale(self, st, res, ns, name, obj, cur, query, headers, now, dry):
        n = (obj.get("spec") or {}).get("replicas")
        if not isinstance(n, int) or n < 0:
            raise invalid(res, name, [("spec.replicas", "FieldValueInvalid",
                                       "Invalid value: %r: must be greater than or equal to 0" % n)])
        key = self.key(res, ns, name)
        o = copy.deepcopy(st["objects"][key])
        o.setdefault("spec", {})["replicas"] = n
        if not dry:
            S.update_object(st, key, o, self.manager(query, headers), now)
        return Reply(200, scale_of(self.objects(st, res, now)[key]))

    def patch(self, st, res, ns, name, sub, body, ctype, query, headers, now, dry):
        ctype = ctype.split(";")[0].strip()
        if res.namespaced and ns is None:
            raise no_such_path()
        force = (query.get("force") or [""])[0]
        if ctype == "application/apply-patch+yaml":
            return self.apply(st, res, ns, name, body, query, headers, now, dry, force == "true")
        if force:
            raise invalid(res, name, [("force", "FieldValueForbidden",
                                       "Forbidden: may not be specified for non-apply patch")])
        try:
            p = json.loads(body or b"null")
        except ValueError as e:
            raise Fail(400, "BadRequest", "error decoding patch: %s" % e)
        key, cur = self.current(st, res, ns, name, now)
        base = copy.deepcopy(cur)
        if ctype == "application/merge-patch+json":
            new = merge_patch(base, p)
        elif ctype == "application/strategic-merge-patch+json":
            if res.group not in SMP_GROUPS:
                raise Fail(415, "UnsupportedMediaType", "strategic merge patch is not supported for %s"
                           % res.qualified)
            new = strategic_patch(base, p)
        elif ctype == "application/json-patch+json":
            new = json_patch(base, p)
        else:
            raise Fail(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted '
                                                    'media types include: application/json-patch+json, '
                                                    'application/merge-patch+json, application/apply-patch+yaml')
        if not isinstance(new, dict):
            raise Fail(422, "Invalid", "the patch did not produce an object")
        new.setdefault("metadata", {})
        if new["metadata"].get("resourceVersion") is None:
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        return self.update(st, res, ns, name, sub, new, query, headers, now, dry)

    def apply(self, st, res, ns, name, body, query, headers, now, dry, force):
        manager = (query.get("fieldManager") or [None])[0]
        if not manager:
            raise Fail(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                                       'required for apply patch')
        try:
            obj = yaml.safe_load(body or b"")
        except yaml.YAMLError as e:
            raise Fail(400, "BadRequest", "error decoding YAML: %s" % e)
        if not isinstance(obj, dict):
            raise Fail(400, "BadRequest", "error decoding YAML: the body is not an object")
        md = self.prepare(st, res, ns, obj, name)
        key = self.key(res, ns, name)
        exists = key in self.objects(st, res, now)
        if res.kind == "Node":
            if not exists:
                raise not_found(res, name)
            cur = self.objects(st, res, now)[key]
            new = copy.deepcopy(cur)
            for f in ("labels", "annotations"):
                new["metadata"].setdefault(f, {}).update(md.get(f) or {})
            if "taints" in (obj.get("spec") or {}):
                new["spec"]["taints"] = obj["spec"]["taints"]
            if "unschedulable" in (obj.get("spec") or {}):
                new["spec"]["unschedulable"] = obj["spec"]["unschedulable"]
            if not dry:
                write_node(st, name, new)
            return Reply(200, self.written(st, res, key, now))
        if res.kind in DERIVED:
            raise Fail(405, "MethodNotAllowed", "lab: server-side apply of %s is not simulated" % res.name)
        if not exists:
            self.check_namespace(st, res, ns)
            self.check_terminating(st, res, ns)
        cur = self.objects(st, res, now).get(key)
        unknown = SCHEMA.validate(st, res.kind, res.group, obj, cur, strict=True, only_unknown=True)
        if unknown:
            raise Fail(400, "BadRequest", "failed to create typed patch object (%s%s; %s, Kind=%s): %s: field not "
                                          "declared in schema" % (ns + "/" if ns else "", name, res.gv, res.kind,
                                                                  "." + unknown[0][0]))
        if exists and key not in st["objects"] and res.kind == "ServiceAccount":
            adopted = copy.deepcopy(self.objects(st, res, now)[key])     # `default`, written once changed
            adopted["metadata"].pop("managedFields", None)
            st["objects"][key] = adopted
        if exists and key not in st["objects"]:
            raise Fail(405, "MethodNotAllowed", "lab: %s/%s is kept by the lab itself" % (res.name, name))

        def post(o):
            SCHEMA.default(st, res.kind, o, cur)
            errs = SCHEMA.validate(st, res.kind, res.group, o, cur)
            if errs:
                raise invalid(res, name, errs)
        if dry:
            o = copy.deepcopy(obj)
            post(o)
            return Reply(200 if exists else 201, o)
        try:
            S.put_object(st, copy.deepcopy(obj), now, manager, ssa=True, force=force, post=post)
        except S.ApiError as e:
            if getattr(e, "conflicts", None):
                causes = [{"reason": "FieldManagerConflict", "message": 'conflict with "%s" using %s' % (m, av),
                           "field": S.path_text(p)} for m, av, p in e.conflicts]
                n = len(causes)
                raise Fail(409, "Conflict", "Apply failed with %d conflict%s: %s" % (
                    n, "" if n == 1 else "s", "; ".join("%s: %s" % (c["message"], c["field"]) for c in causes)),
                    {"causes": causes})
            raise
        return Reply(200 if exists else 201, self.written(st, res, key, now, "MODIFIED" if exists else "ADDED"))

    def delete(self, st, res, ns, name, opts, query, now, dry):
        if res.namespaced and ns is None:
            raise no_such_path()
        key, cur = self.current(st, res, ns, name, now)
        pre = opts.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != cur["metadata"].get("uid"):
            raise Fail(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": Precondition failed: UID in '
                                        'precondition: %s, UID in object meta: %s'
                       % (res.qualified, name, pre["uid"], cur["metadata"].get("uid")))
        if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            raise Fail(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": Precondition failed: '
                                        'ResourceVersion in precondition: %s, ResourceVersion in object meta: %s'
                       % (res.qualified, name, pre["resourceVersion"], cur["metadata"]["resourceVersion"]))
        if res.kind == "Namespace" and name in ("default", "kube-system", "kube-public"):
            raise Fail(403, "Forbidden", 'namespaces "%s" is forbidden: this namespace may not be deleted' % name,
                       {"name": name, "kind": "namespaces"})
        if dry:
            return Reply(200, cur)
        if res.kind == "Namespace":
            # like the namespace controller: Terminating first, its content goes, then the namespace
            o = st["objects"][key]
            o["metadata"].setdefault("deletionTimestamp", S.ts(now))
            st.setdefault("nsTerminating", {}).setdefault(name, time.time() + NAMESPACE_FINALIZE_SECONDS)
            st["resourceVersion"] += 1
            return Reply(200, self.written(st, res, key, now))
        self.remove(st, res, ns, name, key, cur, now)
        return Reply(200, cur)

    def finalize(self, st):
        """Namespaces whose deletion has run its course go, with everything in them."""
        due = [n for n, t in (st.get("nsTerminating") or {}).items() if t <= time.time()]
        for name in due:
            del st["nsTerminating"][name]
            key = S.obj_key("", "Namespace", "", name)
            o = st["objects"].get(key)
            if o is None:
                continue
            for k in [k for k, x in st["objects"].items() if x["metadata"].get("namespace") == name]:
                x = st["objects"][k]
                kid = S._group(x.get("apiVersion", "")) + "/" + x.get("kind", "")
                self.view.forget(st, kid, k, x)
            S.delete_object(st, "Namespace", None, name, True, "v1")
            self.view.forget(st, "/Namespace", key, o)
            for k in [k for k in list(self.view.rv) if k.split("|")[2] == name]:
                self.view.rv.pop(k, None)
            self.view.seen.get("/Namespace", set()).discard(key)

    def remove(self, st, res, ns, name, key, cur, now):
        kid = _kid(res)
        if res.kind == "Pod" and res.group == "":
            delete_pod(st, ns, name, cur)
        elif res.kind == "ReplicaSet":
            pass                          # the Deployment makes it again
        else:
            S.delete_object(st, res.kind, ns, name, False, res.gv)
            if res.kind == "Namespace":
                for k in [k for k in list(self.view.rv) if k.split("|")[2] == name]:
                    self.view.rv.pop(k, None)
        self.view.forget(st, kid, key, cur)
        if kid in self.view.seen:
            self.view.seen[kid].discard(key)

    def delete_collection(self, st, res, ns, query, now, dry):
        lreqs = label_reqs((query.get("labelSelector") or [""])[0])
        freqs = field_reqs(res, (query.get("fieldSelector") or [""])[0])
        items = [(k, o) for k, o in self.objects(st, res, now).items()
                 if (ns is None or o["metadata"].get("namespace") == ns) and matches(o, lreqs, freqs)]
        if not dry:
            for k, o in items:
                self.remove(st, res, o["metadata"].get("namespace"), o["metadata"]["name"], k, o, now)
        return Reply(200, {"kind": res.kind + "List", "apiVersion": res.gv,
                           "metadata": {"resourceVersion": str(st["resourceVersion"])}, "items": [o for _, o in items]})

    # -------------------------------------------------------------- subresources and reviews
    def evict(self, st, res, ns, name, ev, now, dry):
        key, pod = self.current(st, res, ns, name, now)
        pods = S.list_pods(st, now)
        pdbs = [o for o in st["objects"].values() if o.get("kind") == "PodDisruptionBudget" and
                o["metadata"].get("namespace") == ns and _sel_matches((o.get("spec") or {}).get("selector") or
                                                                      {"matchLabels": {"-": "-"}},
                                                                      pod["metadata"].get("labels") or {})]
        if len(pdbs) > 1:
            raise Fail(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the eviction "
                                             "subresource does not support.")
        ready = next((c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"), "False")
        if pdbs and ready == "True":
            s = pdb_status(st, pdbs[0], pods)
            if s["disruptionsAllowed"] <= 0:
                raise Fail(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                           {"causes": [{"reason": "DisruptionBudget", "message":
                                        "The disruption budget %s needs %d healthy pods and has %d currently"
                                        % (pdbs[0]["metadata"]["name"], s["desiredHealthy"], s["currentHealthy"])}]})
        if not dry:
            self.remove(st, res, ns, name, key, pod, now)
        return Reply(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})

    def review(self, st, res, ns, obj, user):
        spec = obj.get("spec") or {}
        if res.kind == "SelfSubjectReview":
            obj["status"] = {"userInfo": {"username": user["name"], "groups": user["groups"]}}
            return Reply(201, obj)
        if res.kind == "SelfSubjectRulesReview":
            obj["status"] = RBAC.rules_review(st, user, spec.get("namespace") or "default")
            return Reply(201, obj)
        if res.kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
            who = RBAC.user_for(spec.get("user") or "", spec.get("groups") or [])
            who["groups"] = list(spec.get("groups") or [])
        elif res.kind == "SelfSubjectAccessReview":
            who = user
        else:
            raise Fail(405, "MethodNotAllowed", "lab: %s is not simulated" % res.name)
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if nra:
            attrs = {"verb": nra.get("verb", ""), "path": nra.get("path", "")}
        elif ra:
            attrs = {"verb": ra.get("verb", ""), "group": ra.get("group", ""), "resource": ra.get("resource", ""),
                     "subresource": ra.get("subresource") or None, "namespace": ra.get("namespace") or None,
                     "name": ra.get("name") or None}
        else:
            raise invalid(res, "", [("spec.resourceAttributes", "FieldValueRequired",
                                     "Required value: exactly one of nonResourceAttributes or resourceAttributes "
                                     "must be specified")])
        ok, reason = RBAC.allowed(st, who, attrs)
        obj["status"] = {"allowed": ok}
        if reason:
            obj["status"]["reason"] = reason
        obj.setdefault("metadata", {})["creationTimestamp"] = None
        return Reply(201, obj)

    # -------------------------------------------------------------- openapi
    def openapi(self, parts, user, lock):
        """/openapi/v3 (the root: one document per group/version) and /openapi/v3/apis/G/V: the paths and
        operations of each resource, with the query parameters the server understands (kubectl looks for
        `fieldValidation` on the PATCH operation before it lets the server validate). No v2 (kubectl asks
        for v3 first)."""
        if parts == ["openapi", "v2"]:
            # kubectl falls back to v2 (protobuf) only for kinds v3 does not describe (a custom resource whose
            # CRD is missing): an empty document lets it go on to its "no matches for kind" error, as with a
            # real server whose v2 document has no such kind
            with lock:
                self.authorize(self.server.st, user, {"verb": "get", "path": "/openapi/v2"})
            return Reply(200, openapi_v2_empty(), "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        if len(parts) < 2 or parts[1] != "v3":
            raise no_such_path()
        with lock:
            st = self.server.st
            if st is None or st.get("cluster") is None:
                raise Fail(503, "ServiceUnavailable", "the cluster store is empty")
            self.authorize(st, user, {"verb": "get", "path": "/" + "/".join(parts)})
            docs = {}
            for g, versions, by in groups(st):
                for v in versions:
                    gvpath = ("api/" + v) if not g else "apis/%s/%s" % (g, v)
                    docs[gvpath] = by[v]
            if len(parts) == 2:
                paths = {}
                for gvpath, rs in sorted(docs.items()):
                    h = hashlib.sha512(json.dumps(openapi_doc(rs, st), sort_keys=True).encode()).hexdigest().upper()
                    paths[gvpath] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (gvpath, h[:128])}
                return Reply(200, {"paths": paths})
            gvpath = "/".join(parts[2:])
            if gvpath not in docs:
                raise no_such_path()
            return Reply(200, openapi_doc(docs[gvpath], st))


def scale_of(o):
    spec, status = o.get("spec") or {}, o.get("status") or {}
    md = o["metadata"]
    sel = spec.get("selector") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": md["name"], "namespace": md.get("namespace"), "uid": md.get("uid"),
                         "resourceVersion": md.get("resourceVersion"), "creationTimestamp":
                         md.get("creationTimestamp")},
            "spec": {"replicas": int(spec.get("replicas", 1) or 0)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": ",".join("%s=%s" % kv for kv in sorted((sel.get("matchLabels") or {}).items()))}}


def set_managed_fields(st, key, entries):
    """A client wrote metadata.managedFields (kubectl moving client-side apply ownership to server-side apply):
    the owners become what the entries say."""
    owners, ops = {}, {}
    for e in entries or []:
        if not isinstance(e, dict) or not e.get("manager"):
            continue
        owners[e["manager"]] = S.paths_of_fields_v1(e.get("fieldsV1") or {})
        ops[e["manager"]] = e.get("operation", "Update")
    st.setdefault("fieldOwners", {})[key] = owners
    st.setdefault("fieldOps", {})[key] = ops
    st["resourceVersion"] += 1


def write_node(st, name, obj):
    """A client's update of a Node: labels, annotations, taints (without those the lab derives), unschedulable."""
    n = st["nodes"].get(name)
    if n is None:
        return
    md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    n["labels"] = dict(md.get("labels") or {})
    n["annotations"] = dict(md.get("annotations") or {})
    n["taints"] = [{k: v for k, v in t.items() if k in ("key", "value", "effect", "timeAdded")}
                   for t in spec.get("taints") or [] if t.get("key") not in DERIVED_TAINTS]
    n["unschedulable"] = bool(spec.get("unschedulable"))
    st["resourceVersion"] += 1


def write_pod_meta(st, ns, name, obj, cur):
    """Labels and annotations a client sets on a pod the lab derives (kept per pod incarnation)."""
    md = obj.get("metadata") or {}
    st.setdefault("podMeta", {})["%s/%s" % (ns, name)] = {"labels": md.get("labels") or {},
                                                         "annotations": md.get("annotations") or {}}
    st["resourceVersion"] += 1


def delete_pod(st, ns, name, cur):
    """Delete (or evict) a pod: a bare pod goes away; a controller's pod is replaced by a new one (a new name for
    ReplicaSet and DaemonSet pods, a new uid for StatefulSet pods), scheduled again."""
    owner = (cur["metadata"].get("ownerReferences") or [{}])[0].get("kind")
    pk = "%s/%s" % (ns, name)
    st.setdefault("bindings", {}).pop(pk, None)
    (st.get("podMeta") or {}).pop(pk, None)
    if not owner:
        st["objects"].pop(S.obj_key("", "Pod", ns, name), None)
    elif owner != "Node":
        slot = S.POD_SLOTS.get(pk)
        if slot:
            gens = st.setdefault("podGen", {})
            gens[slot] = gens.get(slot, 0) + 1
    st["resourceVersion"] += 1


def openapi_doc(rs, st):
    """An OpenAPI v3 document of one group/version: paths and operations (no schemas)."""
    version = ((st.get("cluster") or {}).get("kubernetesVersion") or "v1.34.1")
    paths = {}
    qp = lambda *names: [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                         for n in names]
    for r in rs:
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        base = "/api/" + r.version if not r.group else "/apis/%s/%s" % (r.group, r.version)
        coll = base + ("/namespaces/{namespace}/" if r.namespaced else "/") + r.name
        pathp = [{"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}] \
            if r.namespaced else []
        opid = lambda verb: verb + (r.group.split(".")[0].capitalize() if r.group else "Core") + \
            r.version.capitalize() + ("Namespaced" if r.namespaced else "") + r.kind

        def op(verb, action, params=()):
            return {"operationId": opid(verb), "parameters": list(params), "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": gvk, "responses": {"200": {"description": "OK"}}}
        item = {"parameters": pathp + qp("pretty")}
        if "list" in r.verbs:
            item["get"] = op("list", "list", qp("labelSelector", "fieldSelector", "limit", "continue",
                                               "resourceVersion", "timeoutSeconds", "watch"))
        if "create" in r.verbs:
            item["post"] = op("create", "post", qp("dryRun", "fieldManager", "fieldValidation"))
        if "deletecollection" in r.verbs:
            item["delete"] = op("deleteCollection", "deletecollection", qp("dryRun", "labelSelector"))
        paths[coll] = item
        if set(r.verbs) & {"get", "update", "patch", "delete"}:
            one = {"parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
                   + pathp + qp("pretty")}
            if "get" in r.verbs:
                one["get"] = op("read", "get")
            if "update" in r.verbs:
                one["put"] = op("replace", "put", qp("dryRun", "fieldManager", "fieldValidation"))
            if "patch" in r.verbs:
                one["patch"] = op("patch", "patch", qp("dryRun", "fieldManager", "fieldValidation", "force"))
                types = ["application/apply-patch+yaml", "application/json-patch+json",
                         "application/merge-patch+json"]
                if r.group in SMP_GROUPS:
                    types.append("application/strategic-merge-patch+json")
                one["patch"]["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in types},
                                               "required": True}
            if "delete" in r.verbs:
                one["delete"] = op("delete", "delete", qp("dryRun", "gracePeriodSeconds", "propagationPolicy"))
            paths[coll + "/{name}"] = one
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": version}, "paths": paths,
            "components": {"schemas": {}}}


def openapi_v2_empty():
    """A gnostic openapi_v2.Document with swagger "2.0", an info block and no paths, in protobuf."""
    def field(num, data):
        return bytes([num << 3 | 2, len(data)]) + data
    info = field(1, b"Kubernetes") + field(2, b"v1.34.1")
    return field(1, b"2.0") + field(2, info)
