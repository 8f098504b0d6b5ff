"""kubeadm in the lab refuses what real kubeadm refuses, and accepts the real procedure.

Each module runs its own lab (LAB_DIR /srv/lab-t-*, LAB_NET 127.0.6x) so it can run beside other labs."""
import json
import re
import socket
import time

import pytest

from k8slab import Lab, join_command, prepare_script, require_root, module_net

NET = module_net("127.0.61")
CERT_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
TOKEN = "abcdef.0123456789abcdef"

INIT_CONFIG = """apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: "%(token)s"
  ttl: 24h0m0s
certificateKey: %(key)s
localAPIEndpoint:
  advertiseAddress: %(net)s.11
  bindPort: 6443
nodeRegistration:
  name: lab-1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.34.1
controlPlaneEndpoint: "%(net)s.11:6443"
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
""" % {"token": TOKEN, "key": CERT_KEY, "net": NET}

KUBEADM_REPO_ONLY = r"""
mkdir -p -m 755 /etc/apt/keyrings
curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key | gpg --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /' > /etc/apt/sources.list.d/kubernetes.list
apt-get update -q >/dev/null && apt-get install -y kubelet kubeadm kubectl >/dev/null && echo INSTALLED
"""


@pytest.fixture(scope="module")
def lab():
    require_root()
    lb = Lab("kubeadm", NET, hosts=4).up()
    try:
        lb.prepare(1, 2, 3)
        assert "INSTALLED" in lb.ok(4, KUBEADM_REPO_ONLY)
        yield lb
    finally:
        lb.down()


def errors(out):
    return re.findall(r"\[ERROR ([^\]]+)\]", out)


def test_kubelet_crash_loops_until_kubeadm_configures_it(lab):
    states = lab.ok(1, "for i in 1 2 3 4 5 6 7 8; do systemctl is-active kubelet || true; sleep 0.3; done").split()
    assert "activating" in states, states
    log = lab.ok(1, "cat /var/log/labnode/kubelet.log 2>/dev/null || true")
    assert "/var/lib/kubelet/config.yaml" in log


def test_preflight_on_an_unprepared_host(lab):
    p = lab.sh(4, "kubeadm init")
    assert p.returncode == 1
    errs = errors(p.stderr)
    assert "Swap" in errs
    assert "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables" in errs
    assert "FileContent--proc-sys-net-ipv4-ip_forward" in errs
    assert "CRI" in errs
    assert "/proc/sys/net/bridge/bridge-nf-call-iptables does not exist" in p.stderr
    assert "--ignore-preflight-errors" in p.stderr
    # nothing was written
    assert lab.sh(4, "test -e /etc/kubernetes/admin.conf").returncode != 0
    # each fix removes exactly its error
    lab.ok(4, "swapoff -a")
    errs = errors(lab.sh(4, "kubeadm init").stderr)
    assert "Swap" not in errs and "CRI" in errs
    lab.ok(4, "modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1")
    errs = errors(lab.sh(4, "kubeadm init").stderr)
    assert errs == ["CRI"], errs
    # ignored errors become warnings but the rest still counts
    p = lab.sh(4, "kubeadm init --ignore-preflight-errors=CRI --dry-run")
    assert "[WARNING CRI]" in p.stderr


def test_swap_on_refuses_init(lab):
    lab.ok(1, "swapon /swap.img")
    try:
        p = lab.sh(1, "kubeadm init --pod-network-cidr=10.244.0.0/16")
        assert p.returncode == 1
        assert errors(p.stderr) == ["Swap"], p.stderr
        assert "running with swap on is not supported. Please disable swap" in p.stderr
    finally:
        lab.ok(1, "swapoff -a")


@pytest.mark.parametrize("doc,msg", [
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnett: 10.244.0.0/16\n",
     'strict decoding error: unknown field "networking.podSubnett"'),
    ("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration:\n  nmae: x\n",
     'strict decoding error: unknown field "nodeRegistration.nmae"'),
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfig\n", 'no kind "ClusterConfig" is registered'),
    ("apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n", "old API spec"),
    ("apiVersion: example.com/v1\nkind: Foo\n", 'no kind "Foo" is registered for version "example.com/v1"'),
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  extraArgs:\n    a: b\n",
     "cannot unmarshal object"),
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking: [\n", "error converting YAML"),
])
def test_strict_config_decoding(lab, doc, msg):
    lab.ok(1, "cat > /root/bad.yaml <<'EOF'\n%sEOF" % doc)
    p = lab.sh(1, "kubeadm init --config /root/bad.yaml")
    assert p.returncode == 1
    assert msg in p.stderr, p.stderr
    assert lab.ok(1, "ls /etc/kubernetes/manifests 2>/dev/null | wc -l").strip() == "0"


