"""The cluster store and the API logic of the simulated Kubernetes control plane.

One JSON document (on the first control plane: /var/lib/etcd/store.json, removed by `kubeadm reset`) holds
the cluster configuration, nodes (as their kubelets report them), objects applied with server-side apply,
bootstrap tokens, the uploaded control-plane certificates and helm releases. The API server daemon
(k8s_apiserver.dispatch) works on it under a lock; times are lab times (common.now()), node liveness real time."""
import copy
import hashlib
import hmac
import ipaddress
import json
import re
import time
import uuid


STORE = "/var/lib/etcd/store.json"
HEARTBEAT_GRACE = 40.0           # node-monitor-grace-period
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")

# group/version -> kinds the API server knows natively; kind -> namespaced?
BUILTIN = {
    "v1": {"Namespace": False, "ConfigMap": True, "Secret": True, "Service": True, "ServiceAccount": True,
           "Pod": True, "PersistentVolumeClaim": True, "PersistentVolume": False, "Endpoints": True,
           "LimitRange": True, "ResourceQuota": True, "Node": False, "Event": True},
    "apps/v1": {"Deployment": True, "DaemonSet": True, "StatefulSet": True, "ReplicaSet": True},
    "batch/v1": {"Job": True, "CronJob": True},
    "rbac.authorization.k8s.io/v1": {"Role": True, "RoleBinding": True, "ClusterRole": False,
                                     "ClusterRoleBinding": False},
    "networking.k8s.io/v1": {"Ingress": True, "NetworkPolicy": True, "IngressClass": False},
    "policy/v1": {"PodDisruptionBudget": True},
    "storage.k8s.io/v1": {"StorageClass": False, "CSIDriver": False},
    "apiextensions.k8s.io/v1": {"CustomResourceDefinition": False},
    "autoscaling/v2": {"HorizontalPodAutoscaler": True},
    "autoscaling/v1": {"HorizontalPodAutoscaler": True},
    "scheduling.k8s.io/v1": {"PriorityClass": False},
    "admissionregistration.k8s.io/v1": {"MutatingWebhookConfiguration": False,
                                        "ValidatingWebhookConfiguration": False},
    "apiregistration.k8s.io/v1": {"APIService": False},
    "coordination.k8s.io/v1": {"Lease": True},
    "node.k8s.io/v1": {"RuntimeClass": False},
    "discovery.k8s.io/v1": {"EndpointSlice": True},
}
SHORT = {"no": "nodes", "po": "pods", "deploy": "deployments", "ds": "daemonsets", "cm": "configmaps",
         "ns": "namespaces", "svc": "services", "sa": "serviceaccounts", "rs": "replicasets",
         "sts": "statefulsets", "crd": "customresourcedefinitions", "crds": "customresourcedefinitions",
         "pvc": "persistentvolumeclaims", "pv": "persistentvolumes", "ing": "ingresses", "ep": "endpoints",
         "pdb": "poddisruptionbudgets", "sc": "storageclasses", "hpa": "horizontalpodautoscalers",
         "netpol": "networkpolicies", "cj": "cronjobs", "pc": "priorityclasses"}

# CRDs that helm charts of the catalogue bring with them: chart -> [(group/version, kind, namespaced)]
CHART_CRDS = {
    "tigera-operator": [("operator.tigera.io/v1", "Installation", False),
                        ("operator.tigera.io/v1", "APIServer", False),
                        ("crd.projectcalico.org/v1", "IPPool", False)],
    "kube-prometheus-stack": [("monitoring.coreos.com/v1", "ServiceMonitor", True),
                              ("monitoring.coreos.com/v1", "PodMonitor", True),
                              ("monitoring.coreos.com/v1", "PrometheusRule", True),
                              ("monitoring.coreos.com/v1", "Prometheus", True),
                              ("monitoring.coreos.com/v1", "Alertmanager", True)],
}


class ApiError(Exception):
    """An error the API server returns: `reason` like NotFound, `message` as kubectl prints it."""

    def __init__(self, reason, message, code=400):
        super().__init__(message)
        self.reason, self.message, self.code = reason, message, code


def new_store():
    return {"cluster": None, "nodes": {}, "objects": {}, "tokens": {}, "uploadedCerts": None,
            "releases": {}, "resourceVersion": 1, "credentials": {}}


def ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def short_hash(*parts, n=5):
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    h = int(hashlib.sha256("/".join(parts).encode()).hexdigest(), 16)
    s = ""
    for _ in range(n):
        h, r = divmod(h, len(alphabet))
        s += alphabet[r]
    return s


def _group(api_version):
    return api_version.split("/", 1)[0] if "/" in api_version else ""


# ------------------------------------------------------------------ kinds
def known_kinds(st):
    """[(apiVersion, kind, namespaced)] the server serves: built-ins + CRDs + chart-provided CRDs."""
    out = [(av, k, ns) for av, kinds in BUILTIN.items() for k, ns in kinds.items()]
    for key, obj in st["objects"].items():
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            for v in spec.get("versions") or [{"name": spec.get("version", "v1")}]:
                out.append(("%s/%s" % (spec.get("group"), v.get("name")), names.get("kind"),
                            spec.get("scope", "Namespaced") == "Namespaced"))
    for rel in st["releases"].values():
        out += CHART_CRDS.get(rel["chartName"], [])
    return out


def plural(kind):
    k = kind.lower()
    if k.endswith("s"):
        return k + "es"
    if k.endswith("y") and not k.endswith("ey"):
        return k[:-1] + "ies"
    return k + "s"


def resolve_resource(st, resource):
    """`kubectl get RESOURCE` name (nodes, node, no, deploy, installations.operator.tigera.io) ->
    (group, kind, namespaced)."""
    r = resource.lower()
    r = SHORT.get(r, r)
    name, _, grp = r.partition(".")
    for av, kind, nsd in known_kinds(st):
        g = _group(av)
        if grp and g != grp:
            continue
        if name in (kind.lower(), plural(kind)):
            return g, kind, nsd
    raise ApiError("NotFound", 'error: the server doesn\'t have a resource type "%s"' % resource, 404)


def check_kind(st, api_version, kind, source="STDIN", name="", namespace=""):
    for av, k, nsd in known_kinds(st):
        if av == api_version and k == kind:
            return nsd
    raise ApiError("NoMatch", 'error: resource mapping not found for name: "%s" namespace: "%s" from "%s": '
                   'no matches for kind "%s" in version "%s"\nensure CRDs are installed first'
                   % (name, namespace, source, kind, api_version))


def obj_key(group, kind, ns, name):
    return "%s|%s|%s|%s" % (group, kind, ns or "", name)


