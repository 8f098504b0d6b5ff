"""Simulated helm v3.16.3: repo add/update/list, upgrade --install, install, list, get values, status,
uninstall, version. Only the catalogue's repositories, charts and versions exist; releases live in the
cluster store (the API server), and each chart installs the objects its real chart would run (as
deployments/daemonsets whose pods the lab schedules), so --wait means something."""
import copy
import json
import os
import re
import time

import yaml

from . import common
from . import k8s_client as C
from . import k8s_store as S
from .k8s_schema import STS_MUTABLE

VERSION = "v3.16.3"

# repository URL -> {chart: {version: appVersion}}
CATALOGUE = {
    "https://flannel-io.github.io/flannel": {"flannel": {"v0.26.1": "v0.26.1"}},
    "https://docs.tigera.io/calico/charts": {"tigera-operator": {"v3.28.2": "v3.28.2"}},
    "https://kubernetes-sigs.github.io/metrics-server": {"metrics-server": {"3.12.2": "0.7.2"}},
    "https://prometheus-community.github.io/helm-charts": {"kube-prometheus-stack": {"65.1.1": "v0.77.1"}},
    "https://helm.elastic.co": {"elasticsearch": {"8.5.1": "8.5.1"}, "kibana": {"8.5.1": "8.5.1"}},
    "https://fluent.github.io/helm-charts": {"fluentd": {"0.5.2": "v1.16.2"}},
    "https://jaegertracing.github.io/helm-charts": {"jaeger": {"3.3.1": "1.53.0"}},
    "https://kubernetes.github.io/dashboard": {"kubernetes-dashboard": {"7.10.0": ""}},
}


class HelmError(Exception):
    pass


def die(msg):
    common.fail("Error: " + msg)


def norm_url(u):
    return u.rstrip("/")


def home():
    return os.path.expanduser("~")


def repo_file():
    return os.environ.get("HELM_REPOSITORY_CONFIG") or os.path.join(home(), ".config", "helm", "repositories.yaml")


def cache_dir():
    return os.environ.get("HELM_REPOSITORY_CACHE") or os.path.join(home(), ".cache", "helm", "repository")


def load_repos():
    try:
        with open(repo_file()) as f:
            d = yaml.safe_load(f) or {}
    except FileNotFoundError:
        d = {}
    return d


def save_repos(d):
    d.setdefault("apiVersion", "")
    d.setdefault("generated", time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()))
    common.write_file(repo_file(), yaml.safe_dump(d, sort_keys=False), 0o600)


def write_index(name, url):
    charts = CATALOGUE[norm_url(url)]
    entries = {c: [{"name": c, "version": v, "appVersion": av,
                    "urls": ["%s/%s-%s.tgz" % (norm_url(url), c, v)]} for v, av in vs.items()]
               for c, vs in charts.items()}
    common.write_file(os.path.join(cache_dir(), name + "-index.yaml"),
                      yaml.safe_dump({"apiVersion": "v1", "entries": entries}))


# ------------------------------------------------------------------ chart contents
def _labels(rel, chart, extra=None):
    d = {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": rel,
         "app.kubernetes.io/name": chart}
    d.update(extra or {})
    return d


def _workload(kind, name, ns, rel, chart, image, replicas=1, host_network=False, tolerations=None, volumes=None,
              labels=None, init=None):
    """`init`: the pod's init containers, (name, image) pairs."""
    lab = _labels(rel, chart, labels)
    spec = {"selector": {"matchLabels": lab},
            "template": {"metadata": {"labels": lab},
                         "spec": {"containers": [{"name": name.split("-")[-1] or name, "image": image}]}}}
    if init:
        spec["template"]["spec"]["initContainers"] = [{"name": n, "image": i} for n, i in init]
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if host_network:
        spec["template"]["spec"]["hostNetwork"] = True
    if tolerations:
        spec["template"]["spec"]["tolerations"] = tolerations
    if volumes:
        spec["template"]["spec"]["volumes"] = volumes
    md = {"name": name, "labels": lab, "annotations": {"meta.helm.sh/release-name": rel,
                                                      "meta.helm.sh/release-namespace": ns}}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": md, "spec": spec}


