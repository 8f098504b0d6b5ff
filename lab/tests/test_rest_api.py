"""The lab API server speaks the Kubernetes REST API: checked over raw HTTPS with the admin client certificate
(discovery, Status errors, create/update/patch/apply/delete, watch, evictions and PodDisruptionBudgets, access
reviews) and with the machine's real kubectl (skipped without one; a failure under CI)."""
import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
import yaml

from k8slab import Lab, join_command, require_root, module_net

NET = module_net("127.0.74")
SERVER = NET + ".11"


class Client:
    """HTTPS to the lab API server with a kubeconfig's client certificate (or none)."""

    def __init__(self, kubeconfig_text, anonymous=False):
        cfg = yaml.safe_load(kubeconfig_text)
        self.dir = tempfile.mkdtemp(prefix="h3-rest-")
        ca = os.path.join(self.dir, "ca.crt")
        with open(ca, "wb") as f:
            f.write(base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]))
        self.ctx = ssl.create_default_context(cafile=ca)
        if not anonymous:
            user = cfg["users"][0]["user"]
            crt, key = os.path.join(self.dir, "c.crt"), os.path.join(self.dir, "c.key")
            with open(crt, "wb") as f:
                f.write(base64.b64decode(user["client-certificate-data"]))
            with open(key, "wb") as f:
                f.write(base64.b64decode(user["client-key-data"]))
            self.ctx.load_cert_chain(crt, key)

    def req(self, method, path, body=None, ctype="application/json", headers=None, raw=False):
        c = http.client.HTTPSConnection(SERVER, 6443, context=self.ctx, timeout=30)
        h = dict(headers or {})
        if body is not None:
            h["Content-Type"] = ctype
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        if raw:
            return r.status, r.getheader("Content-Type"), data
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data.decode()


@pytest.fixture(scope="module")
def lab():
    require_root()
    lb = Lab("rest-api", NET, hosts=3).up()
    try:
        lb.prepare(1, 2, 3)
        out = lb.ok(1, "kubeadm init --pod-network-cidr=10.244.0.0/16")
        lb.ok(2, join_command(out))
        lb.ok(3, join_command(out))
        lb.ok(1, "curl -fsSL https://github.com/flannel-io/flannel/releases/latest/download/kube-flannel.yml | "
                 "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -")
        lb.admin = lb.ok(1, "cat /etc/kubernetes/admin.conf")
        deadline = time.time() + 60
        while time.time() < deadline and not all(c["status"] == "True" for c in lb.nodes().values()):
            time.sleep(1)
        yield lb
    finally:
        lb.down()


@pytest.fixture(scope="module")
def api(lab):
    return Client(lab.admin)


def test_discovery_and_unknown_paths(api, lab):
    code, d = api.req("GET", "/api")
    assert code == 200 and d["kind"] == "APIVersions" and d["versions"] == ["v1"]
    code, ctype, body = api.req("GET", "/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;"
                                                                   "as=APIGroupDiscoveryList,application/json"},
                                raw=True)
    assert code == 200 and "as=APIGroupDiscoveryList" in ctype
    groups = {g["metadata"]["name"]: g for g in json.loads(body)["items"]}
    for g in ("apps", "rbac.authorization.k8s.io", "networking.k8s.io", "policy", "coordination.k8s.io",
              "authorization.k8s.io"):
        assert g in groups, g
    code, d = api.req("GET", "/api/v1")
    ev = next(r for r in d["resources"] if r["name"] == "pods/eviction")
    assert (ev["group"], ev["version"], ev["kind"]) == ("policy", "v1", "Eviction")
    for path in ("/apis/nope/v1", "/api/v1/nosuchthings", "/nope", "/api/v1/namespaces/default/pods/x/nope"):
        code, d = api.req("GET", path)
        assert code == 404 and d["kind"] == "Status" and d["reason"] == "NotFound", (path, d)
    code, d = api.req("GET", "/api/v1/namespaces/default/configmaps/nosuch")
    assert code == 404 and d["message"] == 'configmaps "nosuch" not found' and d["details"]["kind"] == "configmaps"
    code, d = api.req("GET", "/openapi/v3")
    assert code == 200 and "apis/apps/v1" in d["paths"]
    code, doc = api.req("GET", d["paths"]["apis/apps/v1"]["serverRelativeURL"])
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