# ------------------------------------------------------------------ cluster bootstrap
def init_cluster(st, cluster, node_name, now):
    """Fill a fresh store at `kubeadm init` (the config and the objects kubeadm creates)."""
    st["cluster"] = cluster
    st["cluster"]["createdAt"] = now
    st["cluster"]["initNode"] = node_name
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        put_object(st, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, now,
                   "kube-apiserver")
    from . import k8s_rbac
    for o in k8s_rbac.default_objects():
        put_object(st, o, now, "kube-apiserver" if not o["metadata"]["name"].startswith("kubeadm:") else "kubeadm")
    cc = cluster.get("clusterConfiguration") or {}
    put_object(st, {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
                    "data": {"ClusterConfiguration": json.dumps(cc, indent=1)}}, now)
    put_object(st, {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
                    "data": {"kubelet": json.dumps(cluster.get("kubeletConfiguration") or {}, indent=1)}}, now)
    put_object(st, {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "cluster-info", "namespace": "kube-public"},
                    "data": {"kubeconfig": "server: https://%s" % cluster["endpoint"]}}, now)
    # the API server's own Service, on the first address of the service subnet
    put_object(st, {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "kubernetes", "namespace": "default",
                                 "labels": {"component": "apiserver", "provider": "kubernetes"}},
                    "spec": {"clusterIP": _service_ip(cluster, 1), "ports": [
                        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}, now,
               "kube-apiserver")
    skip = set(cluster.get("skipAddons") or [])
    if "coredns" not in skip:
        _coredns(st, now)
        put_object(st, {"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                                "kubernetes.io/name": "CoreDNS"}},
                        "spec": {"clusterIP": _service_ip(cluster, 10), "selector": {"k8s-app": "kube-dns"},
                                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                                           {"name": "metrics", "port": 9153, "protocol": "TCP",
                                            "targetPort": 9153}]}}, now, "kubeadm")
    if "kube-proxy" not in skip:
        _kube_proxy(st, cluster, now)


def _service_ip(cluster, n):
    try:
        net = ipaddress.ip_network((cluster.get("serviceSubnet") or "10.96.0.0/12").split(",")[0], strict=False)
        return str(net.network_address + n)
    except ValueError:
        return "10.96.0.%d" % n


def _coredns(st, now):
    put_object(st, {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                             "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                                          "spec": {"containers": [{"name": "coredns",
                                                                   "image": "registry.k8s.io/coredns/coredns:v1.12.1"}],
                                                   "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                                                   {"key": "node-role.kubernetes.io/control-plane",
                                                                    "effect": "NoSchedule"}]}}}}, now)


def _kube_proxy(st, cluster, now):
    put_object(st, {"apiVersion": "apps/v1", "kind": "DaemonSet",
                    "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
                    "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                             "template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}},
                                          "spec": {"hostNetwork": True,
                                                   "containers": [{"name": "kube-proxy",
                                                                   "image": "registry.k8s.io/kube-proxy:%s"
                                                                   % cluster["kubernetesVersion"]}],
                                                   "tolerations": [{"operator": "Exists"}]}}}}, now)


SERVER_FIELDS = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields")
IDENTITY = {'["apiVersion"]', '["kind"]', '["metadata", "name"]', '["metadata", "namespace"]'}
# associative lists: their items are identified by a key field (server-side apply merges them item by item)
LIST_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
             "volumes": "name", "volumeMounts": "mountPath", "imagePullSecrets": "name", "hostAliases": "ip",
             "conditions": "type", "readinessGates": "conditionType", "resourceClaims": "name"}


def _list_key(field, items):
    if field == "ports":
        key = "containerPort" if any(isinstance(x, dict) and "containerPort" in x for x in items) else "port"
    else:
        key = LIST_KEYS.get(field)
    if key and all(isinstance(x, dict) and key in x for x in items):
        return key
    return None


def _item(key, value):
    return "k:" + json.dumps({key: value}, separators=(",", ":"))


def leaves(obj):
    """Field paths -> values of what a client set: a path is a JSON list of map keys and `k:{"name":"web"}`
    items of associative lists (containers, env, ports...); other lists are atomic; status is not a user's."""
    out = {}

    def walk(v, path):
        if isinstance(v, dict) and v:
            for k, x in v.items():
                if not path and k == "status":
                    continue
                if path == ("metadata",) and k in SERVER_FIELDS:
                    continue
                walk(x, path + (k,))
            return
        if isinstance(v, list) and v and path:
            key = _list_key(path[-1], v)
            if key:
                for item in v:
                    walk(item, path + (_item(key, item[key]),))
                return
        p = json.dumps(list(path))
        if p not in IDENTITY:
            out[p] = v
    walk(obj or {}, ())
    return out


def _step(cur, elem, create=False):
    """The child of `cur` at one path element (a map key or a `k:` list item); None if absent."""
    if elem.startswith("k:") and isinstance(cur, list):
        (key, value), = json.loads(elem[2:]).items()
        for x in cur:
            if isinstance(x, dict) and x.get(key) == value:
                return x
        if create:
            x = {key: value}
            cur.append(x)
            return x
        return None
    if isinstance(cur, dict):
        return cur.get(elem)
    return None


def path_text(p):
    """`.spec.template.spec.containers[name="web"].image`, as conflict messages show a path."""
    out = ""
    for e in json.loads(p):
        if e.startswith("k:"):
            out += "[" + ",".join("%s=%s" % (k, json.dumps(v)) for k, v in json.loads(e[2:]).items()) + "]"
        else:
            out += "." + e
    return out


def _del_path(obj, path):
    elems = json.loads(path)
    chain = [obj]
    cur = obj
    for e in elems[:-1]:
        cur = _step(cur, e)
        if cur is None:
            return
        chain.append(cur)
    last = elems[-1]
    if last.startswith("k:") and isinstance(cur, list):
        item = _step(cur, last)
        if item is not None:
            cur.remove(item)
    elif isinstance(cur, dict):
        cur.pop(last, None)
    else:
        return
    # drop what became empty on the way up
    for i in range(len(chain) - 1, 0, -1):
        node, parent, e = chain[i], chain[i - 1], elems[i - 1]
        if node in ({}, []):
            if isinstance(parent, dict):
                parent.pop(e, None)
            elif isinstance(parent, list) and node in parent:
                parent.remove(node)
        else:
            break


def _set_leaf(dst, src, path):
    """Copy the value at `path` of src into dst, creating parents (maps, associative list items) as needed."""
    elems = json.loads(path)
    s, d = src, dst
    for i, e in enumerate(elems):
        s = _step(s, e)
        if s is None:
            return
        if i == len(elems) - 1:
            if e.startswith("k:") and isinstance(d, list):
                item = _step(d, e, create=True)
                item.clear()
                item.update(copy.deepcopy(s))
            elif isinstance(d, dict):
                d[e] = copy.deepcopy(s)
            return
        nxt = elems[i + 1]
        if e.startswith("k:"):
            child = _step(d, e, create=True) if isinstance(d, list) else None
        else:
            want = list if nxt.startswith("k:") else dict
            if not isinstance(d.get(e), want):
                d[e] = want()
            child = d[e]
        if child is None:
            return
        d = child


def fields_v1(paths, obj=None):
    """A FieldsV1 tree of leaf paths (managedFields)."""
    tree = {}
    for p in paths:
        node = tree
        for e in json.loads(p):
            node = node.setdefault(e if e.startswith("k:") else "f:" + e, {})
            if e.startswith("k:"):
                node.setdefault(".", {})
    return tree