def _obj(api, kind, name, ns, rel, chart, **body):
    md = {"name": name, "labels": _labels(rel, chart),
          "annotations": {"meta.helm.sh/release-name": rel, "meta.helm.sh/release-namespace": ns}}
    if ns:
        md["namespace"] = ns
    d = {"apiVersion": api, "kind": kind, "metadata": md}
    d.update(body)
    return d


def _pdb(name, ns, rel, chart, match, spec_values):
    """A chart's PodDisruptionBudget (policy/v1) over the pods labelled `match`."""
    spec = {"selector": {"matchLabels": dict(match)}}
    for k in ("minAvailable", "maxUnavailable"):
        if spec_values.get(k) is not None:
            spec[k] = spec_values[k]
    if "minAvailable" not in spec and "maxUnavailable" not in spec:
        spec["minAvailable"] = 1
    return _obj("policy/v1", "PodDisruptionBudget", name, ns, rel, chart, spec=spec)


def _enabled_pdb(v, *path):
    """values[path...].podDisruptionBudget when `enabled` (the charts' default is off), else None."""
    for k in path:
        v = (v or {}).get(k) or {}
    pdb = (v or {}).get("podDisruptionBudget") or {}
    return pdb if pdb.get("enabled") is True else None


def chart_objects(chart, rel, ns, values):
    """What installing the chart creates (the parts that matter to the lab)."""
    v = values or {}
    all_tol = [{"operator": "Exists"}]
    if chart == "flannel":
        cidr = v.get("podCidr", "10.244.0.0/16")
        backend = ((v.get("flannel") or {}).get("backend")) or "vxlan"
        return [
            _obj("v1", "ConfigMap", "kube-flannel-cfg", ns, rel, chart, data={
                "net-conf.json": json.dumps({"Network": cidr, "Backend": {"Type": backend}}, indent=2),
                "cni-conf.json": "{}"}),
            # the chart's images (values.yaml of v0.26.1: flannel.image and flannel.image_cni)
            _workload("DaemonSet", "kube-flannel-ds", ns, rel, chart, "docker.io/flannel/flannel:v0.26.1",
                      host_network=True, tolerations=all_tol, labels={"app": "flannel"},
                      init=[("install-cni-plugin", "docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2"),
                            ("install-cni", "docker.io/flannel/flannel:v0.26.1")]),
        ]
    if chart == "tigera-operator":
        out = [_workload("Deployment", "tigera-operator", ns, rel, chart, "quay.io/tigera/operator:v1.34.5",
                         host_network=True, tolerations=all_tol)]
        inst = v.get("installation", {"enabled": True})
        if inst.get("enabled", True) is not False:
            spec = {k: copy.deepcopy(val) for k, val in inst.items() if k != "enabled"}
            out.append(_obj("operator.tigera.io/v1", "Installation", "default", "", rel, chart, spec=spec))
            out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "calico-system"}})
            out.append(_workload("DaemonSet", "calico-node", "calico-system", rel, chart,
                                 "docker.io/calico/node:v3.28.2", host_network=True, tolerations=all_tol,
                                 labels={"k8s-app": "calico-node"}, init=S.CALICO_NODE_INIT))
            out.append(_workload("Deployment", "calico-kube-controllers", "calico-system", rel, chart,
                                 "docker.io/calico/kube-controllers:v3.28.2",
                                 tolerations=[{"key": "node-role.kubernetes.io/control-plane",
                                               "effect": "NoSchedule"}, {"key": "CriticalAddonsOnly",
                                                                         "operator": "Exists"}]))
        return out
    # PodDisruptionBudgets as the real charts make them: metrics-server and kube-prometheus-stack only when the
    # values enable one (`podDisruptionBudget.enabled`, off by default); elasticsearch by default
    # (`maxUnavailable: 1`), which is what blocks a drain of a node holding one of too few healthy pods
    if chart == "metrics-server":
        out = [_workload("Deployment", rel, ns, rel, chart, "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
                         replicas=int(v.get("replicas", 1)), volumes=[{"name": "tmp-dir", "emptyDir": {}}])]
        pdb = _enabled_pdb(v)
        if pdb:
            out.append(_pdb(rel, ns, rel, chart, _labels(rel, chart), pdb))
        return out
    if chart == "kube-prometheus-stack":
        short = rel[:26]
        am, prom = {"app.kubernetes.io/component": "alertmanager"}, {"app.kubernetes.io/component": "prometheus"}
        out = [
            _workload("Deployment", "%s-operator" % short, ns, rel, chart, "quay.io/prometheus-operator/prometheus-operator:v0.77.1"),
            _workload("Deployment", "%s-grafana" % rel, ns, rel, chart, "docker.io/grafana/grafana:11.2.1"),
            _workload("Deployment", "%s-kube-state-metrics" % rel, ns, rel, chart,
                      "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0"),
            _workload("DaemonSet", "%s-prometheus-node-exporter" % rel, ns, rel, chart,
                      "quay.io/prometheus/node-exporter:v1.8.2", host_network=True, tolerations=all_tol),
            _workload("StatefulSet", "prometheus-%s-prometheus" % short, ns, rel, chart,
                      "quay.io/prometheus/prometheus:v2.54.1",
                      volumes=[{"name": "config-out", "emptyDir": {}}], labels=prom,
                      replicas=int(((v.get("prometheus") or {}).get("prometheusSpec") or {}).get("replicas", 1))),
            _workload("StatefulSet", "alertmanager-%s-alertmanager" % short, ns, rel, chart,
                      "quay.io/prometheus/alertmanager:v0.27.0", labels=am,
                      replicas=int(((v.get("alertmanager") or {}).get("alertmanagerSpec") or {}).get("replicas", 1))),
        ]
        for part, sel in (("alertmanager", am), ("prometheus", prom)):
            pdb = _enabled_pdb(v, part)
            if pdb:
                out.append(_pdb("%s-%s" % (short, part), ns, rel, chart, _labels(rel, chart, sel), pdb))
        return out
    if chart == "elasticsearch":
        name = v.get("clusterName", "elasticsearch") + "-" + v.get("nodeGroup", "master")
        out = [_workload("StatefulSet", name, ns, rel, chart, "docker.elastic.co/elasticsearch/elasticsearch:8.5.1",
                         replicas=int(v.get("replicas", 3)), labels={"app": name})]
        # templates/statefulset.yaml: a claim per pod unless `persistence.enabled: false` (default true), its spec
        # the `volumeClaimTemplate` value (default: ReadWriteOnce, 30Gi, no storageClassName)
        if (v.get("persistence") or {}).get("enabled", True):
            claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "30Gi"}}}
            claim.update(v.get("volumeClaimTemplate") or {})
            out[0]["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": name}, "spec": claim}]
        if v.get("maxUnavailable", 1):
            out.append(_pdb(name + "-pdb", ns, rel, chart, {"app": name}, {"maxUnavailable": v.get("maxUnavailable", 1)}))
        return out
    if chart == "kibana":
        return [_workload("Deployment", "%s-kibana" % rel, ns, rel, chart, "docker.elastic.co/kibana/kibana:8.5.1",
                          replicas=int(v.get("replicas", 1)))]
    if chart == "fluentd":
        return [_workload("DaemonSet", rel, ns, rel, chart, "fluent/fluentd-kubernetes-daemonset:v1.16.2",
                          tolerations=all_tol)]
    if chart == "jaeger":
        return [_workload("Deployment", rel, ns, rel, chart, "jaegertracing/all-in-one:1.53.0")]
    if chart == "kubernetes-dashboard":
        return [_workload("Deployment", "%s-%s" % (rel, part), ns, rel, chart,
                          "docker.io/kubernetesui/dashboard-%s:1.10.1" % part)
                for part in ("api", "auth", "web", "metrics-scraper")] + [
            _workload("Deployment", "%s-kong" % rel, ns, rel, chart, "kong:3.6")]
    return []


