"""kubectl and helm in the lab: they work against the lab API server and fail like the real tools."""
import json
import time

import pytest

from k8slab import Lab, join_command, require_root, module_net

import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from labnode import k8s_store as S  # noqa: E402

NET = module_net("127.0.62")
KC = "kubectl --kubeconfig /etc/kubernetes/admin.conf "

APP = """apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
      volumes: [{name: cache, emptyDir: {}}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  color: blue
"""


@pytest.fixture(scope="module")
def lab():
    require_root()
    lb = Lab("kubectl-helm", NET, hosts=2).up()
    try:
        lb.prepare(1, 2)
        out = lb.ok(1, "kubeadm init --pod-network-cidr=10.244.0.0/16")
        lb.ok(2, join_command(out))
        yield lb
    finally:
        lb.down()


def test_kubectl_connection_errors(lab):
    p = lab.sh(1, "kubectl get nodes")
    assert p.returncode == 1
    assert "The connection to the server localhost:8080 was refused - did you specify the right host or port?" in p.stderr
    p = lab.sh(1, KC + "--server https://%s.12:6443 get nodes" % NET)
    assert p.returncode == 1 and "The connection to the server %s.12:6443 was refused" % NET in p.stderr
    p = lab.sh(1, "kubectl --kubeconfig /nope get nodes")
    assert p.returncode == 1 and "/nope" in p.stderr
    p = lab.sh(1, KC + "get node nosuch")
    assert p.returncode == 1 and 'Error from server (NotFound): nodes "nosuch" not found' in p.stderr
    # the API server speaks real TLS with the certificate kubeadm made
    assert lab.ok(1, "curl -fsS --cacert /etc/kubernetes/pki/ca.crt https://%s.11:6443/livez" % NET) == "ok"
    assert lab.sh(1, "curl -fsS https://%s.11:6443/livez" % NET).returncode != 0
    assert lab.ok(1, "curl -fsSk https://%s.11:6443/version" % NET).count("v1.34.1") == 1
    assert lab.ok(1, KC + "get --raw=/readyz") == "ok"
    # a kubeconfig that trusts another CA is refused like kubectl refuses it
    lab.ok(1, "sed \"s#certificate-authority-data: .*#certificate-authority-data: $(base64 -w0 "
              "/etc/kubernetes/pki/front-proxy-ca.crt)#\" /etc/kubernetes/admin.conf > /root/other-ca.conf")
    p = lab.sh(1, "kubectl --kubeconfig /root/other-ca.conf get nodes")
    assert p.returncode == 1 and "x509: certificate signed by unknown authority" in p.stderr, p.stderr
    # credentials count: a token that is not one, or a certificate the cluster CA did not sign (the front
    # proxy's: the TLS layer accepts that CA, the authenticator does not), are refused
    lab.ok(1, "python3 - <<'EOF'\nimport yaml\nc = yaml.safe_load(open('/etc/kubernetes/admin.conf'))\n"
              "c['users'][0]['user'] = {'token': 'abcdef.0123456789abcdef'}\n"
              "yaml.safe_dump(c, open('/root/anon.conf', 'w'))\n"
              "c = yaml.safe_load(open('/etc/kubernetes/admin.conf'))\nimport base64\n"
              "c['users'][0]['user']['client-certificate-data'] = base64.b64encode(open("
              "'/etc/kubernetes/pki/front-proxy-client.crt','rb').read()).decode()\n"
              "c['users'][0]['user']['client-key-data'] = base64.b64encode(open("
              "'/etc/kubernetes/pki/front-proxy-client.key','rb').read()).decode()\n"
              "yaml.safe_dump(c, open('/root/forged.conf', 'w'))\nEOF")
    for conf in ("/root/anon.conf", "/root/forged.conf"):
        p = lab.sh(1, "kubectl --kubeconfig %s get nodes" % conf)
        assert p.returncode == 1 and "You must be logged in to the server (Unauthorized)" in p.stderr, p.stderr
    # no credentials at all: anonymous, who may read /version but not the nodes
    ca = "--cacert /etc/kubernetes/pki/ca.crt https://%s.11:6443" % NET
    assert json.loads(lab.ok(1, "curl -sS %s/version" % ca))["gitVersion"] == "v1.34.1"
    out = json.loads(lab.ok(1, "curl -sS %s/api/v1/nodes" % ca))
    assert out["code"] == 403 and 'User "system:anonymous" cannot list resource "nodes"' in out["message"]
    # the admin kubeconfig works for a regular user once copied, as kubeadm init says
    lab.ok(1, "mkdir -p /home/ubuntu/.kube && cp /etc/kubernetes/admin.conf /home/ubuntu/.kube/config && "
              "chown -R ubuntu: /home/ubuntu/.kube")
    out = lab.ok(1, "su - ubuntu -c 'kubectl get nodes'")
    assert "lab-1" in out and "lab-2" in out and "NotReady" in out