def paths_of_fields_v1(tree, prefix=()):
    """The leaf paths of a FieldsV1 tree (a client's managedFields)."""
    out = []
    for k, v in (tree or {}).items():
        if k == ".":
            continue
        if k.startswith("f:"):
            e = k[2:]
        elif k.startswith("k:"):
            e = k
        else:
            out.append(json.dumps(list(prefix)))    # v: set members: the list counts as one field
            continue
        kids = {kk: vv for kk, vv in (v or {}).items() if kk != "."}
        if kids:
            out += paths_of_fields_v1(kids, prefix + (e,))
        else:
            out.append(json.dumps(list(prefix + (e,))))
    return sorted(set(out))


CONFLICT_HELP = ("Please review the fields above--they currently have other managers. Here are\nthe ways you can "
                 "resolve this warning:\n* If you intend to manage all of these fields, please re-run the apply\n"
                 "  command with the `--force-conflicts` flag.\n* If you do not intend to manage all of the fields, "
                 "please edit your\n  manifest to remove references to the fields that should keep their\n  current "
                 "managers.\n* You may co-own fields by updating your manifest to match the existing\n  value; in "
                 "this case, you'll become the manager if the other manager(s)\n  stop managing the field (remove it "
                 "from their configuration).\nSee https://kubernetes.io/docs/reference/using-api/server-side-apply/"
                 "#conflicts")


def put_object(st, obj, now, manager="kubectl", ssa=False, force=False, post=None):
    """Create or update an object. `ssa`: server-side apply by `manager` — it owns the fields it sets, drops
    the fields it owned and no longer sets, and may not change fields other managers own unless `force`.
    Otherwise (client-side apply, helm, kubeadm) the object is replaced and the manager owns all of it.
    `post(obj)`: the server's defaulting, run on the merged object before it is compared and stored."""
    md = obj.setdefault("metadata", {})
    g = _group(obj["apiVersion"])
    nsd = True
    for av, k, n in known_kinds(st):
        if k == obj["kind"] and _group(av) == g:
            nsd = n
            break
    if nsd:
        md.setdefault("namespace", "default")
    else:
        md.pop("namespace", None)
    key = obj_key(g, obj["kind"], md.get("namespace"), md["name"])
    old = st["objects"].get(key)
    owners = copy.deepcopy(st.setdefault("fieldOwners", {}).get(key, {}))    # committed once post() passed
    new_leaves = leaves(obj)
    if old is not None and ssa:
        old_leaves = leaves(old)
        conflicts = []
        for p, v in sorted(new_leaves.items()):
            if p in old_leaves and old_leaves[p] != v:
                for m, paths in sorted(owners.items()):
                    if m != manager and p in paths:
                        conflicts.append('conflict with "%s" using %s: %s' % (m, old["apiVersion"], path_text(p)))
        if conflicts and not force:
            e = ApiError("Conflict", "error: Apply failed with %d conflict%s: %s\n%s" % (
                len(conflicts), "" if len(conflicts) == 1 else "s", "\n".join(conflicts), CONFLICT_HELP), 409)
            e.conflicts = [(m, old["apiVersion"], p) for p in sorted(new_leaves) for m in sorted(owners)
                           if m != manager and p in owners[m] and p in old_leaves and old_leaves[p] != new_leaves[p]]
            raise e
        merged = copy.deepcopy(old)
        for p in owners.get(manager, []):
            if p not in new_leaves and not any(p in ps for m, ps in owners.items() if m != manager):
                _del_path(merged, p)
        for p in new_leaves:
            _set_leaf(merged, obj, p)
        merged["metadata"].update({k: md[k] for k in ("name", "namespace") if k in md})
        obj, md = merged, merged["metadata"]
        for m in list(owners):
            if m != manager:
                owners[m] = [p for p in owners[m] if p not in new_leaves or old_leaves.get(p) == new_leaves[p]]
                if not owners[m]:
                    del owners[m]
        owners[manager] = sorted(new_leaves)
    else:
        for m in list(owners):
            if m != manager:
                del owners[m]
        owners[manager] = sorted(new_leaves)
    ops = dict(st.setdefault("fieldOps", {}).get(key, {}))
    for m in list(ops):
        if m not in owners:
            del ops[m]
    ops[manager] = "Apply" if ssa else "Update"
    if post is None:
        from . import k8s_schema   # what every writer gets from the real server: its defaults
        k8s_schema.default(st, obj["kind"], obj, old)
    else:
        post(obj)                  # defaulting and validation of the merged object; may raise
    md = obj["metadata"]
    st["fieldOwners"][key] = owners
    st["fieldOps"][key] = ops
    st["resourceVersion"] += 1
    if old is not None:
        omd = old["metadata"]
        md["uid"] = omd["uid"]
        md["creationTimestamp"] = omd["creationTimestamp"]
        if _strip(old) == _strip(obj):
            md["managedFields"] = omd.get("managedFields", [])
            st["objects"][key] = obj
            return key, "unchanged"
        spec_changed = {k: v for k, v in old.items() if k not in ("metadata", "status")} != \
            {k: v for k, v in obj.items() if k not in ("metadata", "status")}
        md["generation"] = omd.get("generation", 1) + (1 if spec_changed else 0)
    else:
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = ts(now)
        md["generation"] = 1
    md["resourceVersion"] = str(st["resourceVersion"])
    stamps = {m.get("manager"): m for m in (old or {}).get("metadata", {}).get("managedFields") or []}
    md["managedFields"] = [{"manager": m, "operation": ops.get(m, "Update"),
                            "time": ts(now) if m == manager else stamps.get(m, {}).get("time", ts(now))}
                           for m in sorted(owners)]
    st["objects"][key] = obj
    return key, "configured" if old is not None else "created"


_MISSING = object()