# ------------------------------------------------------------------ server side (runs in the API server)
def _rkey(ns, name):
    return "%s/%s" % (ns, name)


def server_op(st, op, a, now):
    if op == "helm_upgrade":
        ns, name = a["namespace"], a["name"]
        key = _rkey(ns, name)
        old = st["releases"].get(key)
        if old is None and not a.get("install"):
            raise S.ApiError("NotFound", 'UPGRADE FAILED: "%s" has no deployed releases' % name, 404)
        if S.obj_key("", "Namespace", "", ns) not in st["objects"]:
            if not a.get("createNamespace"):
                raise S.ApiError("NotFound", '%s: failed to create: namespaces "%s" not found'
                                 % ("create" if old is None else "UPGRADE FAILED", ns), 404)
            S.put_object(st, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, now, "helm")
        objs = chart_objects(a["chartName"], name, ns, a.get("values"))
        # the API server refuses a StatefulSet whose spec changes outside the mutable fields (its
        # volumeClaimTemplates among them), and helm's upgrade fails with it
        for o in objs:
            if o["kind"] != "StatefulSet":
                continue
            was = st["objects"].get(S.obj_key("apps", "StatefulSet", ns, o["metadata"]["name"]))
            # the fields the chart sets (the stored object also has the server's defaults), and the claims
            fields = (set(o["spec"]) | {"volumeClaimTemplates"}) - STS_MUTABLE
            if was is not None and any((was.get("spec") or {}).get(k) != o["spec"].get(k) for k in fields):
                raise S.ApiError("Invalid", '%s: cannot patch "%s" with kind StatefulSet: StatefulSet.apps "%s" is '
                                 "invalid: spec: Forbidden: updates to statefulset spec for fields other than "
                                 "'replicas', 'ordinals', 'template', 'updateStrategy', "
                                 "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
                                 % ("UPGRADE FAILED" if old else "INSTALLATION FAILED", o["metadata"]["name"],
                                    o["metadata"]["name"]), 422)
        # CRDs the chart brings must exist before its custom resources
        st["releases"][key] = rel = {
            "name": name, "namespace": ns, "chart": a["chart"], "chartName": a["chartName"], "version": a["version"],
            "appVersion": a.get("appVersion", ""), "values": a.get("values") or {},
            "revision": (old["revision"] + 1) if old else 1, "status": "pending-install" if old is None else
            "pending-upgrade", "updated": now, "objects": []}
        keys = []
        for o in objs:
            S.check_kind(st, o["apiVersion"], o["kind"], name, o["metadata"]["name"], o["metadata"].get("namespace", ""))
            k, _ = S.put_object(st, o, now, "helm")
            keys.append(k)
        for k in (old or {}).get("objects", []):
            if k not in keys:
                st["objects"].pop(k, None)
        rel["objects"] = keys
        rel["status"] = "deployed"
        return {"revision": rel["revision"], "new": old is None}
    if op == "helm_set_status":
        rel = st["releases"].get(_rkey(a["namespace"], a["name"]))
        if rel:
            rel["status"] = a["status"]
        return "ok"
    if op == "helm_ready":
        rel = st["releases"].get(_rkey(a["namespace"], a["name"]))
        if rel is None:
            raise S.ApiError("NotFound", "release: not found", 404)
        owners = set()
        for k in rel["objects"]:
            o = st["objects"].get(k)
            if o and o["kind"] in ("Deployment", "DaemonSet", "StatefulSet"):
                owners.add((o["metadata"].get("namespace"), o["metadata"]["name"]))
        pods = S.list_pods(st, now)
        pending = []
        seen = set()
        for p in pods:
            ref = (p["metadata"].get("ownerReferences") or [{}])[0]
            owner = ref.get("name", "")
            ns = p["metadata"]["namespace"]
            match = next((o for o in owners if o[0] == ns and (owner == o[1] or owner.startswith(o[1] + "-"))), None)
            if match is None:
                continue
            seen.add(match)
            if not p["status"]["conditions"][0]["status"] == "True":
                pending.append("%s/%s (%s)" % (ns, p["metadata"]["name"],
                                               p["status"]["containerStatuses"][0]["state"].get("waiting", {})
                                               .get("reason", p["status"]["phase"])))
        # a DaemonSet with no eligible node, or a workload with no pods at all, is not ready either
        return {"ready": not pending, "pending": pending}
    if op == "helm_list":
        out = []
        for k, r in sorted(st["releases"].items()):
            if a.get("allNamespaces") or r["namespace"] == (a.get("namespace") or "default"):
                out.append({kk: v for kk, v in r.items() if kk != "objects"})
        return out
    if op == "helm_get":
        r = st["releases"].get(_rkey(a["namespace"], a["name"]))
        if r is None:
            raise S.ApiError("NotFound", "release: not found", 404)
        return {k: v for k, v in r.items() if k != "objects"}
    if op == "helm_uninstall":
        r = st["releases"].pop(_rkey(a["namespace"], a["name"]), None)
        if r is None:
            raise S.ApiError("NotFound", "uninstall: Release not loaded: %s: release: not found" % a["name"], 404)
        for k in r["objects"]:
            st["objects"].pop(k, None)
        st["resourceVersion"] += 1
        return 'release "%s" uninstalled' % a["name"]
    raise S.ApiError("BadRequest", "unknown helm operation %s" % op)