def test_config_cannot_be_mixed_with_flags(lab):
    lab.ok(1, "cat > /root/ok.yaml <<'EOF'\n%sEOF" % INIT_CONFIG)
    p = lab.sh(1, "kubeadm init --config /root/ok.yaml --pod-network-cidr 10.0.0.0/16")
    assert p.returncode == 1 and "can not mix '--config' with arguments [pod-network-cidr]" in p.stderr


def test_version_skew(lab):
    p = lab.sh(1, "kubeadm init --kubernetes-version v1.35.0")
    assert p.returncode == 1 and "is greater than the kubeadm version (v1.34.1)" in p.stderr, p.stderr
    p = lab.sh(1, "kubeadm init --kubernetes-version 1.32.9")
    assert p.returncode == 1 and "control plane version >= 1.33.0" in p.stderr, p.stderr
    p = lab.sh(1, "kubeadm init --kubernetes-version v1.33.5")
    assert p.returncode == 1 and errors(p.stderr) == ["KubeletVersion"], p.stderr
    assert 'Kubelet version: "1.34.1" Control plane version: "1.33.5"' in p.stderr
    assert lab.ok(1, "kubeadm version -o short").strip() == "v1.34.1"


def test_init_with_config_then_second_init_refused(lab):
    lab.ok(1, "cat > /root/init.yaml <<'EOF'\n%sEOF" % INIT_CONFIG)
    p = lab.sh(1, "kubeadm init --config /root/init.yaml --upload-certs")
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert "Your Kubernetes control-plane has initialized successfully!" in out
    assert "[upload-certs] Using certificate key:\n%s" % CERT_KEY in out
    digest = lab.ok(1, "openssl x509 -pubkey -in /etc/kubernetes/pki/ca.crt | openssl rsa -pubin -outform der "
                       "2>/dev/null | openssl dgst -sha256 -hex | sed 's/^.* //'").strip()
    cp = join_command(out, control_plane=True)
    worker = join_command(out)
    assert cp == ("kubeadm join %s.11:6443 --token %s --discovery-token-ca-cert-hash sha256:%s --control-plane "
                  "--certificate-key %s" % (NET, TOKEN, digest, CERT_KEY))
    assert worker == "kubeadm join %s.11:6443 --token %s --discovery-token-ca-cert-hash sha256:%s" % (NET, TOKEN, digest)
    assert "uploaded-certs will be deleted in two hours" in out
    for f in ("admin.conf", "kubelet.conf", "super-admin.conf", "pki/ca.crt", "pki/ca.key", "pki/sa.key",
              "manifests/kube-apiserver.yaml", "manifests/etcd.yaml"):
        lab.ok(1, "test -s /etc/kubernetes/" + f)
    # the API endpoint is a real TCP listener on the host's address
    with socket.create_connection((NET + ".11", 6443), timeout=2):
        pass
    assert lab.ok(1, "systemctl is-active kubelet").strip() == "active"
    # the tokens from the config are there
    assert TOKEN in lab.ok(1, "kubeadm token list")
    lab.ok(1, "kubeadm kubeconfig user --client-name=alice --org=kubeadm:cluster-admins > /root/alice.conf")
    assert "lab-1" in lab.ok(1, "kubectl --kubeconfig /root/alice.conf get nodes")
    exp = lab.ok(1, "kubeadm certs check-expiration")
    rows = {l.split()[0]: l for l in exp.splitlines() if l and not l.startswith("[")}
    assert "364d" in rows["admin.conf"] and "364d" in rows["apiserver"] and re.search(r"\b9y\b", rows["ca"])
    # a second init is refused by preflight
    p = lab.sh(1, "kubeadm init --config /root/init.yaml --upload-certs")
    assert p.returncode == 1
    errs = errors(p.stderr)
    assert "Port-6443" in errs and "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml" in errs
    assert "DirAvailable--var-lib-etcd" in errs