def update_object(st, key, obj, manager, now):
    """An update (PUT, or a non-apply patch) by `manager`: it becomes the owner of the fields it changed or
    added; fields it removed lose their owners; other fields keep theirs."""
    old = st["objects"][key]
    owners = st.setdefault("fieldOwners", {}).setdefault(key, {})
    ops = st.setdefault("fieldOps", {}).setdefault(key, {})
    ol, nl = leaves(old), leaves(obj)
    changed = {p for p, v in nl.items() if ol.get(p, _MISSING) != v}
    removed = {p for p in ol if p not in nl}
    for m in list(owners):
        owners[m] = [p for p in owners[m] if p not in changed and p not in removed]
        if not owners[m]:
            del owners[m]
            ops.pop(m, None)
    if changed:
        owners[manager] = sorted(set(owners.get(manager, [])) | changed)
        ops[manager] = "Update"
    md, omd = obj["metadata"], old["metadata"]
    for k in ("uid", "creationTimestamp"):
        md[k] = omd.get(k)
    if _strip(old) == _strip(obj):
        md["managedFields"] = omd.get("managedFields", [])
        md["generation"] = omd.get("generation", 1)
        st["objects"][key] = obj
        return "unchanged"
    spec_changed = {k: v for k, v in old.items() if k not in ("metadata", "status")} != \
        {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    md["generation"] = omd.get("generation", 1) + (1 if spec_changed else 0)
    st["resourceVersion"] += 1
    md["resourceVersion"] = str(st["resourceVersion"])
    stamps = {m.get("manager"): m for m in omd.get("managedFields") or []}
    md["managedFields"] = [{"manager": m, "operation": ops.get(m, "Update"),
                            "time": ts(now) if m == manager else stamps.get(m, {}).get("time", ts(now))}
                           for m in sorted(owners)]
    st["objects"][key] = obj
    return "configured"


def _strip(obj):
    o = copy.deepcopy(obj)
    md = o.get("metadata", {})
    for k in ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields"):
        md.pop(k, None)
    return o


# ------------------------------------------------------------------ tokens and certs
def add_token(st, token, ttl_seconds, now, description="", usages=None, groups=None):
    m = TOKEN_RE.match(token or "")
    if not m:
        raise ApiError("Invalid", 'the bootstrap token "%s" was not of the form "[a-z0-9]{6}.[a-z0-9]{16}"'
                       % token)
    tid, secret = m.groups()
    st["tokens"][tid] = {"secret": secret, "expires": (now + ttl_seconds) if ttl_seconds else None,
                         "description": description,
                         "usages": usages or ["authentication", "signing"],
                         "groups": groups or ["system:bootstrappers:kubeadm:default-node-token"]}
    return tid


def valid_tokens(st, now):
    return {tid: t for tid, t in st["tokens"].items() if t["expires"] is None or t["expires"] > now}


def jws(secret, payload):
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def cluster_info(st, now):
    """The kube-public/cluster-info ConfigMap as discovery sees it: CA + one signature per valid token
    (the bootstrap signer drops signatures of expired tokens, the token cleaner deletes the tokens)."""
    c = st["cluster"]
    payload = c["caPem"] + "|" + c["endpoint"]
    return {"caPem": c["caPem"], "endpoint": c["endpoint"],
            "jws": {tid: jws(t["secret"], payload) for tid, t in valid_tokens(st, now).items()
                    if "signing" in t["usages"]}}


def check_token(st, token, now):
    m = TOKEN_RE.match(token or "")
    if not m:
        raise ApiError("Unauthorized", "Unauthorized", 401)
    t = valid_tokens(st, now).get(m.group(1))
    if t is None or not hmac.compare_digest(t["secret"], m.group(2)):
        raise ApiError("Unauthorized", "Unauthorized", 401)
    return t


def cert_key_hash(key):
    return hashlib.sha256(("kubeadm-certs:" + key).encode()).hexdigest()


# ------------------------------------------------------------------ nodes
def cni_state(st):
    """(name, ok, message): the pod network the store describes, and whether it fits the cluster."""
    c = st["cluster"] or {}
    subnet = c.get("podSubnet")
    found = []
    objs = st["objects"].values()
    for o in objs:
        if o.get("kind") == "ConfigMap" and o["metadata"].get("name") == "kube-flannel-cfg":
            ds = any(x.get("kind") == "DaemonSet" and "flannel" in x["metadata"]["name"] and
                     x["metadata"].get("namespace") == o["metadata"].get("namespace") for x in objs)
            try:
                net = json.loads((o.get("data") or {}).get("net-conf.json", "")).get("Network")
            except (ValueError, AttributeError):
                net = None
            found.append(("flannel", net, ds, "ConfigMap %s/kube-flannel-cfg" % o["metadata"].get("namespace")))
    for rel in st["releases"].values():
        if rel["chartName"] == "flannel" and rel["status"] == "deployed":
            found.append(("flannel", (rel["values"] or {}).get("podCidr", "10.244.0.0/16"), True,
                          "helm release %s/%s value podCidr" % (rel["namespace"], rel["name"])))
    operator = any(r["chartName"] == "tigera-operator" and r["status"] == "deployed"
                   for r in st["releases"].values()) or any(
        o.get("kind") == "Deployment" and o["metadata"]["name"] == "tigera-operator" for o in objs)
    for o in objs:
        if o.get("kind") == "Installation" and _group(o.get("apiVersion", "")) == "operator.tigera.io":
            pools = (((o.get("spec") or {}).get("calicoNetwork") or {}).get("ipPools") or [])
            cidr = pools[0].get("cidr") if pools else "192.168.0.0/16"
            found.append(("calico", cidr, operator, "Installation %s spec.calicoNetwork.ipPools[0].cidr"
                          % o["metadata"]["name"]))
    for rel in st["releases"].values():
        if rel["chartName"] == "tigera-operator" and rel["status"] == "deployed":
            inst = (rel["values"] or {}).get("installation", {"enabled": True})
            if inst.get("enabled", True) is not False:
                pools = ((inst.get("calicoNetwork") or {}).get("ipPools") or [])
                cidr = pools[0].get("cidr") if pools else "192.168.0.0/16"
                found.append(("calico", cidr, True, "helm release %s/%s value installation.calicoNetwork."
                              "ipPools[0].cidr" % (rel["namespace"], rel["name"])))
    if not found:
        return None, False, "cni plugin not initialized (no pod network add-on is installed)"
    msgs = []
    for name, cidr, running, where in found:
        if not running:
            msgs.append("%s: %s is present but its %s is not deployed" % (
                name, where, "DaemonSet" if name == "flannel" else "tigera-operator"))
            continue
        if not subnet:
            if name == "flannel":
                msgs.append("flannel: the cluster has no pod subnet (kubeadm init without --pod-network-cidr /"
                            " networking.podSubnet): node pod CIDRs are not assigned")
                continue
            return name, True, "ok"
        try:
            want = ipaddress.ip_network(subnet, strict=False)
            have = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            msgs.append("%s: %s has an invalid CIDR %r" % (name, where, cidr))
            continue
        if name == "flannel" and have != want:
            msgs.append("flannel: network %s (%s) does not match the cluster pod subnet %s"
                        % (have, where, want))
            continue
        if name == "calico" and (have.version != want.version or not have.subnet_of(want)):
            msgs.append("calico: IP pool %s (%s) is not within the cluster pod subnet %s" % (have, where, want))
            continue
        return name, True, "ok"
    return found[0][0], False, "; ".join(msgs)


CONFLISTS = {
    "flannel": ("10-flannel.conflist", {"name": "cbr0", "cniVersion": "0.3.1", "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}),
    "calico": ("10-calico.conflist", {"name": "k8s-pod-network", "cniVersion": "0.3.1", "plugins": [
        {"type": "calico", "datastore_type": "kubernetes", "ipam": {"type": "calico-ipam"}},
        {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}}]}),
}


def node_ready(st, n, now, real=None):
    """(status, reason, message) of a node's Ready condition. Liveness is judged on real time (the lab clock
    jumps for expiry tests; a kubelet that posts every few seconds must not look dead after a jump)."""
    real = time.time() if real is None else real
    if real - n.get("heartbeatReal", n.get("heartbeat", 0)) > HEARTBEAT_GRACE:
        return "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
    ks = n.get("kubelet") or {}
    if not ks.get("runtimeOk"):
        return "False", "KubeletNotReady", "container runtime is down: %s" % ks.get("runtimeReason", "")
    if ks.get("swap") and ks.get("failSwapOn", True):
        return "False", "KubeletNotReady", "running with swap on is not supported, please disable swap"
    if not ks.get("cniConfig"):
        _, _, msg = cni_state(st)
        return "False", "KubeletNotReady", ("container runtime network not ready: NetworkReady=false "
                                            "reason:NetworkPluginNotReady message:Network plugin returns "
                                            "error: " + msg)
    return "True", "KubeletReady", "kubelet is posting ready status"


def node_view(st, name, now):
    n = st["nodes"][name]
    status, reason, msg = node_ready(st, n, now)
    ks = n.get("kubelet") or {}
    taints = list(n.get("taints", []))
    if status != "True":
        taints.append({"key": "node.kubernetes.io/not-ready" if status == "False" else
                       "node.kubernetes.io/unreachable", "effect": "NoSchedule"})
    if n.get("unschedulable"):
        taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
    hb = ts(n.get("heartbeat", now))
    spec = {"podCIDR": n.get("podCIDR")} if n.get("podCIDR") else {}
    if n.get("podCIDR"):
        spec["podCIDRs"] = [n["podCIDR"]]
    if taints:
        spec["taints"] = taints
    if n.get("unschedulable"):
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": n["uid"], "creationTimestamp": ts(n["createdAt"]),
                     "labels": dict(n.get("labels", {})), "annotations": dict(n.get("annotations", {})),
                     "resourceVersion": str(st["resourceVersion"])},
        "spec": spec,
        "status": {
            "addresses": [{"type": "InternalIP", "address": n.get("address", "")},
                          {"type": "Hostname", "address": name}],
            "capacity": {"cpu": str(ks.get("cpus", 2)), "memory": "%dKi" % (ks.get("memoryMB", 2048) * 1024),
                         "pods": "110", "ephemeral-storage": "20134592Ki"},
            "allocatable": {"cpu": str(ks.get("cpus", 2)), "memory": "%dKi" % (ks.get("memoryMB", 2048) * 1024 - 102400),
                            "pods": "110"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False" if status != "Unknown" else "Unknown",
                 "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": hb},
                {"type": "DiskPressure", "status": "False" if status != "Unknown" else "Unknown",
                 "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": hb},
                {"type": "PIDPressure", "status": "False" if status != "Unknown" else "Unknown",
                 "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": hb},
                {"type": "Ready", "status": status, "reason": reason, "message": msg, "lastHeartbeatTime": hb,
                 "lastTransitionTime": hb}],
            "nodeInfo": {"kubeletVersion": ks.get("kubeletVersion", ""), "kubeProxyVersion": "",
                         "containerRuntimeVersion": ks.get("runtimeVersion", ""),
                         "osImage": ks.get("osImage", ""), "kernelVersion": ks.get("kernelVersion", ""),
                         "operatingSystem": "linux", "architecture": "amd64",
                         "machineID": ks.get("machineID", ""), "systemUUID": ks.get("systemUUID", "")},
        },
    }