# ------------------------------------------------------------------ CLI
def parse(argv):
    pos, flags = [], {"-f": [], "--set": []}
    bools = {"--install", "--create-namespace", "--wait", "--wait-for-jobs", "--atomic", "-A", "--all-namespaces",
             "--force-update", "--short", "--all", "--debug", "--reset-values", "--reuse-values", "--force",
             "--dry-run", "--no-hooks", "--devel", "--skip-crds", "-i"}
    alias = {"--namespace": "-n", "--values": "-f", "--output": "-o", "--all-namespaces": "-A", "-i": "--install"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and a != "-":
            name, eq, val = a.partition("=")
            name = alias.get(name, name)
            if name in bools:
                flags[name] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        die('flag needs an argument: %s' % a)
                    val = argv[i]
                if name in ("-f", "--set", "--set-string"):
                    flags["--set" if name != "-f" else "-f"].append(val)
                else:
                    flags[name] = val
        else:
            pos.append(a)
        i += 1
    return pos, flags


def kube(flags):
    path = flags.get("--kubeconfig")
    try:
        k = C.Kube(path)
    except C.ClientError as e:
        die("Kubernetes cluster unreachable: " + e.message)
    return k


def call(k, op, args, prefix=""):
    try:
        return k.call(op, args)
    except C.ClientError as e:
        if e.reason in ("Refused", "Timeout", "NoHost", "TLS"):
            host, port = C.hostport(k.server)
            die('Kubernetes cluster unreachable: Get "https://%s:%d/version": dial tcp %s:%d: connect: connection '
                'refused' % (host, port, host, port))
        die(prefix + e.message)


def set_path(d, path, value):
    parts = re.split(r"(?<!\\)\.", path)
    for p in parts[:-1]:
        d = d.setdefault(p.replace("\\.", "."), {})
    v = value
    if value in ("true", "false"):
        v = value == "true"
    elif re.match(r"^-?\d+$", value):
        v = int(value)
    d[parts[-1].replace("\\.", ".")] = v


def merge(a, b):
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            merge(a[k], v)
        else:
            a[k] = v
    return a


def load_values(flags):
    vals = {}
    for f in flags["-f"]:
        try:
            with open(f) as fh:
                text = fh.read()
        except FileNotFoundError:
            die("open %s: no such file or directory" % f)
        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            die("failed to parse %s: error converting YAML to JSON: yaml: %s%s"
                % (f, "line %d: " % (mark.line + 1) if mark else "", getattr(e, "problem", None) or e))
        if d is None:
            continue
        if not isinstance(d, dict):
            die("failed to parse %s: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal %s into Go "
                "value of type map[string]interface {}" % (f, "array" if isinstance(d, list) else "string"))
        merge(vals, d)
    for s in flags["--set"]:
        for kv in s.split(","):
            if "=" not in kv:
                die('failed parsing --set data: key "%s" has no value' % kv)
            k, v = kv.split("=", 1)
            set_path(vals, k, v)
    return vals


def resolve_chart(ref, version):
    """repo/chart + version -> (repoURL, chart, version, appVersion)."""
    if "/" not in ref or ref.startswith(("/", ".", "oci://", "http")):
        die('non-absolute URLs should be in form of repo_name/path_to_chart, got: %s' % ref if "/" not in ref else
            'lab: chart reference "%s" is not supported; use REPO/CHART' % ref)
    repo, chart = ref.split("/", 1)
    repos = {r["name"]: r["url"] for r in (load_repos().get("repositories") or [])}
    if repo not in repos:
        die('repo %s not found' % repo)
    if not os.path.exists(os.path.join(cache_dir(), repo + "-index.yaml")):
        die('no cached repo found. (try \'helm repo update\'): open %s: no such file or directory'
            % os.path.join(cache_dir(), repo + "-index.yaml"))
    charts = CATALOGUE.get(norm_url(repos[repo]), {})
    if chart not in charts:
        die('chart "%s" not found in %s index. (try \'helm repo update\'): no chart name found' % (chart, repo))
    versions = charts[chart]
    if version:
        want = version.lstrip("v")
        hit = next((v for v in versions if v.lstrip("v") == want), None)
        if hit is None:
            die('chart "%s" version "%s" not found in %s repository' % (chart, version, repos[repo]))
        return repos[repo], chart, hit, versions[hit]
    v = sorted(versions)[-1]
    return repos[repo], chart, v, versions[v]


def duration(s):
    total = 0.0
    for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", s or "5m0s"):
        total += float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u]
    return total or 300.0