def test_authentication_and_authorization(lab):
    anon = Client(lab.admin, anonymous=True)
    assert anon.req("GET", "/livez") == (200, "ok")
    assert anon.req("GET", "/version")[1]["gitVersion"] == "v1.34.1"
    code, d = anon.req("GET", "/api/v1/nodes")
    assert code == 403 and d["reason"] == "Forbidden"
    assert d["message"] == ('nodes is forbidden: User "system:anonymous" cannot list resource "nodes" in API group "" '
                            'at the cluster scope')


def test_nodes_pods_and_selectors(api):
    code, d = api.req("GET", "/api/v1/nodes")
    assert code == 200 and d["kind"] == "NodeList" and len(d["items"]) == 3
    for n in d["items"]:
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"][0]
        assert ready["status"] == "True"
        assert n["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.1"
        assert {"type": "InternalIP", "address": n["metadata"]["name"].replace("lab-", NET + ".1")} in \
            n["status"]["addresses"] or any(a["type"] == "InternalIP" for a in n["status"]["addresses"])
    code, d = api.req("GET", "/api/v1/nodes?labelSelector=node-role.kubernetes.io/control-plane")
    assert [n["metadata"]["name"] for n in d["items"]] == ["lab-1"]
    code, d = api.req("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dlab-2")
    assert code == 200 and d["items"] and all(p["spec"]["nodeName"] == "lab-2" for p in d["items"])
    code, d = api.req("GET", "/api/v1/pods?fieldSelector=spec.color%3Dblue")
    assert code == 400 and d["message"] == "field label not supported: spec.color"
    code, d = api.req("GET", "/api/v1/nodes", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert d["kind"] == "Table" and [c["name"] for c in d["columnDefinitions"]][:5] == \
        ["Name", "Status", "Roles", "Age", "Version"]


def test_create_conflicts_validation_and_updates(api):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rest-a"}}
    assert api.req("POST", "/api/v1/namespaces", ns)[0] == 201
    code, d = api.req("POST", "/api/v1/namespaces", ns)
    assert code == 409 and d["reason"] == "AlreadyExists" and d["message"] == 'namespaces "rest-a" already exists'
    code, d = api.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": "Bad_Name"}})
    assert code == 422 and d["reason"] == "Invalid" and d["message"].startswith(
        'Namespace "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 label')
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    code, d = api.req("POST", "/api/v1/namespaces/nosuch/configmaps", cm)
    assert code == 404 and d["message"] == 'namespaces "nosuch" not found'
    code, made = api.req("POST", "/api/v1/namespaces/rest-a/configmaps", cm)
    assert code == 201 and made["metadata"]["uid"] and made["metadata"]["resourceVersion"]
    stale = dict(made, data={"a": "2"})
    code, upd = api.req("PUT", "/api/v1/namespaces/rest-a/configmaps/c", stale)
    assert code == 200 and upd["data"] == {"a": "2"}
    assert int(upd["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    code, d = api.req("PUT", "/api/v1/namespaces/rest-a/configmaps/c", dict(made, data={"a": "3"}))
    assert code == 409 and d["reason"] == "Conflict" and "the object has been modified" in d["message"]
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "w"}},
                    "template": {"metadata": {"labels": {"app": "other"}},
                                 "spec": {"containers": [{"name": "w", "image": "nginx:1.27"}]}}}}
    code, d = api.req("POST", "/apis/apps/v1/namespaces/rest-a/deployments", dep)
    assert code == 422 and "spec.template.metadata.labels: Invalid value" in d["message"] and \
        "`selector` does not match template `labels`" in d["message"]
    dep["spec"]["template"]["metadata"]["labels"]["app"] = "w"
    dep["spec"]["replica"] = 2
    code, d = api.req("POST", "/apis/apps/v1/namespaces/rest-a/deployments?fieldValidation=Strict", dep)
    assert code == 400 and d["message"] == 'strict decoding error: unknown field "spec.replica"'
    del dep["spec"]["replica"]
    code, d = api.req("POST", "/apis/apps/v1/namespaces/rest-a/deployments", dep)
    assert code == 201 and d["spec"]["strategy"]["type"] == "RollingUpdate"          # defaulted
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    code, d = api.req("PATCH", "/apis/apps/v1/namespaces/rest-a/deployments/w",
                      {"spec": {"template": {"spec": {"containers": [{"name": "w", "image": "nginx:1.28"}]}}}},
                      ctype="application/strategic-merge-patch+json")
    assert code == 200 and d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"   # merged by name
    code, d = api.req("PATCH", "/apis/apps/v1/namespaces/rest-a/deployments/w", {"spec": {"replicas": 2}},
                      ctype="application/merge-patch+json")
    assert code == 200 and d["spec"]["replicas"] == 2 and d["metadata"]["generation"] == 3
    code, d = api.req("PATCH", "/apis/apps/v1/namespaces/rest-a/deployments/w",
                      [{"op": "replace", "path": "/spec/selector/matchLabels/app", "value": "x"}],
                      ctype="application/json-patch+json")
    assert code == 422 and "field is immutable" in d["message"]