def _version_tuple(v):
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", v or "")
    return tuple(int(x) for x in m.groups()) if m else None


# calico-node's init containers as the tigera operator of v3.28 makes them (the FlexVolume driver, the CNI plugin)
CALICO_NODE_INIT = [("flexvol-driver", "docker.io/calico/pod2daemon-flexvol:v3.28.2"),
                    ("install-cni", "docker.io/calico/cni:v3.28.2")]
CALICO_NODE_SPEC = {"hostNetwork": True, "tolerations": [{"operator": "Exists"}],
                    "initContainers": [{"name": n, "image": i} for n, i in CALICO_NODE_INIT],
                    "containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.28.2"}]}


def cni_images(st, name_):
    """The images of the pod network's DaemonSet pods (init containers first), which a node's kubelet pulls
    before that pod can write the node's CNI configuration."""
    specs = [((o.get("spec") or {}).get("template") or {}).get("spec") or {} for o in st["objects"].values()
             if o.get("kind") == "DaemonSet" and any(w in o["metadata"]["name"] for w in ("flannel", "calico-node"))]
    if name_ == "calico" and not any("calico-node" in o["metadata"]["name"] for o in st["objects"].values()
                                     if o.get("kind") == "DaemonSet"):
        specs.append(CALICO_NODE_SPEC)          # the operator's own DaemonSet (an Installation from manifests)
    out = []
    for spec in specs:
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            if c.get("image") and c["image"] not in out:
                out.append(c["image"])
    return out


def heartbeat(st, name, report, now):
    """A kubelet's status update; registers the node the first time (like the kubelet does)."""
    n = st["nodes"].get(name)
    kv, cv = _version_tuple(report.get("kubeletVersion")), _version_tuple((st.get("cluster") or {}).get("kubernetesVersion"))
    if kv and cv and kv > cv:
        # the version skew policy: a kubelet is never newer than kube-apiserver (upgrade the control plane first)
        raise ApiError("Forbidden", 'nodes "%s" is forbidden: kubelet version v%d.%d.%d is newer than the API server '
                       'version v%d.%d.%d: upgrade the control plane first (kubeadm upgrade apply)'
                       % ((name,) + kv + cv), 403)
    if n is None and not report.get("register", True):
        # a status update of a Node that is gone: the kubelet registers it again (it asks with register)
        raise ApiError("NotFound", 'nodes "%s" not found' % name, 404)
    if n is None:
        n = {"uid": str(uuid.uuid4()), "createdAt": now, "taints": list(report.get("registerTaints") or []),
             "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"},
             "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                             "volumes.kubernetes.io/controller-managed-attach-detach": "true"}}
        n["labels"].update(report.get("registerLabels") or {})
        subnet = (st["cluster"] or {}).get("podSubnet")
        if subnet:
            try:
                net = ipaddress.ip_network(subnet, strict=False)
                used = {x.get("podCIDR") for x in st["nodes"].values()}
                for sub in net.subnets(new_prefix=max(net.prefixlen, 24)):
                    if str(sub) not in used:
                        n["podCIDR"] = str(sub)
                        break
            except ValueError:
                pass
        st["nodes"][name] = n
        st["resourceVersion"] += 1
    n["address"] = report.get("address", n.get("address"))
    n["heartbeat"] = now
    n["heartbeatReal"] = time.time()
    rep = {k: v for k, v in report.items() if k not in ("register", "registerLabels", "registerTaints")}
    if n.get("kubelet") != rep:
        st["resourceVersion"] += 1          # a status change is an update (persisted); a plain heartbeat is not
    n["kubelet"] = rep
    name_, ok, msg = cni_state(st)
    out = {"registered": True, "uid": n["uid"]}
    if ok:
        fname, conf = CONFLISTS[name_]
        out["cni"] = {"file": fname, "content": json.dumps(conf, indent=2) + "\n", "images": cni_images(st, name_)}
    return out


# ------------------------------------------------------------------ pods (synthesised from owners)
POD_SLOTS = {}      # "ns/name" -> the controller slot a derived pod fills (deleting it bumps the slot's podGen)


def tolerates(tolerations, taint):
    for t in tolerations or []:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
            continue
        if t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def schedulable(node_obj, tolerations):
    for taint in (node_obj["spec"].get("taints") or []):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return False
    return True