def release_block(name, ns, rev, status, notes=""):
    common.out("NAME: %s\nLAST DEPLOYED: %s\nNAMESPACE: %s\nSTATUS: %s\nREVISION: %d\nTEST SUITE: None\n%s"
               % (name, time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(common.now())), ns, status, rev, notes))


def cmd_upgrade(pos, flags, install_cmd=False):
    if len(pos) < 2:
        die('"helm %s" requires 2 arguments' % ("install" if install_cmd else "upgrade"))
    name, ref = pos[0], pos[1]
    ns = flags.get("-n") or "default"
    if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name) or len(name) > 53:
        die('INSTALLATION FAILED: release name "%s": invalid release name, must match regex '
            '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ and the length must not be longer '
            'than 53' % name)
    url, chart, version, app = resolve_chart(ref, flags.get("--version"))
    values = load_values(flags)
    k = kube(flags)
    install = install_cmd or flags.get("--install")
    existing = None
    try:
        existing = k.call("helm_get", {"name": name, "namespace": ns})
    except C.ClientError as e:
        if e.reason != "NotFound":
            call(k, "version", {})
            die(e.message)
    if install_cmd and existing:
        die("INSTALLATION FAILED: cannot re-use a name that is still in use")
    if existing is None and not install:
        die('UPGRADE FAILED: "%s" has no deployed releases' % name)
    if existing is None and not install_cmd:
        common.out('Release "%s" does not exist. Installing it now.\n' % name)
    common.delay("helm-install")
    phase = "INSTALLATION FAILED: " if existing is None else "UPGRADE FAILED: "
    res = call(k, "helm_upgrade", {"name": name, "namespace": ns, "chart": "%s-%s" % (chart, version),
                                   "chartName": chart, "version": version, "appVersion": app, "values": values,
                                   "createNamespace": bool(flags.get("--create-namespace")), "install": install},
               phase)
    if flags.get("--wait") or flags.get("--atomic"):
        deadline = time.time() + duration(flags.get("--timeout"))
        while True:
            r = call(k, "helm_ready", {"name": name, "namespace": ns})
            if r["ready"]:
                break
            if time.time() >= deadline:
                call(k, "helm_set_status", {"name": name, "namespace": ns, "status": "failed"})
                die(phase + "context deadline exceeded")
            time.sleep(0.3)
    if existing is not None:
        common.out('Release "%s" has been upgraded. Happy Helming!\n' % name)
    release_block(name, ns, res["revision"], "deployed")
    return 0