def test_server_side_apply_managers_and_conflicts(api):
    api.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rest-b"}})
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n  namespace: rest-b\ndata:\n  a: '1'\n"
    path = "/api/v1/namespaces/rest-b/configmaps/s"
    code, d = api.req("PATCH", path, cm, ctype="application/apply-patch+yaml")
    assert code == 422 and "fieldManager: Required value" in d["message"]
    code, first = api.req("PATCH", path + "?fieldManager=one", cm, ctype="application/apply-patch+yaml")
    assert code == 201 and first["metadata"]["managedFields"][0]["manager"] == "one"
    code, again = api.req("PATCH", path + "?fieldManager=one", cm, ctype="application/apply-patch+yaml")
    assert code == 200 and again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    other = cm.replace("'1'", "'2'")
    code, d = api.req("PATCH", path + "?fieldManager=two", other, ctype="application/apply-patch+yaml")
    assert code == 409 and d["reason"] == "Conflict"
    assert d["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "one" using v1',
                                       "field": ".data.a"}]
    code, d = api.req("PATCH", path + "?fieldManager=two&force=true", other, ctype="application/apply-patch+yaml")
    assert code == 200 and d["data"] == {"a": "2"}
    assert [m["manager"] for m in d["metadata"]["managedFields"]] == ["two"]
    code, d = api.req("PATCH", path + "?fieldManager=two", cm.replace("\ndata:", "\ndta:"),
                      ctype="application/apply-patch+yaml")
    assert code == 400 and ".dta: field not declared in schema" in d["message"]