def _selector_ok(node_obj, sel):
    labels = node_obj["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in (sel or {}).items())


DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def claim_problem(st, cspec):
    """Why a claim of `cspec` stays Pending (the PV controller's event), or None when it binds. No class named
    means the default StorageClass, "" means none; the lab provisions a volume for any existing class except
    `kubernetes.io/no-provisioner`, which binds only to a PersistentVolume of that class. A kubeadm cluster has
    no StorageClass of its own."""
    classes = {o["metadata"]["name"]: o for o in st["objects"].values()
               if o.get("kind") == "StorageClass" and not o["metadata"].get("deletionTimestamp")}
    name = cspec.get("storageClassName")
    if name is None:
        defaults = sorted(n for n, o in classes.items()
                          if (o["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true")
        name = defaults[0] if defaults else ""
    if name == "":
        return "no persistent volumes available for this claim and no storage class is set"
    cls = classes.get(name)
    if cls is None:
        return 'storageclass.storage.k8s.io "%s" not found' % name
    if cls.get("provisioner") == "kubernetes.io/no-provisioner" and not any(
            o.get("kind") == "PersistentVolume" and (o.get("spec") or {}).get("storageClassName") == name
            for o in st["objects"].values()):
        return "no persistent volumes available for this claim"
    return None


def statefulset_claims(st, now):
    """The claims the StatefulSet controller makes: one per volumeClaimTemplate and replica, named
    TEMPLATE-POD, Bound or Pending as `claim_problem` says."""
    out = []
    for o in sorted(st["objects"].values(), key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
        if o.get("kind") != "StatefulSet":
            continue
        md, spec = o["metadata"], o.get("spec") or {}
        ns = md.get("namespace", "default")
        for i in range(int(spec.get("replicas", 1) or 0)):
            for t in spec.get("volumeClaimTemplates") or []:
                cname = "%s-%s-%d" % ((t.get("metadata") or {}).get("name", ""), md["name"], i)
                cspec = copy.deepcopy(t.get("spec") or {})
                problem = claim_problem(st, cspec)
                if problem is None and cspec.get("storageClassName") is None:
                    cspec["storageClassName"] = sorted(
                        c["metadata"]["name"] for c in st["objects"].values() if c.get("kind") == "StorageClass"
                        and (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true")[0]
                status = {"phase": "Pending"} if problem else {
                    "phase": "Bound", "accessModes": cspec.get("accessModes") or [],
                    "capacity": {"storage": ((cspec.get("resources") or {}).get("requests") or {}).get("storage", "")}}
                if not problem:
                    cspec["volumeName"] = "pvc-" + str(uuid.uuid5(uuid.NAMESPACE_URL, "pvc/%s/%s" % (ns, cname)))
                out.append(({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
                    "name": cname, "namespace": ns, "labels": dict((t.get("metadata") or {}).get("labels") or {}),
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "pvc/%s/%s" % (ns, cname))),
                    "creationTimestamp": md.get("creationTimestamp") or ts(now)},
                    "spec": cspec, "status": status}, problem))
    return out


def list_pods(st, now):
    nodes = {n: node_view(st, n, now) for n in sorted(st["nodes"])}
    alive = {n for n, o in nodes.items()
             if o["status"]["conditions"][-1]["status"] != "Unknown"
             and (st["nodes"][n].get("kubelet") or {}).get("runtimeOk")}
    ready = {n for n, o in nodes.items() if o["status"]["conditions"][-1]["status"] == "True"}
    cni_name, cni_ok, cni_msg = cni_state(st)
    pods = []
    binds = st.setdefault("bindings", {})
    generated = set()

    gens = st.get("podGen") or {}
    metas = st.get("podMeta") or {}
    born = st.setdefault("podBorn", {})         # when the lab first made each pod (its creationTimestamp)

    def gen(slot):
        return gens.get(slot, 0)

    unbound = {}                                # "ns/pod" of a StatefulSet -> it has an unbound claim
    for c, problem in statefulset_claims(st, now):
        if problem:
            unbound["%s/%s" % (c["metadata"]["namespace"], c["metadata"]["name"])] = True

    def pod(ns, name, node, owner_kind, owner_name, tmpl_spec, labels, phase, reason=None, static=False, slot=None,
            unschedulable=None):
        generated.add(ns + "/" + name)
        if slot:
            POD_SLOTS[ns + "/" + name] = slot
        spec = copy.deepcopy(tmpl_spec or {})
        if node:
            spec["nodeName"] = node
        g = gen(slot) if slot else 0
        p = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {}),
                          "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, ns + "/" + name + ("/%d" % g if g else ""))),
                          "creationTimestamp": ts(born.setdefault(ns + "/" + name, now)),
                          "ownerReferences": [{"apiVersion": "apps/v1" if owner_kind != "Node" else "v1",
                                               "kind": owner_kind, "name": owner_name, "controller": True}]},
             "spec": spec,
             "status": {"phase": phase, "hostIP": (st["nodes"].get(node) or {}).get("address", "") if node else "",
                        "conditions": [{"type": "Ready", "status": "True" if phase == "Running" and not reason
                                        else "False"}]}}
        cs = []
        for c in spec.get("containers") or [{"name": "main"}]:
            s = {"name": c.get("name", "main"), "image": c.get("image", ""), "ready": phase == "Running" and not reason,
                 "restartCount": 0}
            if phase == "Running" and not reason:
                s["state"] = {"running": {"startedAt": ts(now)}}
            elif reason:
                s["state"] = {"waiting": {"reason": reason}}
                s["restartCount"] = 5
            else:
                s["state"] = {"waiting": {"reason": "ContainerCreating" if node else "Pending"}}
            cs.append(s)
        p["status"]["containerStatuses"] = cs
        if unschedulable:
            p["status"]["conditions"].append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                              "message": unschedulable})
        if static:
            p["metadata"]["annotations"] = {"kubernetes.io/config.source": "file"}
        meta = metas.get(ns + "/" + name)
        if meta:
            p["metadata"]["labels"] = dict(meta.get("labels") or {})
            if meta.get("annotations") or p["metadata"].get("annotations"):
                p["metadata"]["annotations"] = dict(meta.get("annotations") or {})
        pods.append(p)

    for n, o in nodes.items():
        if "node-role.kubernetes.io/control-plane" in o["metadata"]["labels"] and \
                (st["nodes"][n].get("kubelet") or {}).get("staticPods"):
            for comp in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
                pod("kube-system", "%s-%s" % (comp, n), n, "Node", n, {"hostNetwork": True, "containers": [
                    {"name": comp, "image": "registry.k8s.io/%s" % comp}]}, {"component": comp, "tier": "control-plane"},
                    "Running" if n in alive else "Unknown", static=True)
    for key, obj in sorted(st["objects"].items()):
        kind = obj.get("kind")
        md = obj["metadata"]
        ns = md.get("namespace", "default")
        spec = obj.get("spec") or {}
        tmpl = (spec.get("template") or {})
        tspec = tmpl.get("spec") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        if kind == "DaemonSet":
            cni_pod = any(w in md["name"] for w in ("flannel", "calico-node"))
            for n, o in nodes.items():
                if not _selector_ok(o, tspec.get("nodeSelector")):
                    continue
                taints = [t for t in (o["spec"].get("taints") or []) if not t["key"].startswith("node.kubernetes.io/")]
                if any(t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tspec.get("tolerations"), t)
                       for t in taints):
                    continue
                slot = "%s|%s" % (key, n)
                name = "%s-%s" % (md["name"], short_hash(key, n, *([str(gen(slot))] if gen(slot) else [])))
                if n not in alive:
                    pod(ns, name, n, "DaemonSet", md["name"], tspec, labels, "Pending", slot=slot)
                elif cni_pod and not cni_ok:
                    pod(ns, name, n, "DaemonSet", md["name"], tspec, labels, "Running", reason="CrashLoopBackOff",
                        slot=slot)
                elif not tspec.get("hostNetwork") and not cni_pod and n not in ready:
                    pod(ns, name, n, "DaemonSet", md["name"], tspec, labels, "Pending", slot=slot)
                else:
                    pod(ns, name, n, "DaemonSet", md["name"], tspec, labels, "Running", slot=slot)
        elif kind in ("Deployment", "StatefulSet"):
            replicas = spec.get("replicas", 1)
            # the scheduler: live nodes whose taints (including not-ready/unschedulable) the pod tolerates
            cands = [n for n in nodes if n in alive and _selector_ok(nodes[n], tspec.get("nodeSelector"))
                     and schedulable(nodes[n], tspec.get("tolerations"))]
            rs = short_hash(key, json.dumps(tmpl, sort_keys=True), n=10)
            for i in range(int(replicas or 0)):
                slot = "%s|%d" % (key, i)
                name = ("%s-%d" % (md["name"], i)) if kind == "StatefulSet" else \
                    "%s-%s-%s" % (md["name"], rs, short_hash(key, str(i), *([str(gen(slot))] if gen(slot) else [])))
                owner = (md["name"], "StatefulSet") if kind == "StatefulSet" else ("%s-%s" % (md["name"], rs), "ReplicaSet")
                bound = binds.get(ns + "/" + name)
                claims = ["%s-%s" % ((t.get("metadata") or {}).get("name", ""), name)
                          for t in (spec.get("volumeClaimTemplates") or [])] if kind == "StatefulSet" else []
                if any(ns + "/" + c in unbound for c in claims):
                    # the scheduler's VolumeBinding plugin: no node until every claim is bound
                    binds.pop(ns + "/" + name, None)
                    n_nodes = len(st["nodes"])
                    pod(ns, name, None, owner[1], owner[0], tspec, labels, "Pending", slot=slot,
                        unschedulable="0/%d nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                        "preemption: 0/%d nodes are available: %d Preemption is not helpful for scheduling."
                        % (n_nodes, n_nodes, n_nodes))
                    continue
                if bound in alive and _selector_ok(nodes[bound], tspec.get("nodeSelector")):
                    node = bound           # a running pod stays where it is (cordon only stops new ones)
                elif cands:
                    load = {n: 0 for n in cands}
                    for b in binds.values():
                        if b in load:
                            load[b] += 1
                    node = min(cands, key=lambda n: (load[n], n))
                    binds[ns + "/" + name] = node
                else:
                    node = None
                    binds.pop(ns + "/" + name, None)
                if node:
                    # without a pod network only host-network pods get a sandbox
                    pod(ns, name, node, owner[1], owner[0], tspec, labels,
                        "Running" if tspec.get("hostNetwork") or node in ready else "Pending", slot=slot)
                else:
                    pod(ns, name, None, owner[1], owner[0], tspec, labels, "Pending", slot=slot)
        elif kind == "Pod":
            pspec = copy.deepcopy(spec)
            node = pspec.get("nodeName")
            if not node:
                cands = [n for n in nodes if n in ready and schedulable(nodes[n], pspec.get("tolerations"))]
                node = cands[0] if cands else None
            p_labels = md.get("labels") or {}
            pod(ns, md["name"], node, "Pod", md["name"], pspec, p_labels, "Running" if node in ready else "Pending")
            pods[-1]["metadata"].pop("ownerReferences")
            if md.get("annotations"):
                pods[-1]["metadata"]["annotations"] = dict(md["annotations"])
            pods[-1]["metadata"]["uid"] = md.get("uid", pods[-1]["metadata"]["uid"])
            pods[-1]["metadata"]["creationTimestamp"] = md.get("creationTimestamp")
    # the tigera operator runs calico-node on every node of an Installation applied from manifests
    if cni_name == "calico" and not any(o.get("kind") == "DaemonSet" and o["metadata"]["name"] == "calico-node"
                                        for o in st["objects"].values()):
        tspec = CALICO_NODE_SPEC
        for n in nodes:
            name = "calico-node-%s" % short_hash("calico-node", n)
            if n not in alive:
                pod("calico-system", name, n, "DaemonSet", "calico-node", tspec, {"k8s-app": "calico-node"}, "Pending")
            else:
                pod("calico-system", name, n, "DaemonSet", "calico-node", tspec, {"k8s-app": "calico-node"},
                    "Running", reason=None if cni_ok else "CrashLoopBackOff")
    for k in [k for k in binds if k not in generated]:
        del binds[k]
    for k in [k for k in born if k not in generated]:
        del born[k]
    return pods