def repo_lock_file():
    """helm's lock beside the repositories file: repositories.yaml -> repositories.lock."""
    f = repo_file()
    base, ext = os.path.splitext(f)
    return (base if ext and base else f) + ".lock"


def cmd_repo(pos, flags):
    if not pos:
        die('"helm repo" requires a subcommand')
    if pos[0] in ("add", "remove"):
        # helm takes a file lock around reading and writing the repositories file (waiting up to 30 s), so
        # that two helm processes adding repositories at once both keep their entry
        deadline = time.time() + 30
        while True:
            with common.flock(repo_lock_file(), blocking=False) as locked:
                if locked:
                    return _cmd_repo(pos, flags)
            if time.time() >= deadline:
                die("context deadline exceeded")
            time.sleep(0.1)
    return _cmd_repo(pos, flags)


def _cmd_repo(pos, flags):
    sub = pos[0]
    d = load_repos()
    repos = d.get("repositories") or []
    if sub == "add":
        if len(pos) < 3:
            die('"helm repo add" requires 2 arguments')
        name, url = pos[1], pos[2]
        if norm_url(url) not in CATALOGUE:
            host = re.sub(r"^https?://", "", url).split("/")[0]
            die('looks like "%s" is not a valid chart repository or cannot be reached: Get "%s/index.yaml": dial tcp: '
                'lookup %s: no such host' % (url, norm_url(url), host))
        cur = next((r for r in repos if r["name"] == name), None)
        if cur is not None:
            if norm_url(cur["url"]) == norm_url(url):
                common.out('"%s" already exists with the same configuration, skipping\n' % name)
                return 0
            if not flags.get("--force-update"):
                die("repository name (%s) already exists, please specify a different name" % name)
            repos.remove(cur)
        repos.append({"name": name, "url": url, "caFile": "", "certFile": "", "keyFile": "", "insecure_skip_tls_verify":
                      False, "pass_credentials_all": False, "username": "", "password": ""})
        d["repositories"] = repos
        write_index(name, url)
        save_repos(d)
        common.out('"%s" has been added to your repositories\n' % name)
        return 0
    if sub == "update":
        if not repos:
            die("no repositories found. You must add one before updating")
        names = pos[1:] or [r["name"] for r in repos]
        common.out("Hang tight while we grab the latest from your chart repositories...\n")
        for r in repos:
            if r["name"] in names:
                write_index(r["name"], r["url"])
                common.out('...Successfully got an update from the "%s" chart repository\n' % r["name"])
        common.out("Update Complete. \u2388Happy Helming!\u2388\n")
        return 0
    if sub == "list":
        if not repos:
            die("no repositories to show")
        if flags.get("-o") == "json":
            common.out(json.dumps([{"name": r["name"], "url": r["url"]} for r in repos]) + "\n")
            return 0
        w = max(len(r["name"]) for r in repos + [{"name": "NAME"}])
        common.out("NAME".ljust(w) + "\tURL\n" + "".join(r["name"].ljust(w) + "\t" + r["url"] + "\n" for r in repos))
        return 0
    if sub == "remove":
        for n in pos[1:]:
            if not any(r["name"] == n for r in repos):
                die('no repo named "%s" found' % n)
            repos = [r for r in repos if r["name"] != n]
            common.out('"%s" has been removed from your repositories\n' % n)
        d["repositories"] = repos
        save_repos(d)
        return 0
    die('unknown command "%s" for "helm repo"' % sub)