def test_apply_validation(lab):
    lab.ok(1, "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: a\\n data: [\\n' > /root/bad.yaml")
    p = lab.sh(1, KC + "apply -f /root/bad.yaml")
    assert p.returncode == 1 and "error converting YAML to JSON" in p.stderr
    lab.ok(1, "printf 'metadata:\\n  name: a\\n' > /root/nokind.yaml")
    p = lab.sh(1, KC + "apply -f /root/nokind.yaml")
    assert p.returncode == 1 and "apiVersion not set, kind not set" in p.stderr
    lab.ok(1, "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {}\\n' > /root/noname.yaml")
    p = lab.sh(1, KC + "apply -f /root/noname.yaml")
    assert p.returncode == 1 and "resource name may not be empty" in p.stderr
    lab.ok(1, "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: a, namespace: ghost}\\n' > /root/ns.yaml")
    p = lab.sh(1, KC + "apply -f /root/ns.yaml")
    assert p.returncode == 1 and 'namespaces "ghost" not found' in p.stderr
    lab.ok(1, "printf 'apiVersion: operator.tigera.io/v1\\nkind: Installation\\nmetadata: {name: default}\\n' > /root/cr.yaml")
    p = lab.sh(1, KC + "apply -f /root/cr.yaml")
    assert p.returncode == 1 and 'no matches for kind "Installation" in version "operator.tigera.io/v1"' in p.stderr
    lab.ok(1, "printf 'apiVersion: apps/v1beta1\\nkind: Deployment\\nmetadata: {name: a}\\n' > /root/old.yaml")
    p = lab.sh(1, KC + "apply -f /root/old.yaml")
    assert p.returncode == 1 and 'no matches for kind "Deployment" in version "apps/v1beta1"' in p.stderr


def test_server_side_apply_get_delete(lab):
    lab.ok(1, "cat > /root/app.yaml <<'EOF'\n%sEOF" % APP)
    out = lab.ok(1, KC + "apply --server-side --force-conflicts -f /root/app.yaml")
    assert out.splitlines() == ["namespace/shop serverside-applied", "deployment.apps/web serverside-applied",
                                "configmap/settings serverside-applied"]
    # client-side apply over server-side apply: the objects lack kubectl's last-applied annotation, which it adds
    p = lab.sh(1, "cat /root/app.yaml | " + KC + "apply -f -")
    assert p.returncode == 0 and "configmap/settings configured" in p.stdout, p.stdout + p.stderr
    assert "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in p.stderr
    assert "configmap/settings unchanged" in lab.ok(1, "cat /root/app.yaml | " + KC + "apply -f -")
    cm = json.loads(lab.ok(1, KC + "get configmap settings -n shop -o json"))
    assert cm["data"] == {"color": "blue"} and cm["metadata"]["namespace"] == "shop"
    lab.ok(1, "sed -i 's/color: blue/color: red/' /root/app.yaml")
    assert "configmap/settings configured" in lab.ok(1, KC + "apply -f /root/app.yaml")
    assert json.loads(lab.ok(1, KC + "get cm settings -n shop -o json"))["data"]["color"] == "red"
    p = lab.sh(1, KC + "create -f /root/app.yaml")
    assert p.returncode == 1 and 'namespaces "shop" already exists' in p.stderr, p.stderr
    assert lab.ok(1, KC + "create namespace extra").strip() == "namespace/extra created"
    lab.ok(1, "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: loose}\\n' > /root/loose.yaml")
    assert lab.ok(1, KC + "apply -f /root/loose.yaml -n extra").strip() == "configmap/loose created"
    assert lab.kubectl(1, "get cm loose -n extra").returncode == 0
    p = lab.sh(1, KC + "apply -f /root/app.yaml -n extra")
    assert p.returncode == 1 and 'does not match the namespace "extra"' in p.stderr, p.stderr
    p = lab.sh(1, KC + "create namespace extra")
    assert p.returncode == 1 and '(AlreadyExists): namespaces "extra" already exists' in p.stderr, p.stderr
    # label selectors
    names = lambda sel: lab.ok(1, KC + "get nodes -o name -l '%s'" % sel).split()
    assert names("node-role.kubernetes.io/control-plane") == ["node/lab-1"]
    assert names("!node-role.kubernetes.io/control-plane") == ["node/lab-2"]
    assert names("kubernetes.io/hostname in (lab-2,lab-9)") == ["node/lab-2"]
    assert names("kubernetes.io/hostname!=lab-2") == ["node/lab-1"]
    cols = lab.ok(1, KC + "get nodes -o custom-columns=NAME:.metadata.name,IP:.status.addresses[0].address")
    assert cols.split("\n")[1].split() == ["lab-1", NET + ".11"]
    # no CNI yet: the deployment's pods cannot start
    pods = json.loads(lab.ok(1, KC + "get pods -A -o json"))["items"]
    web = [p for p in pods if p["metadata"]["namespace"] == "shop"]
    assert len(web) == 2 and all(p["status"]["phase"] == "Pending" for p in web)
    assert "lab-1" in lab.ok(1, KC + "get pods -n kube-system -o wide")
    p = lab.sh(1, KC + "wait --for=condition=Available deployment/web -n shop --timeout=1s")
    assert p.returncode == 1 and "timed out waiting for the condition on deployments/web" in p.stderr
    p = lab.sh(1, KC + "delete configmap nothere -n shop")
    assert p.returncode == 1 and 'configmaps "nothere" not found' in p.stderr
    assert lab.sh(1, KC + "delete configmap nothere -n shop --ignore-not-found").returncode == 0