def test_check_expiration_reads_the_certificates_without_openssl(lab):
    """Like kubeadm (Go, ~20 ms), the check reads each certificate itself: no openssl start per certificate
    (the facts of every apply run it on each control plane). Its dates are the ones openssl reads."""
    want = {}
    for name, path in (("apiserver", "pki/apiserver.crt"), ("etcd-peer", "pki/etcd/peer.crt"),
                       ("front-proxy-client", "pki/front-proxy-client.crt"), ("ca", "pki/ca.crt")):
        end = lab.ok(1, "openssl x509 -noout -enddate -in /etc/kubernetes/" + path).strip().split("=", 1)[1]
        want[name] = time.strftime("%b %d, %Y %H:%M UTC", time.strptime(end.replace("  ", " "), "%b %d %H:%M:%S %Y GMT"))
    lab.ok(1, "mv /usr/bin/openssl /usr/bin/openssl.away")
    try:
        exp = lab.ok(1, "kubeadm certs check-expiration")
    finally:
        lab.ok(1, "mv /usr/bin/openssl.away /usr/bin/openssl")
    rows = {l.split()[0]: l for l in exp.splitlines() if l and not l.startswith("[")}
    for name in ("admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client",
                 "controller-manager.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server",
                 "front-proxy-client", "scheduler.conf", "super-admin.conf", "ca", "etcd-ca", "front-proxy-ca"):
        assert name in rows, exp
    for name, date in want.items():
        assert date in rows[name], (name, date, exp)


def test_join_discovery_refusals(lab):
    digest = lab.ok(1, "kubeadm token create --print-join-command").split("sha256:")[1].split()[0]
    tok = lab.ok(1, "kubeadm token create --ttl 2h").strip()
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", tok)
    ep = NET + ".11:6443"
    # wrong CA hash
    p = lab.sh(3, "kubeadm join %s --token %s --discovery-token-ca-cert-hash sha256:%s" % (ep, tok, "0" * 64))
    assert p.returncode == 1 and "none of the public keys \"sha256:%s\" are pinned" % digest in p.stderr, p.stderr
    # unknown token id
    p = lab.sh(3, "kubeadm join %s --token zzzzzz.zzzzzzzzzzzzzzzz --discovery-token-ca-cert-hash sha256:%s" % (ep, digest))
    assert p.returncode == 1 and 'could not find a JWS signature in the cluster-info ConfigMap for token ID "zzzzzz"' in p.stderr
    # right id, wrong secret
    p = lab.sh(3, "kubeadm join %s --token %s.zzzzzzzzzzzzzzzz --discovery-token-ca-cert-hash sha256:%s"
               % (ep, tok.split(".")[0], digest))
    assert p.returncode == 1 and "failed to verify JWS signature" in p.stderr
    # no CA pin at all
    p = lab.sh(3, "kubeadm join %s --token %s" % (ep, tok))
    assert p.returncode == 1 and "without caCertHashes can be unsafe" in p.stderr
    # nobody listening at the endpoint
    p = lab.sh(3, "kubeadm join %s.14:6443 --token %s --discovery-token-ca-cert-hash sha256:%s" % (NET, tok, digest))
    assert p.returncode == 1 and "connection refused" in p.stderr, p.stderr
    # nothing was left behind by the refusals
    assert lab.sh(3, "test -e /etc/kubernetes/kubelet.conf").returncode != 0


def test_token_create_list_delete_and_a_join_with_a_deleted_token(lab):
    digest = lab.ok(1, "kubeadm token create --print-join-command").split("sha256:")[1].split()[0]
    tok = lab.ok(1, "kubeadm token create --ttl 2h --description 'for a test'").strip()
    tid = tok.split(".")[0]
    rows = [l.split() for l in lab.ok(1, "kubeadm token list").splitlines()]
    assert rows[0][:4] == ["TOKEN", "TTL", "EXPIRES", "USAGES"]
    assert any(r[0] == tok and r[1] in ("1h", "2h") for r in rows[1:]), rows
    assert lab.ok(1, "kubeadm token delete %s" % tid).strip() == 'bootstrap token "%s" deleted' % tid
    assert tok not in lab.ok(1, "kubeadm token list")
    # gone from the cluster: discovery finds no signature for it
    p = lab.sh(3, "kubeadm join %s.11:6443 --token %s --discovery-token-ca-cert-hash sha256:%s" % (NET, tok, digest))
    assert p.returncode == 1
    assert 'could not find a JWS signature in the cluster-info ConfigMap for token ID "%s"' % tid in p.stderr
    # deleting it again, or a malformed one, fails as kubeadm does
    p = lab.sh(1, "kubeadm token delete %s" % tok)
    assert p.returncode == 1
    assert 'failed to delete bootstrap token "%s": secrets "bootstrap-token-%s" not found' % (tid, tid) in p.stderr
    p = lab.sh(1, "kubeadm token delete nope")
    assert p.returncode == 1 and "given token didn't match pattern" in p.stderr
    # created again under the same value, it works again (what bootstrap does when the cluster lost its token)
    assert lab.ok(1, "kubeadm token create %s --ttl 2h" % tok).strip() == tok
    assert tok in lab.ok(1, "kubeadm token list")
    lab.ok(1, "kubeadm token delete %s" % tok)