def fmt_time(t):
    return time.strftime("%Y-%m-%d %H:%M:%S.000000000 +0000 UTC", time.gmtime(t))


def main(tool, argv):
    pos, flags = parse(argv)
    if not pos:
        common.out("The Kubernetes package manager\n\nUsage:\n  helm [command]\n")
        return 0
    cmd, rest = pos[0], pos[1:]
    if cmd == "version":
        if flags.get("--short"):
            common.out(VERSION + "+gcfd0749\n")
        elif flags.get("--template"):
            common.out(flags["--template"].replace("{{.Version}}", VERSION).replace("{{ .Version }}", VERSION))
        else:
            common.out('version.BuildInfo{Version:"%s", GitCommit:"cfd07493f46efc9debd9cc1b02a0961186df7fdf", '
                       'GitTreeState:"clean", GoVersion:"go1.22.7"}\n' % VERSION)
        return 0
    if cmd == "repo":
        return cmd_repo(rest, flags)
    if cmd == "upgrade":
        return cmd_upgrade(rest, flags)
    if cmd == "install":
        return cmd_upgrade(rest, flags, install_cmd=True)
    if cmd in ("list", "ls"):
        k = kube(flags)
        rels = call(k, "helm_list", {"namespace": flags.get("-n"), "allNamespaces": bool(flags.get("-A"))})
        rows = [{"name": r["name"], "namespace": r["namespace"], "revision": str(r["revision"]),
                 "updated": fmt_time(r["updated"]), "status": r["status"], "chart": r["chart"],
                 "app_version": r["appVersion"]} for r in rels]
        if flags.get("-o") == "json":
            common.out(json.dumps(rows) + "\n")
        elif flags.get("-o") == "yaml":
            common.out(yaml.safe_dump(rows))
        else:
            hdr = ["NAME", "NAMESPACE", "REVISION", "UPDATED", "STATUS", "CHART", "APP VERSION"]
            lines = [hdr] + [[r["name"], r["namespace"], r["revision"], r["updated"], r["status"], r["chart"],
                              r["app_version"]] for r in rows]
            w = [max(len(l[i]) for l in lines) for i in range(len(hdr))]
            common.out("".join("\t".join(l[i].ljust(w[i]) for i in range(len(hdr))).rstrip() + "\n" for l in lines))
        return 0
    if cmd == "get":
        if len(rest) < 2 or rest[0] not in ("values", "all", "manifest", "notes"):
            die('lab: only "helm get values RELEASE" is simulated')
        k = kube(flags)
        try:
            r = k.call("helm_get", {"name": rest[1], "namespace": flags.get("-n") or "default"})
        except C.ClientError as e:
            if e.reason == "NotFound":
                die("release: not found")
            die(e.message)
        vals = r["values"] or None
        if flags.get("-o") == "json":
            common.out(json.dumps(vals) + "\n")
        elif flags.get("-o") == "yaml":
            common.out(yaml.safe_dump(vals) if vals else "null\n")
        else:
            common.out("USER-SUPPLIED VALUES:\n" + (yaml.safe_dump(vals) if vals else "null\n"))
        return 0
    if cmd == "status":
        if not rest:
            die('"helm status" requires 1 argument')
        k = kube(flags)
        try:
            r = k.call("helm_get", {"name": rest[0], "namespace": flags.get("-n") or "default"})
        except C.ClientError as e:
            die("release: not found" if e.reason == "NotFound" else e.message)
        if flags.get("-o") == "json":
            common.out(json.dumps({"name": r["name"], "namespace": r["namespace"], "version": r["revision"],
                                   "info": {"status": r["status"]}, "chart": {"metadata": {
                                       "name": r["chartName"], "version": r["version"]}}}) + "\n")
        else:
            release_block(r["name"], r["namespace"], r["revision"], r["status"])
        return 0
    if cmd in ("uninstall", "delete", "del", "un"):
        if not rest:
            die('"helm uninstall" requires at least 1 argument')
        k = kube(flags)
        for name in rest:
            try:
                common.out(k.call("helm_uninstall", {"name": name, "namespace": flags.get("-n") or "default"}) + "\n")
            except C.ClientError as e:
                die(e.message)
        return 0
    die('unknown command "%s" for "helm"\nRun \'helm --help\' for usage.' % cmd)