def test_label_taint_cordon(lab):
    assert lab.ok(1, KC + "label node lab-2 tier=app").strip() == "node/lab-2 labeled"
    p = lab.sh(1, KC + "label node lab-2 tier=db")
    assert p.returncode == 1 and "'tier' already has a value (app), and --overwrite is false" in p.stderr
    lab.ok(1, KC + "label node lab-2 tier=db --overwrite")
    assert lab.ok(1, KC + "taint node lab-2 dedicated=db:NoSchedule").strip() == "node/lab-2 tainted"
    p = lab.sh(1, KC + "taint node lab-2 dedicated=web:NoSchedule")
    assert p.returncode == 1 and "--overwrite is false" in p.stderr
    lab.ok(1, KC + "taint node lab-2 dedicated=web:NoSchedule --overwrite")
    node = json.loads(lab.ok(1, KC + "get node lab-2 -o json"))
    assert node["metadata"]["labels"]["tier"] == "db"
    assert {"key": "dedicated", "value": "web", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert lab.ok(1, KC + "taint node lab-2 dedicated:NoSchedule-").strip() == "node/lab-2 untainted"
    p = lab.sh(1, KC + "taint node lab-2 dedicated:NoSchedule-")
    assert p.returncode == 1 and "not found" in p.stderr
    assert lab.ok(1, KC + "cordon lab-2").strip() == "node/lab-2 cordoned"
    assert "SchedulingDisabled" in lab.ok(1, KC + "get nodes")
    assert lab.ok(1, KC + "uncordon lab-2").strip() == "node/lab-2 uncordoned"


def test_helm_arrives_only_by_download(lab):
    assert lab.sh(1, "command -v helm").returncode != 0
    lab.ok(1, "cd /tmp && curl -fsSLO https://get.helm.sh/helm-v3.16.3-linux-amd64.tar.gz && "
              "curl -fsSL https://get.helm.sh/helm-v3.16.3-linux-amd64.tar.gz.sha256sum | sha256sum -c - && "
              "tar -zxf helm-v3.16.3-linux-amd64.tar.gz && install -m 0755 linux-amd64/helm /usr/local/bin/helm")
    assert lab.ok(1, "helm version --short").startswith("v3.16.3")


def test_helm_catalogue_and_values(lab):
    p = lab.sh(1, "helm repo add nope https://charts.example.com/")
    assert p.returncode == 1 and "is not a valid chart repository or cannot be reached" in p.stderr
    assert '"flannel" has been added' in lab.ok(1, "helm repo add flannel https://flannel-io.github.io/flannel/")
    assert "Successfully got an update" in lab.ok(1, "helm repo update")
    env = "KUBECONFIG=/etc/kubernetes/admin.conf "
    p = lab.sh(1, env + "helm upgrade --install flannel flannel/flannel --version v9.9.9 -n kube-flannel")
    assert p.returncode == 1 and 'chart "flannel" version "v9.9.9" not found' in p.stderr
    p = lab.sh(1, env + "helm upgrade --install x flannel/nosuch -n kube-flannel")
    assert p.returncode == 1 and 'chart "nosuch" not found' in p.stderr
    p = lab.sh(1, env + "helm upgrade --install x nosuchrepo/flannel")
    assert p.returncode == 1 and "repo nosuchrepo not found" in p.stderr
    lab.ok(1, "printf 'podCidr: [10.244\\n' > /root/bad-values.yaml")
    p = lab.sh(1, env + "helm upgrade --install flannel flannel/flannel -n kube-flannel --create-namespace "
                        "-f /root/bad-values.yaml")
    assert p.returncode == 1 and "failed to parse /root/bad-values.yaml" in p.stderr
    p = lab.sh(1, env + "helm upgrade --install flannel flannel/flannel -n kube-flannel")
    assert p.returncode == 1 and 'namespaces "kube-flannel" not found' in p.stderr
    # a pod CIDR that is not the cluster's: --wait runs out of time, nodes stay NotReady
    lab.ok(1, "printf 'podCidr: 10.99.0.0/16\\n' > /root/wrong.yaml")
    p = lab.sh(1, env + "helm upgrade --install flannel flannel/flannel --version v0.26.1 -n kube-flannel "
                        "--create-namespace -f /root/wrong.yaml --wait --timeout 3s")
    assert p.returncode == 1 and "context deadline exceeded" in p.stderr, p.stdout + p.stderr
    rel = json.loads(lab.ok(1, env + "helm list -A -o json"))
    assert [(r["name"], r["status"]) for r in rel] == [("flannel", "failed")]
    assert all(c["status"] == "False" for c in lab.nodes().values())
    # the right value: deployed, nodes Ready, values recorded
    lab.ok(1, "printf 'podCidr: 10.244.0.0/16\\nflannel:\\n  backend: vxlan\\n' > /root/values.yaml")
    out = lab.ok(1, env + "helm upgrade --install flannel flannel/flannel --version v0.26.1 -n kube-flannel "
                          "--create-namespace -f /root/values.yaml --wait --timeout 60s")
    assert "STATUS: deployed" in out and "REVISION: 2" in out
    assert lab.kubectl(1, "wait --for=condition=Ready node --all --timeout=30s").returncode == 0
    rel = json.loads(lab.ok(1, env + "helm list -A -o json"))
    assert rel[0]["name"] == "flannel" and rel[0]["status"] == "deployed" and rel[0]["chart"] == "flannel-v0.26.1"
    vals = json.loads(lab.ok(1, env + "helm get values flannel -n kube-flannel -o json"))
    assert vals == {"podCidr": "10.244.0.0/16", "flannel": {"backend": "vxlan"}}
    # server-side apply: fields helm manages cannot be taken over without --force-conflicts
    cm = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-flannel\n"
          "data:\n  net-conf.json: |\n    {\"Network\": \"10.244.0.0/16\", \"Backend\": {\"Type\": \"host-gw\"}}\n")
    lab.ok(1, "cat > /root/cm.yaml <<'EOF'\n%sEOF" % cm)
    p = lab.sh(1, KC + "apply --server-side -f /root/cm.yaml")
    assert p.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "helm" using v1: .data.net-conf.json' in p.stderr, p.stderr
    assert "configmap/kube-flannel-cfg serverside-applied" in lab.ok(
        1, KC + "apply --server-side --force-conflicts -f /root/cm.yaml")
    got = json.loads(lab.ok(1, KC + "get cm kube-flannel-cfg -n kube-flannel -o json --show-managed-fields"))
    assert "host-gw" in got["data"]["net-conf.json"] and "cni-conf.json" in got["data"]
    assert sorted(m["manager"] for m in got["metadata"]["managedFields"]) == ["helm", "kubectl"]
    # other catalogue charts install and their pods run once nodes are Ready
    lab.ok(1, "helm repo add metrics-server https://kubernetes-sigs.github.io/metrics-server/")
    out = lab.ok(1, env + "helm upgrade --install metrics-server metrics-server/metrics-server --version 3.12.2 "
                          "-n kube-system --wait --timeout 30s")
    assert "STATUS: deployed" in out
    pods = json.loads(lab.ok(1, KC + "get pods -n kube-system -o json"))["items"]
    ms = [p for p in pods if p["metadata"]["name"].startswith("metrics-server-")]
    assert ms and ms[0]["status"]["phase"] == "Running"
    assert 'release "metrics-server" uninstalled' in lab.ok(1, env + "helm uninstall metrics-server -n kube-system")
    p = lab.sh(1, env + "helm uninstall metrics-server -n kube-system")
    assert p.returncode == 1 and "not found" in p.stderr