def test_delete_namespaces_and_propagation(api):
    code, d = api.req("DELETE", "/api/v1/namespaces/kube-system")
    assert code == 403 and d["message"] == 'namespaces "kube-system" is forbidden: this namespace may not be deleted'
    api.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rest-c"}})
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}},
                                 "spec": {"containers": [{"name": "d", "image": "nginx:1.27"}]}}}}
    assert api.req("POST", "/apis/apps/v1/namespaces/rest-c/deployments", dep)[0] == 201
    assert len(api.req("GET", "/api/v1/namespaces/rest-c/pods")[1]["items"]) == 2
    code, d = api.req("DELETE", "/apis/apps/v1/namespaces/rest-c/deployments/d",
                      {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    assert code == 200
    assert api.req("GET", "/apis/apps/v1/namespaces/rest-c/deployments/d")[0] == 404
    assert api.req("GET", "/api/v1/namespaces/rest-c/pods")[1]["items"] == []
    code, d = api.req("DELETE", "/api/v1/namespaces/rest-c")
    assert code == 200 and d["status"]["phase"] == "Terminating"           # the namespace controller's turn
    code, d = api.req("POST", "/api/v1/namespaces/rest-c/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                                      "metadata": {"name": "late"}})
    assert code == 403 and "because it is being terminated" in d["message"]
    deadline = time.time() + 10
    while api.req("GET", "/api/v1/namespaces/rest-c")[0] != 404 and time.time() < deadline:
        time.sleep(0.2)
    assert api.req("GET", "/api/v1/namespaces/rest-c")[0] == 404


def test_eviction_respects_pod_disruption_budgets(api):
    api.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rest-d"}})
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "e"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "e"}},
                    "template": {"metadata": {"labels": {"app": "e"}},
                                 "spec": {"containers": [{"name": "e", "image": "nginx:1.27"}]}}}}
    api.req("POST", "/apis/apps/v1/namespaces/rest-d/deployments", dep)
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "e"},
           "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "e"}}}}
    assert api.req("POST", "/apis/policy/v1/namespaces/rest-d/poddisruptionbudgets", pdb)[0] == 201
    pods = api.req("GET", "/api/v1/namespaces/rest-d/pods")[1]["items"]
    victim = pods[0]["metadata"]
    ev = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": victim["name"], "namespace": "rest-d"}}
    code, d = api.req("POST", "/api/v1/namespaces/rest-d/pods/%s/eviction" % victim["name"], ev)
    assert code == 429 and d["reason"] == "TooManyRequests"
    assert d["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    code, d = api.req("GET", "/apis/policy/v1/namespaces/rest-d/poddisruptionbudgets/e")
    assert d["status"]["disruptionsAllowed"] == 0 and d["status"]["currentHealthy"] == 2
    api.req("PATCH", "/apis/policy/v1/namespaces/rest-d/poddisruptionbudgets/e", {"spec": {"minAvailable": 1}},
            ctype="application/merge-patch+json")
    code, d = api.req("POST", "/api/v1/namespaces/rest-d/pods/%s/eviction" % victim["name"], ev)
    assert code == 201 and d["status"] == "Success"
    code, d = api.req("GET", "/api/v1/namespaces/rest-d/pods/" + victim["name"])
    assert code == 404
    after = api.req("GET", "/api/v1/namespaces/rest-d/pods")[1]["items"]
    assert len(after) == 2 and victim["uid"] not in [p["metadata"]["uid"] for p in after]   # replaced


def test_watch_streams_changes_and_ends(api):
    api.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rest-e"}})
    code, lst = api.req("GET", "/api/v1/namespaces/rest-e/configmaps")
    rv = lst["metadata"]["resourceVersion"]
    events = []

    def watch():
        c = http.client.HTTPSConnection(SERVER, 6443, context=api.ctx, timeout=30)
        c.request("GET", "/api/v1/namespaces/rest-e/configmaps?watch=true&timeoutSeconds=4&resourceVersion=" + rv)
        r = c.getresponse()
        for line in r:
            if line.strip():
                events.append(json.loads(line))
        c.close()
    t = threading.Thread(target=watch)
    start = time.time()
    t.start()
    time.sleep(0.5)
    api.req("POST", "/api/v1/namespaces/rest-e/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                             "metadata": {"name": "w1"}})
    api.req("DELETE", "/api/v1/namespaces/rest-e/configmaps/w1")
    t.join(15)
    assert not t.is_alive() and 3.5 < time.time() - start < 10          # timeoutSeconds ends the stream
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w1"), ("DELETED", "w1")]


def test_access_reviews_answer_from_rbac(api):
    api.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rest-f"}})
    api.req("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": "rest-f"}]})
    sa = {"Impersonate-User": "system:serviceaccount:rest-f:viewer"}

    def can(verb, resource, ns="default", group=""):
        code, d = api.req("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": ns, "group": group}}},
            headers=sa)
        assert code == 201, d
        return d["status"]["allowed"]
    assert can("list", "pods") and can("get", "deployments", group="apps") and can("watch", "services")
    assert not can("list", "secrets") and not can("delete", "pods") and not can("create", "deployments", group="apps")
    code, d = api.req("GET", "/api/v1/namespaces/default/secrets", headers=sa)
    assert code == 403 and 'User "system:serviceaccount:rest-f:viewer" cannot list resource "secrets"' in d["message"]


# ------------------------------------------------------------------ the real kubectl
def real_kubectl():
    k = shutil.which("kubectl")
    if k is None:
        if os.environ.get("CI"):
            pytest.fail("no kubectl on this machine (CI needs the real client)")
        pytest.skip("no kubectl on this machine")
    return k


@pytest.fixture(scope="module")
def kubectl(lab):
    k = real_kubectl()
    d = tempfile.mkdtemp(prefix="h3-kubectl-")
    cfg = os.path.join(d, "admin.conf")
    with open(cfg, "w") as f:
        f.write(lab.admin)

    def run(args, check=True, stdin=None):
        p = subprocess.run([k, "--kubeconfig", cfg] + args, capture_output=True, text=True, input=stdin,
                           env=dict(os.environ, HOME=d), timeout=120)
        if check:
            assert p.returncode == 0, "kubectl %s: %s%s" % (" ".join(args), p.stdout, p.stderr)
        return p
    return run


APP = """apiVersion: v1
kind: Namespace
metadata: {name: kc}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: kc}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27-alpine
          ports: [{name: http, containerPort: 80}]
"""