# ------------------------------------------------------------------ queries
def get_objects(st, resource, ns, name, all_ns, now, selector=None):
    g, kind, nsd = resolve_resource(st, resource)
    if kind == "Node":
        items = [node_view(st, n, now) for n in sorted(st["nodes"])]
    elif kind == "Pod":
        items = list_pods(st, now)
    elif kind == "Secret":
        items = [copy.deepcopy(o) for k, o in sorted(st["objects"].items()) if o["kind"] == "Secret"]
        items += system_secrets(st, now)
    else:
        items = [copy.deepcopy(o) for k, o in sorted(st["objects"].items())
                 if o["kind"] == kind and _group(o["apiVersion"]) == g]
        if kind in ("Deployment", "DaemonSet", "StatefulSet") and items:
            workload_status(st, items, now)
    if nsd and not all_ns:
        items = [o for o in items if o["metadata"].get("namespace", "default") == (ns or "default")]
    if selector:
        reqs = parse_selector(selector) if isinstance(selector, str) else [("=", k, v) for k, v in selector.items()]
        items = [o for o in items if match_selector(o["metadata"].get("labels") or {}, reqs)]
    if name is not None:
        items = [o for o in items if o["metadata"]["name"] == name]
        if not items:
            raise ApiError("NotFound", 'Error from server (NotFound): %s "%s" not found'
                           % (plural(kind) if not g else plural(kind) + "." + g, name), 404)
    return {"kind": kind, "group": g, "namespaced": nsd, "items": items}


def workload_status(st, items, now):
    """Fill .status of deployments/daemonsets/statefulsets from the pods the lab runs for them."""
    pods = list_pods(st, now)
    for o in items:
        md = o["metadata"]
        ns, name = md.get("namespace", "default"), md["name"]
        mine = []
        for p in pods:
            if p["metadata"]["namespace"] != ns:
                continue
            ref = (p["metadata"].get("ownerReferences") or [{}])[0]
            owner = ref.get("name", "")
            if (o["kind"] == "Deployment" and ref.get("kind") == "ReplicaSet" and owner.rsplit("-", 1)[0] == name) \
                    or (o["kind"] != "Deployment" and ref.get("kind") == o["kind"] and owner == name):
                mine.append(p)
        ready = sum(1 for p in mine if p["status"]["conditions"][0]["status"] == "True")
        want = len(mine) if o["kind"] == "DaemonSet" else int((o.get("spec") or {}).get("replicas", 1) or 0)
        if o["kind"] == "DaemonSet":
            o["status"] = {"desiredNumberScheduled": want, "currentNumberScheduled": want, "numberReady": ready,
                           "numberAvailable": ready, "updatedNumberScheduled": want,
                           "observedGeneration": md.get("generation", 1)}
        else:
            avail = ready >= want
            o["status"] = {"replicas": len(mine), "readyReplicas": ready, "availableReplicas": ready,
                           "updatedReplicas": len(mine), "observedGeneration": md.get("generation", 1),
                           "conditions": [{"type": "Available", "status": "True" if avail else "False",
                                           "reason": "MinimumReplicasAvailable" if avail else
                                           "MinimumReplicasUnavailable"}]}