def test_helm_wait_times_out_on_an_unbound_claim(lab):
    env = "KUBECONFIG=/etc/kubernetes/admin.conf "
    assert '"elastic" has been added' in lab.ok(1, "helm repo add elastic https://helm.elastic.co")
    install = (env + "helm upgrade --install elasticsearch elastic/elasticsearch --version 8.5.1 -n logging "
               "--create-namespace -f /root/es.yaml --wait --timeout %s")
    # the chart's default claim names no class, and a kubeadm cluster has no StorageClass: the claim stays
    # Pending, the pod unschedulable, and --wait runs out of time
    lab.ok(1, "printf 'replicas: 1\\n' > /root/es.yaml")
    p = lab.sh(1, install % "3s")
    assert p.returncode == 1 and "context deadline exceeded" in p.stderr, p.stdout + p.stderr
    pvc = json.loads(lab.ok(1, KC + "get pvc -n logging -o json"))["items"]
    assert [(c["metadata"]["name"], c["status"]["phase"]) for c in pvc] == [
        ("elasticsearch-master-elasticsearch-master-0", "Pending")]
    pod = json.loads(lab.ok(1, KC + "get pod elasticsearch-master-0 -n logging -o json"))
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    assert "pod has unbound immediate PersistentVolumeClaims" in pod["status"]["conditions"][0]["message"]
    # the claim template cannot change by an upgrade (the API server forbids it) ...
    lab.ok(1, "printf 'replicas: 1\\npersistence:\\n  enabled: false\\n' > /root/es.yaml")
    p = lab.sh(1, install % "30s")
    assert p.returncode == 1 and "spec: Forbidden: updates to statefulset spec" in p.stderr, p.stdout + p.stderr
    # ... but a fresh install without persistence runs
    lab.ok(1, env + "helm uninstall elasticsearch -n logging")
    assert "STATUS: deployed" in lab.ok(1, install % "30s")
    assert json.loads(lab.ok(1, KC + "get pvc -n logging -o json"))["items"] == []
    lab.ok(1, env + "helm uninstall elasticsearch -n logging --wait")