def test_real_kubectl_get_apply_drain_and_can_i(kubectl):
    out = kubectl(["get", "nodes", "-o", "wide"]).stdout
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    assert sorted(l.split()[0] for l in lines[1:]) == ["lab-1", "lab-2", "lab-3"]
    assert all(l.split()[1] == "Ready" and l.split()[4] == "v1.34.1" for l in lines[1:])
    assert kubectl(["apply", "--server-side", "-f", "-"], stdin=APP).stdout.count("serverside-applied") == 2
    before = json.loads(kubectl(["get", "deploy", "web", "-n", "kc", "-o", "json"]).stdout)["metadata"]
    assert "unchanged" not in kubectl(["apply", "--server-side", "-f", "-"], stdin=APP).stdout   # real wording
    after = json.loads(kubectl(["get", "deploy", "web", "-n", "kc", "-o", "json"]).stdout)["metadata"]
    assert after["resourceVersion"] == before["resourceVersion"] and after["generation"] == before["generation"]
    kubectl(["rollout", "status", "deploy/web", "-n", "kc", "--timeout=30s"])
    kubectl(["wait", "--for=condition=Available", "deploy/web", "-n", "kc", "--timeout=30s"])
    p = kubectl(["apply", "--server-side", "-f", "-"], check=False, stdin=APP.replace("replicas", "replica"))
    assert p.returncode != 0 and ".spec.replica: field not declared in schema" in p.stderr
    kubectl(["apply", "-f", "-"], stdin="apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web, "
                                        "namespace: kc}\nspec:\n  minAvailable: 3\n  selector: {matchLabels: "
                                        "{app: web}}\n")
    on2 = [l for l in kubectl(["get", "pods", "-n", "kc", "-o", "wide", "--no-headers"]).stdout.splitlines()
           if " lab-2 " in l]
    assert on2, "no web pod on lab-2"
    p = kubectl(["drain", "lab-2", "--ignore-daemonsets", "--timeout=8s"], check=False)
    assert p.returncode != 0 and "Cannot evict pod as it would violate the pod's disruption budget" in p.stderr
    kubectl(["patch", "pdb", "web", "-n", "kc", "--type=merge", "-p", '{"spec":{"minAvailable":2}}'])
    p = kubectl(["drain", "lab-2", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s"])
    assert "node/lab-2 drained" in p.stdout
    left = kubectl(["get", "pods", "-A", "-o", "wide", "--no-headers", "--field-selector", "spec.nodeName=lab-2"]).stdout
    assert all("kube-proxy" in l or "flannel" in l for l in left.splitlines()), left
    kubectl(["uncordon", "lab-2"])
    assert kubectl(["auth", "can-i", "list", "pods", "--as=system:serviceaccount:rest-f:nobody"],
                   check=False).stdout.strip() == "no"
    kubectl(["create", "clusterrolebinding", "kc-view", "--clusterrole=view", "--serviceaccount=kc:viewer"])
    assert kubectl(["auth", "can-i", "list", "pods", "-n", "kc", "--as=system:serviceaccount:kc:viewer"]
                   ).stdout.strip() == "yes"
    p = kubectl(["auth", "can-i", "get", "secrets", "-n", "kc", "--as=system:serviceaccount:kc:viewer"], check=False)
    assert p.returncode == 1 and p.stdout.strip() == "no"
    kubectl(["delete", "ns", "kc", "--timeout=30s"])
    assert kubectl(["get", "ns", "kc"], check=False).returncode == 1


def test_kubectl_package_installs_the_machines_real_client(lab):
    """Installing the kubectl package puts the machine's real kubectl on the host (the binary of the package's
    minor when the machine has versioned ones, else the closest older one); without one, the lab's imitation."""
    real = shutil.which("kubectl")
    link = lab.ok(1, "readlink -f /usr/bin/kubectl").strip()
    version = json.loads(lab.ok(1, "kubectl version --client -o json"))["clientVersion"]
    if real is None:
        if os.environ.get("CI"):
            pytest.fail("no kubectl on this machine (CI needs the real client)")
        assert "labnode" in lab.ok(1, "cat /usr/bin/kubectl")
        return
    assert link.startswith("/") and "labnode" not in link
    with open(link, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    minor = int(version["minor"].rstrip("+"))
    versioned = [int(n.rsplit(".", 1)[1]) for n in os.listdir(os.path.dirname(os.path.realpath(real)))
                 if n.startswith("kubectl.1.")]
    if versioned:
        assert minor == max(v for v in versioned if v <= 34), version      # the package is 1.34.1
    # the real client is judged against the lab API server: it works with the admin kubeconfig on the host
    assert "lab-2" in lab.ok(1, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes")