def _b64(text):
    import base64
    return base64.b64encode(str(text).encode()).decode()


def system_secrets(st, now):
    """Bootstrap tokens and the uploaded certificates, seen as the Secrets kubeadm keeps them in."""
    out = []
    created = ts((st["cluster"] or {}).get("createdAt", now))
    for tid, t in sorted(valid_tokens(st, now).items()):
        data = {"token-id": _b64(tid), "token-secret": _b64(t["secret"]),
                "usage-bootstrap-authentication": _b64("true" if "authentication" in t["usages"] else "false"),
                "usage-bootstrap-signing": _b64("true" if "signing" in t["usages"] else "false"),
                "auth-extra-groups": _b64(",".join(t["groups"]))}
        if t["expires"]:
            data["expiration"] = _b64(ts(t["expires"]))
        if t.get("description"):
            data["description"] = _b64(t["description"])
        out.append({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
                    "metadata": {"name": "bootstrap-token-" + tid, "namespace": "kube-system",
                                 "creationTimestamp": created, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, tid))},
                    "data": data})
    up = st.get("uploadedCerts")
    if up and up["expires"] > now:
        out.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": "kubeadm-certs", "namespace": "kube-system", "creationTimestamp":
                                 ts(up["expires"] - 7200), "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, up["keyHash"]))},
                    "data": {n.replace("/", "-"): _b64("(encrypted)") for n in sorted(up["certs"])}})
    return out


def parse_selector(text):
    """kubectl -l syntax: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b); comma separated."""
    reqs = []
    for part in re.findall(r"[^,(]+(?:\([^)]*\))?", text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)$", part)
        if m:
            reqs.append((m.group(2), m.group(1), [x.strip() for x in m.group(3).split(",")]))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(("!=", k.strip(), v.strip()))
        elif "=" in part:
            k, v = part.split("=", 1)
            reqs.append(("=", k.strip(), v.strip().lstrip("=")))
        elif part.startswith("!"):
            reqs.append(("!", part[1:].strip(), None))
        else:
            reqs.append(("exists", part, None))
    return reqs


def match_selector(labels, reqs):
    for op, k, v in reqs:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
        if op == "in" and labels.get(k) not in v:
            return False
        if op == "notin" and labels.get(k) in v:
            return False
    return True


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def apply_objects(st, docs, now, source, manager="kubectl", dry_run=False, create=False, namespace=None,
                  ssa=False, force=False):
    results = []
    for obj in docs:
        md = obj.setdefault("metadata", {})
        name = md.get("name", "")
        nsd = check_kind(st, obj["apiVersion"], obj["kind"], source, name, md.get("namespace", ""))
        if nsd and namespace:
            if md.get("namespace") and md["namespace"] != namespace:
                raise ApiError("BadRequest", 'error: the namespace from the provided object "%s" does not match the '
                               'namespace "%s". You must pass \'--namespace=%s\' to perform this operation.'
                               % (md["namespace"], namespace, md["namespace"]))
            md["namespace"] = namespace
        ns = md.get("namespace") or "default"
        if nsd and obj["kind"] != "Namespace" and obj_key("", "Namespace", "", ns) not in st["objects"]:
            raise ApiError("NotFound", 'Error from server (NotFound): error when creating "%s": namespaces "%s" '
                           'not found' % (source, ns), 404)
        kind_l = obj["kind"].lower()
        g = _group(obj["apiVersion"])
        label = kind_l + ("." + g if g else "")
        if obj["kind"] == "Node":
            if name not in st["nodes"]:
                raise ApiError("NotFound", 'Error from server (NotFound): nodes "%s" not found' % name, 404)
            n = st["nodes"][name]
            n["labels"].update(md.get("labels") or {})
            n["annotations"].update(md.get("annotations") or {})
            if "taints" in (obj.get("spec") or {}):
                n["taints"] = obj["spec"]["taints"] or []
            st["resourceVersion"] += 1
            results.append({"ref": "node/%s" % name, "status": "configured"})
            continue
        if create and obj_key(_group(obj["apiVersion"]), obj["kind"], ns if nsd else "", name) in st["objects"]:
            raise ApiError("AlreadyExists", 'Error from server (AlreadyExists): error when creating "%s": %s "%s" '
                           'already exists' % (source, plural(obj["kind"]) + ("." + g if g else ""), name), 409)
        if dry_run:
            results.append({"ref": "%s/%s" % (label, name), "status": "created (server dry run)"})
            continue
        old = st["objects"].get(obj_key(g, obj["kind"], ns if nsd else "", name))
        had = old is None or LAST_APPLIED in ((old.get("metadata") or {}).get("annotations") or {})
        _, status = put_object(st, copy.deepcopy(obj), now, manager, ssa=ssa, force=force)
        results.append({"ref": "%s/%s" % (label, name), "status": status, "lastApplied": had,
                        "resource": plural(obj["kind"]) + ("." + g if g else "")})
    return results


def delete_object(st, resource_or_kind, ns, name, ignore_not_found, api_version=None):
    if resource_or_kind == "Node" or (api_version is None and resolve_resource(st, resource_or_kind)[1] == "Node"):
        if name not in st["nodes"]:
            if ignore_not_found:
                return None
            raise ApiError("NotFound", 'Error from server (NotFound): nodes "%s" not found' % name, 404)
        del st["nodes"][name]
        return 'node "%s" deleted' % name
    if api_version is not None:
        g, kind = _group(api_version), resource_or_kind
        nsd = check_kind(st, api_version, kind, "", name, ns or "")
    else:
        g, kind, nsd = resolve_resource(st, resource_or_kind)
    key = obj_key(g, kind, (ns or "default") if nsd else "", name)
    label = kind.lower() + ("." + g if g else "")
    if kind == "Secret" and (ns or "default") == "kube-system" and key not in st["objects"]:
        if name.startswith("bootstrap-token-") and name[16:] in st["tokens"]:
            del st["tokens"][name[16:]]
            st["resourceVersion"] += 1
            return 'secret "%s" deleted' % name
        if name == "kubeadm-certs" and st.get("uploadedCerts"):
            st["uploadedCerts"] = None
            st["resourceVersion"] += 1
            return 'secret "%s" deleted' % name
    if key not in st["objects"]:
        if ignore_not_found:
            return None
        raise ApiError("NotFound", 'Error from server (NotFound): %s "%s" not found'
                       % (plural(kind) + ("." + g if g else ""), name), 404)
    del st["objects"][key]
    st.get("fieldOwners", {}).pop(key, None)
    if kind == "Namespace":
        for k in [k for k, o in st["objects"].items() if o["metadata"].get("namespace") == name]:
            del st["objects"][k]
    st["resourceVersion"] += 1
    return '%s "%s" deleted' % (label, name)