def test_two_helm_processes_at_once(lab):
    """bootstrap installs releases at the same time on one host, each on its own session: two `helm repo add`
    at once both keep their entry (helm locks the repositories file), and a release whose --wait still waits
    does not hold up another release, which installs and finishes meanwhile."""
    env = "KUBECONFIG=/etc/kubernetes/admin.conf "
    lab.ok(1, "helm repo add jaegertracing https://jaegertracing.github.io/helm-charts >/tmp/a.out 2>&1 & "
              "helm repo add kubernetes-dashboard https://kubernetes.github.io/dashboard/ >/tmp/b.out 2>&1 & "
              "wait")
    listed = json.loads(lab.ok(1, "helm repo list -o json"))
    assert {"jaegertracing", "kubernetes-dashboard"} <= {r["name"] for r in listed}, listed
    # elasticsearch waits on its unbound claim until its time-out; jaeger installs meanwhile
    timed = ("( {cmd} >/tmp/{n}.out 2>&1; echo \"$? $(date +%s.%N)\" >/tmp/{n}.end ) & ")
    slow = env + ("helm upgrade --install elasticsearch elastic/elasticsearch --version 8.5.1 -n slow "
                  "--create-namespace -f /root/es-slow.yaml --wait --timeout 8s")
    fast = env + ("helm upgrade --install jaeger jaegertracing/jaeger --version 3.3.1 -n tracing "
                  "--create-namespace --wait --timeout 60s")
    lab.ok(1, "printf 'replicas: 1\\n' > /root/es-slow.yaml")
    lab.ok(1, timed.format(cmd=slow, n="slow") + timed.format(cmd=fast, n="fast") + "wait")
    slow_rc, slow_end = lab.ok(1, "cat /tmp/slow.end").split()
    fast_rc, fast_end = lab.ok(1, "cat /tmp/fast.end").split()
    assert fast_rc == "0", lab.ok(1, "cat /tmp/fast.out")
    assert slow_rc == "1" and "context deadline exceeded" in lab.ok(1, "cat /tmp/slow.out")
    assert float(fast_end) < float(slow_end)
    releases = {r["name"]: r["status"] for r in json.loads(lab.ok(1, env + "helm list -A -o json"))}
    assert releases.get("jaeger") == "deployed" and releases.get("elasticsearch") == "failed", releases
    lab.ok(1, env + "helm uninstall jaeger -n tracing --wait")
    lab.ok(1, env + "helm uninstall elasticsearch -n slow --wait")