def test_control_plane_join_then_join_twice_refused(lab):
    p = lab.sh(1, "kubeadm token create --print-join-command")
    cmd = p.stdout.strip() + " --control-plane --certificate-key " + CERT_KEY
    p = lab.sh(2, cmd)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "a new control plane instance was created" in p.stdout
    lab.ok(2, "test -s /etc/kubernetes/pki/ca.key && test -s /etc/kubernetes/admin.conf")
    # the kubelet finished its TLS bootstrap (what join waited for): its client credential is there, 0600
    assert lab.ok(2, "stat -c %a /var/lib/kubelet/pki/kubelet-client-current.pem").strip() == "600"
    # the joined control plane serves the API on its own address too
    assert "lab-2" in lab.ok(2, "kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://%s.12:6443 "
                                "get nodes" % NET)
    node = json.loads(lab.kubectl(1, "get node lab-2 -o json").stdout)
    assert "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in node["spec"]["taints"]
    # joining twice is refused
    p = lab.sh(2, cmd)
    assert p.returncode == 1
    assert "FileAvailable--etc-kubernetes-kubelet.conf" in errors(p.stderr)


def test_expired_token_and_certificate_key(lab):
    ep = NET + ".11:6443"
    short = lab.ok(1, "kubeadm token create --ttl 1h").strip()
    digest = lab.ok(1, "kubeadm token create --print-join-command").split("sha256:")[1].split()[0]
    secrets = lab.kubectl(1, "get secrets -n kube-system -o name").stdout.split()
    assert "secret/kubeadm-certs" in secrets and "secret/bootstrap-token-" + short[:6] in secrets
    # tokens are Secrets: deleting the Secret revokes the token
    gone = lab.ok(1, "kubeadm token create").strip()
    assert lab.kubectl(1, "delete secret bootstrap-token-%s -n kube-system" % gone[:6]).returncode == 0
    assert gone not in lab.ok(1, "kubeadm token list")
    lab.clock("90m")
    assert short not in lab.ok(1, "kubeadm token list")
    p = lab.sh(3, "kubeadm join %s --token %s --discovery-token-ca-cert-hash sha256:%s" % (ep, short, digest))
    assert p.returncode == 1 and "could not find a JWS signature" in p.stderr
    # 2h30 after init: the uploaded certificates are gone
    lab.clock("1h")
    fresh = lab.ok(1, "kubeadm token create --ttl 1h").strip()
    cp = "kubeadm join %s --token %s --discovery-token-ca-cert-hash sha256:%s --control-plane --certificate-key %%s" % (
        ep, fresh, digest)
    assert "secret/kubeadm-certs" not in lab.kubectl(1, "get secrets -n kube-system -o name").stdout
    p = lab.sh(3, cp % CERT_KEY)
    assert p.returncode == 1
    assert 'Secret "kubeadm-certs" was not found in the "kube-system" Namespace. This Secret might have expired' in p.stderr
    # re-upload with a new key: a wrong key is refused, the new one works
    out = lab.ok(1, "kubeadm init phase upload-certs --upload-certs")
    key = out.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{64}", key) and key != CERT_KEY
    p = lab.sh(3, cp % CERT_KEY)
    assert p.returncode == 1 and "message authentication failed" in p.stderr
    assert lab.sh(3, "test -e /etc/kubernetes/kubelet.conf").returncode != 0
    # the product's way: a JoinConfiguration file
    join_cfg = """apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "%s"
    token: "%s"
    caCertHashes: ["sha256:%s"]
nodeRegistration:
  name: lab-3
controlPlane:
  localAPIEndpoint:
    advertiseAddress: %s.13
    bindPort: 6443
  certificateKey: "%s"
""" % (ep, fresh, digest, NET, key)
    lab.ok(3, "cat > /root/join.yaml <<'EOF'\n%sEOF" % join_cfg)
    p = lab.sh(3, "kubeadm join --config /root/join.yaml --token x")
    assert p.returncode == 1 and "can not mix '--config' with arguments [token]" in p.stderr
    p = lab.sh(3, "kubeadm join --config /root/join.yaml")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "a new control plane instance was created" in p.stdout
    assert set(lab.nodes()) == {"lab-1", "lab-2", "lab-3"}