def test_drain(lab):
    # the shop pods now run (CNI is up); drain refuses DaemonSet and emptyDir pods until told otherwise
    assert "deployment.apps/web condition met" in lab.ok(
        1, KC + "wait --for=condition=Available deployment/web -n shop --timeout=10s")
    dep = json.loads(lab.ok(1, KC + "get deployment web -n shop -o json"))
    assert dep["status"]["readyReplicas"] == 2
    assert lab.ok(1, KC + "rollout status deployment/web -n shop --timeout=10s").strip() == \
        'deployment "web" successfully rolled out'
    assert "successfully rolled out" in lab.ok(1, KC + "rollout status ds/kube-proxy -n kube-system --timeout=10s")
    out = lab.ok(1, KC + "wait --for=jsonpath='{.status.phase}'=Running pod -l app=web -n shop --timeout=10s")
    assert out.count("condition met") == 2
    p = lab.sh(1, KC + "drain lab-2 --timeout=60s")
    assert p.returncode == 1
    assert "node/lab-2 cordoned" in p.stdout
    assert "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)" in p.stderr
    p = lab.sh(1, KC + "drain lab-2 --ignore-daemonsets --timeout=60s")
    assert p.returncode == 1 and "use --delete-emptydir-data to override" in p.stderr
    out = lab.ok(1, KC + "drain lab-2 --ignore-daemonsets --delete-emptydir-data --force --timeout=60s")
    assert "node/lab-2 drained" in out and "evicting pod shop/web-" in out
    pods = json.loads(lab.ok(1, KC + "get pods -n shop -o json"))["items"]
    assert pods and all(p["spec"].get("nodeName") != "lab-2" for p in pods)
    assert "SchedulingDisabled" in lab.ok(1, KC + "get nodes")
    lab.ok(1, KC + "uncordon lab-2")
    # delete -f removes what apply created
    out = lab.ok(1, KC + "delete -f /root/app.yaml")
    assert 'namespace "shop" deleted' in out
    p = lab.sh(1, KC + "get deployment web -n shop")
    assert p.returncode == 1 and "NotFound" in p.stderr
    # a Node deleted while its kubelet runs comes back at once: the kubelet registers it again (which is why
    # the kubeadm procedure resets a node before deleting it)
    uid = json.loads(lab.ok(1, KC + "get node lab-2 -o json"))["metadata"]["uid"]
    assert lab.ok(1, KC + "delete node lab-2").strip() == 'node "lab-2" deleted'
    deadline = time.time() + 3
    while time.time() < deadline:
        p = lab.sh(1, KC + "get node lab-2 -o json")
        if p.returncode == 0:
            break
        time.sleep(0.05)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["metadata"]["uid"] != uid
    assert "registering it again" in lab.ok(2, "cat /var/log/labnode/kubelet.log")
    # stopped first (what kubeadm reset does), it stays deleted
    lab.ok(2, "systemctl stop kubelet")
    assert lab.ok(1, KC + "delete node lab-2").strip() == 'node "lab-2" deleted'
    time.sleep(2)
    p = lab.sh(1, KC + "get node lab-2")
    assert p.returncode == 1 and 'nodes "lab-2" not found' in p.stderr