def test_cni_decides_readiness(lab):
    nodes = lab.nodes()
    assert all(c["status"] == "False" for c in nodes.values())
    assert "cni plugin not initialized" in nodes["lab-1"]["message"]
    p = lab.kubectl(1, "wait --for=condition=Ready node --all --timeout=2s")
    assert p.returncode == 1 and "timed out waiting for the condition" in p.stderr
    # flannel with a Network that is not the cluster's pod subnet: still NotReady, with a readable reason
    manifest = lab.ok(1, "curl -fsSL https://github.com/flannel-io/flannel/releases/download/v0.26.1/kube-flannel.yml")
    assert '"Network": "10.244.0.0/16"' in manifest
    lab.ok(1, "curl -fsSL https://github.com/flannel-io/flannel/releases/download/v0.26.1/kube-flannel.yml "
              "| sed 's#10.244.0.0/16#10.99.0.0/16#' > /root/flannel-bad.yml")
    lab.ok(1, "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f /root/flannel-bad.yml")
    time.sleep(2.5)
    nodes = lab.nodes()
    assert all(c["status"] == "False" for c in nodes.values())
    assert "does not match the cluster pod subnet 10.244.0.0/16" in nodes["lab-3"]["message"]
    pods = json.loads(lab.kubectl(1, "get pods -n kube-flannel -o json").stdout)["items"]
    assert pods and all(p["status"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason")
                        == "CrashLoopBackOff" for p in pods)
    assert lab.sh(2, "ls /etc/cni/net.d 2>/dev/null").stdout.strip() == ""
    # flannel's images: lab-3 has them already (pulled ahead), the others not yet
    flannel = ["docker.io/flannel/flannel-cni-plugin:v1.5.1-flannel2", "docker.io/flannel/flannel:v0.26.1"]
    lab.ok(3, " && ".join("crictl pull %s >/dev/null" % i for i in flannel))
    # the right one: Ready everywhere, CNI config written on every node
    p = lab.sh(1, "curl -fsSL https://github.com/flannel-io/flannel/releases/download/v0.26.1/kube-flannel.yml | "
                  "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -")
    assert p.returncode == 0 and "configmap/kube-flannel-cfg configured" in p.stdout, p.stdout + p.stderr
    p = lab.kubectl(1, "wait --for=condition=Ready node --all --timeout=30s")
    assert p.returncode == 0, p.stderr
    for h in (1, 2, 3):
        lab.ok(h, "test -s /etc/cni/net.d/10-flannel.conflist")
        # the DaemonSet pod's images are in every node's store: pulled by its kubelet where absent, only there
        store = lab.ok(h, "crictl images | awk 'NR > 1 { print $1 \":\" $2 }'").split()
        assert all(i in store for i in flannel), (h, store)
        pulled = [l.split('image="')[1].rstrip('"') for l in
                  lab.ok(h, "journalctl -u kubelet --no-pager").splitlines() if '"Pulled image"' in l]
        assert pulled == ([] if h == 3 else flannel), (h, pulled)


def test_reset_cleans_what_reset_cleans(lab):
    p = lab.sh(3, "kubeadm reset -f")
    assert p.returncode == 0, p.stderr
    assert "The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d" in p.stdout
    assert "does not reset or clean up iptables rules" in p.stdout
    lab.ok(3, "test ! -e /etc/kubernetes/admin.conf && test ! -e /etc/kubernetes/kubelet.conf && "
              "test ! -e /etc/kubernetes/pki/ca.crt && test -z \"$(ls -A /etc/kubernetes/manifests)\" && "
              "test -z \"$(ls -A /var/lib/kubelet)\"")
    lab.ok(3, "test -s /etc/cni/net.d/10-flannel.conflist")
    assert lab.sh(3, "systemctl is-active kubelet").stdout.strip() != "active"
    # its API server is gone; the Node object is not deleted by reset
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            socket.create_connection((NET + ".13", 6443), timeout=1).close()
            time.sleep(0.2)
        except OSError:
            break
    else:
        pytest.fail("the API server of lab-3 still answers after reset")
    assert "lab-3" in lab.nodes()
    # its kubelet is gone, but for the node-monitor grace period the old Node still looks Ready:
    # a re-join under the same name is refused until the Node is deleted (as with real kubeadm)
    p = lab.sh(1, "kubeadm token create --print-join-command")
    again = lab.sh(3, p.stdout.strip())
    assert again.returncode == 1 and 'a Node with name "lab-3" and status "Ready" already exists' in again.stderr
    assert lab.sh(3, "test -e /etc/kubernetes/kubelet.conf").returncode != 0
    assert lab.kubectl(1, "delete node lab-3").stdout.strip() == 'node "lab-3" deleted'
    cmd = lab.ok(1, "kubeadm token create --print-join-command").split()
    join_cfg = """apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "%s"
    token: "%s"
    caCertHashes: ["%s"]
nodeRegistration:
  name: worker-3
  kubeletExtraArgs:
  - name: node-labels
    value: tier=app
""" % (cmd[2], cmd[4], cmd[6])
    # a reserved label in --node-labels makes the kubelet refuse to start
    lab.ok(3, "cat > /root/join.yaml <<'EOF'\n%sEOF" % join_cfg.replace("tier=app", "node-role.kubernetes.io/worker="))
    p = lab.sh(3, "kubeadm join --config /root/join.yaml")
    assert p.returncode == 1 and "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels" in p.stderr
    lab.ok(3, "kubeadm reset -f >/dev/null")
    lab.ok(3, "cat > /root/join.yaml <<'EOF'\n%sEOF" % join_cfg)
    p = lab.sh(3, "kubeadm join --config /root/join.yaml")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "This node has joined the cluster" in p.stdout
    assert set(lab.nodes()) == {"lab-1", "lab-2", "worker-3"}
    node = json.loads(lab.kubectl(1, "get node worker-3 -o json").stdout)
    assert node["metadata"]["labels"]["tier"] == "app"


@pytest.fixture(scope="module")
def small():
    """A 2-host lab whose hosts have 1 CPU and 1 GB: too small for a control plane."""
    require_root()
    lb = Lab("kubeadm-small", "127.0.63", hosts=2, args=["--cpus", "1", "--memory", "1024"]).up()
    try:
        lb.prepare(1, 2)
        yield lb
    finally:
        lb.down()


def test_cpu_and_memory_minimums_on_control_planes(small):
    p = small.sh(1, "kubeadm init --pod-network-cidr=10.244.0.0/16")
    assert p.returncode == 1
    assert set(errors(p.stderr)) == {"NumCPU", "Mem"}, p.stderr
    assert "the number of available CPUs 1 is less than the required 2" in p.stderr
    assert "the system RAM (1024 MB) is less than the minimum 1700 MB" in p.stderr


def test_systemd_cgroup_driver_required_and_reset_reinit(small):
    small.ok(1, "sed -i 's/SystemdCgroup = true/SystemdCgroup = false/' /etc/containerd/config.toml && "
                "systemctl restart containerd")
    p = small.sh(1, "kubeadm init --pod-network-cidr=10.244.0.0/16 --ignore-preflight-errors=NumCPU,Mem")
    assert p.returncode == 1
    assert "[WARNING NumCPU]" in p.stderr
    assert "error execution phase wait-control-plane" in p.stderr, p.stderr
    small.ok(1, "sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml && "
                "systemctl restart containerd && kubeadm reset -f >/dev/null")
    # an advertise address that is not the host's: the API server cannot bind it
    p = small.sh(1, "kubeadm init --apiserver-advertise-address 127.0.63.99 --ignore-preflight-errors=NumCPU,Mem")
    assert p.returncode == 1 and "kube-apiserver check failed at https://127.0.63.99:6443/livez" in p.stderr, p.stderr
    small.ok(1, "kubeadm reset -f >/dev/null")
    p = small.sh(1, "kubeadm init --pod-network-cidr=10.244.0.0/16 --ignore-preflight-errors=NumCPU,Mem "
                    "--skip-phases=addon/kube-proxy")
    assert p.returncode == 0, p.stderr
    assert "Applied essential addon: CoreDNS" in p.stdout and "addon: kube-proxy" not in p.stdout
    assert small.kubectl(1, "get ds kube-proxy -n kube-system").returncode == 1
    # worker joins have no CPU/memory minimum; without controlPlaneEndpoint no control plane can join
    out = p.stdout
    assert "--control-plane" not in out
    key = small.ok(1, "kubeadm init phase upload-certs --upload-certs").strip().splitlines()[-1]
    cmd = join_command(out)
    p = small.sh(2, cmd + " --control-plane --certificate-key " + key)
    assert p.returncode == 1
    assert "unable to add a new control plane instance to a cluster that doesn't have a stable " \
           "controlPlaneEndpoint address" in p.stderr, p.stderr
    p = small.sh(2, cmd)
    assert p.returncode == 0, p.stderr
    assert set(small.nodes()) == {"lab-1", "lab-2"}


UPGRADE_KUBEADM = r"""
sed -i 's#/v1.33/#/v1.34/#' /etc/apt/sources.list.d/kubernetes.list
apt-get update -q >/dev/null
apt-mark unhold kubeadm >/dev/null && apt-get install -y kubeadm=1.34.1-1.1 >/dev/null && apt-mark hold kubeadm >/dev/null
kubeadm version -o short
"""
UPGRADE_KUBELET = r"""
apt-mark unhold kubelet kubectl >/dev/null && apt-get install -y kubelet=1.34.1-1.1 kubectl=1.34.1-1.1 >/dev/null
apt-mark hold kubelet kubectl >/dev/null
systemctl daemon-reload && systemctl restart kubelet
"""


@pytest.fixture(scope="module")
def old():
    """A 1 + 1 cluster at v1.33.5, to upgrade."""
    require_root()
    lb = Lab("kubeadm-upgrade", "127.0.65", hosts=2).up()
    try:
        lb.prepare(1, 2, script=prepare_script("1.33", "1.33.5-1.1"))
        out = lb.ok(1, "kubeadm init --pod-network-cidr=10.244.0.0/16")
        lb.ok(2, join_command(out))
        lb.ok(1, "curl -fsSL https://github.com/flannel-io/flannel/releases/download/v0.26.1/kube-flannel.yml | "
                 "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -")
        assert lb.kubectl(1, "wait --for=condition=Ready node --all --timeout=30s").returncode == 0
        yield lb
    finally:
        lb.down()


def test_upgrade_minor_version(old):
    kc = "kubectl --kubeconfig /etc/kubernetes/admin.conf "
    assert "Server Version: v1.33.5" in old.ok(1, kc + "version")
    # the old kubeadm cannot upgrade to a version newer than itself
    p = old.sh(1, "kubeadm upgrade apply v1.34.1 -y")
    assert p.returncode == 1 and "is higher than the kubeadm version" in p.stderr, p.stderr
    assert old.ok(1, UPGRADE_KUBEADM).strip() == "v1.34.1"
    plan = old.ok(1, "kubeadm upgrade plan")
    assert "kubeadm upgrade apply v1.34.1" in plan
    p = old.sh(1, "kubeadm upgrade apply v1.35.0 -y")
    assert p.returncode == 1 and "higher than the kubeadm version" in p.stderr
    out = old.ok(1, "kubeadm upgrade apply v1.34.1 -y")
    assert '[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "v1.34.1"' in out
    assert "Server Version: v1.34.1" in old.ok(1, kc + "version")
    assert "kube-apiserver:v1.34.1" in old.ok(1, "cat /etc/kubernetes/manifests/kube-apiserver.yaml")
    # the kubelet reports its new version only after the package upgrade and a restart
    old.ok(1, kc + "drain lab-1 --ignore-daemonsets --delete-emptydir-data")
    old.ok(1, UPGRADE_KUBELET)
    old.ok(1, kc + "uncordon lab-1")
    old.ok(2, UPGRADE_KUBEADM)
    assert "successfully upgraded" in old.ok(2, "kubeadm upgrade node")
    old.ok(2, UPGRADE_KUBELET)
    deadline = time.time() + 20
    while time.time() < deadline:
        nodes = json.loads(old.kubectl(1, "get nodes -o json").stdout)["items"]
        if all(n["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.1" for n in nodes):
            break
        time.sleep(0.5)
    assert {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == \
        {"lab-1": "v1.34.1", "lab-2": "v1.34.1"}
    assert old.kubectl(1, "wait --for=condition=Ready node --all --timeout=30s").returncode == 0
    assert "Awesome, you're up-to-date!" in old.ok(1, "kubeadm upgrade plan")