def _store(pod_subnet="10.244.0.0/16"):
    st = S.new_store()
    S.init_cluster(st, {"kubernetesVersion": "v1.34.1", "endpoint": "127.0.0.1:6443", "podSubnet": pod_subnet,
                        "caPem": ""}, "cp", 1000.0)
    return st


def test_calico_installation_must_fit_the_pod_subnet():
    st = _store("10.244.0.0/16")
    assert S.cni_state(st)[1] is False
    op = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tigera-operator",
                                                                     "namespace": "default"}, "spec": {}}
    S.put_object(st, op, 1000.0)
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "installations.operator.tigera.io"},
           "spec": {"group": "operator.tigera.io", "names": {"kind": "Installation"}, "scope": "Cluster",
                    "versions": [{"name": "v1"}]}}
    S.apply_objects(st, [crd], 1000.0, "x")
    inst = {"apiVersion": "operator.tigera.io/v1", "kind": "Installation", "metadata": {"name": "default"},
            "spec": {"calicoNetwork": {"ipPools": [{"cidr": "192.168.0.0/16"}]}}}
    S.apply_objects(st, [inst], 1000.0, "x")
    name, ok, msg = S.cni_state(st)
    assert name == "calico" and not ok and "not within the cluster pod subnet 10.244.0.0/16" in msg
    inst["spec"]["calicoNetwork"]["ipPools"][0]["cidr"] = "10.244.0.0/16"
    S.apply_objects(st, [inst], 1000.0, "x")
    assert S.cni_state(st)[:2] == ("calico", True)
    # a node whose kubelet reports a CNI config and a healthy runtime is Ready; a silent one is not
    r = S.heartbeat(st, "n1", {"runtimeOk": True, "cniConfig": None}, 1000.0)
    assert r["cni"]["file"] == "10-calico.conflist"
    S.heartbeat(st, "n1", {"runtimeOk": True, "cniConfig": "10-calico.conflist"}, 1001.0)
    assert S.node_ready(st, st["nodes"]["n1"], 1002.0)[0] == "True"
    calico = [p for p in S.list_pods(st, 1002.0) if p["metadata"]["namespace"] == "calico-system"]
    assert [(p["spec"]["nodeName"], p["status"]["phase"]) for p in calico] == [("n1", "Running")]
    # liveness is real time: a lab clock jump does not kill nodes, a silent kubelet does
    assert S.node_ready(st, st["nodes"]["n1"], 1001.0 + 86400)[0] == "True"
    assert S.node_ready(st, st["nodes"]["n1"], 1002.0, real=time.time() + S.HEARTBEAT_GRACE + 1)[0] == "Unknown"


def test_flannel_without_pod_subnet_never_ready():
    st = _store(None)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-system"},
          "data": {"net-conf.json": json.dumps({"Network": "10.244.0.0/16"})}}
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "kube-flannel-ds",
                                                                    "namespace": "kube-system"}, "spec": {}}
    S.apply_objects(st, [cm, ds], 1000.0, "x")
    name, ok, msg = S.cni_state(st)
    assert name == "flannel" and not ok and "--pod-network-cidr" in msg


def test_server_side_apply_field_ownership():
    st = _store()
    key = "|ConfigMap|kube-system|c"
    S.apply_objects(st, [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "kube-system"},
                          "data": {"a": "1", "b": "2"}}], 1000.0, "x", manager="helm")
    mine = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "kube-system"},
            "data": {"a": "9", "mine": "m"}}
    with pytest.raises(S.ApiError) as e:
        S.apply_objects(st, [mine], 1000.0, "x", ssa=True)
    assert 'conflict with "helm" using v1: .data.a' in e.value.message
    mine["data"]["a"] = "1"                       # same value: co-owned, no conflict
    S.apply_objects(st, [mine], 1000.0, "x", ssa=True)
    assert st["objects"][key]["data"] == {"a": "1", "b": "2", "mine": "m"}
    mine["data"]["a"] = "9"
    S.apply_objects(st, [mine], 1000.0, "x", ssa=True, force=True)
    assert [S.path_text(p) for p in st["fieldOwners"][key]["helm"]] == [".data.b"]
    del mine["data"]["mine"]                      # a field the applier stops setting goes away
    S.apply_objects(st, [mine], 1000.0, "x", ssa=True)
    assert st["objects"][key]["data"] == {"a": "9", "b": "2"}
    assert S.apply_objects(st, [mine], 1000.0, "x", ssa=True)[0]["status"] == "unchanged"
