"""Simulated kubeadm: init, join, reset, token, init phase upload-certs, certs certificate-key, version.

Runs the real preflight checks against the simulated machine state, writes the real files, starts the
kubelet (which runs the control plane's static pods: the lab kube-apiserver daemon) and talks to the API
server over TCP. Messages follow real kubeadm's wording."""
import argparse
import glob
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time

import yaml

from . import common
from . import k8s_client as C
from . import k8s_config as CFG
from . import k8s_pki as PKI
from . import k8s_store as S

K8S = "/etc/kubernetes"
MANIFESTS = os.path.join(K8S, "manifests")
KUBELET_DIR = "/var/lib/kubelet"
ETCD_DIR = "/var/lib/etcd"
STACK = "To see the stack trace of this error execute with --v=5 or higher"


class KubeadmError(Exception):
    pass


def die(msg):
    common.fail(msg.rstrip("\n") + "\n" + STACK)


def say(line=""):
    common.out(line + "\n")


def kubeadm_version():
    v = common.package_version("kubeadm") or os.environ.get("LAB_KUBEADM_VERSION", "1.34.1")
    return "v" + v.split("-")[0].split("~")[0].lstrip("v")


def control_plane_images(v):
    """What `kubeadm config images list` prints for Kubernetes `v` (the lab's kubeadm knows one set of
    add-on versions)."""
    return ["registry.k8s.io/kube-apiserver:" + v, "registry.k8s.io/kube-controller-manager:" + v,
            "registry.k8s.io/kube-scheduler:" + v, "registry.k8s.io/kube-proxy:" + v,
            "registry.k8s.io/coredns/coredns:v1.12.1", "registry.k8s.io/pause:3.10.1",
            "registry.k8s.io/etcd:3.6.4-0"]


def pull_images(refs):
    """The images a command needs, pulled through containerd's store: only missing ones cost time."""
    from labnode import os_containerd
    try:
        return os_containerd.pull(refs)
    except OSError as e:
        die("failed to create new CRI runtime service: validate service connection: " + str(e))


def worker_images(v):
    """A worker's images: the pod sandbox and kube-proxy (the kubelet pulls them for its first pods as soon
    as the node has joined; the lab charges them to the join, whose node is Ready only after)."""
    return [i for i in control_plane_images(v) if "/pause:" in i or "/kube-proxy:" in i]


def parse_version(v):
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)$", str(v).strip())
    if not m:
        return None
    return tuple(int(x) for x in m.groups())


def wait_seconds(real):
    """How long a wait that takes up to `real` seconds in real life may take in the lab."""
    return 60.0 if common.profile() != "realistic" else max(60.0, real * float(common.host_info().get("scale", 0.05)))


class Doomed:
    """Ends a wait early once its outcome is certain: `cond()` has held for `grace` seconds (the lab's
    components react within a second, so nothing can change after that; real kubeadm just waits 4m)."""

    def __init__(self, cond, grace=6.0):
        self.cond, self.grace, self.since = cond, grace, None

    def __call__(self):
        if not self.cond():
            self.since = None
            return False
        self.since = self.since or time.time()
        return time.time() - self.since >= self.grace


def systemctl(*args):
    try:
        return subprocess.run(["systemctl"] + list(args), capture_output=True, text=True)
    except FileNotFoundError:
        return subprocess.CompletedProcess(args, 1, "", "systemctl: not found")


# ------------------------------------------------------------------ preflight
def port_free(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # like Go's net.Listen: TIME_WAIT is no conflict
    try:
        s.bind((addr, port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def preflight(control_plane, ignore, bind_port=6443, fail_swap_on=True, join=False, cp_only=False, cp_version=None):
    """Returns (errors, warnings) as (name, message) lists, after applying --ignore-preflight-errors.
    `cp_only`: just the checks a joining control plane runs after discovery."""
    if cp_only:
        errs, warns = _cp_checks(bind_port), []
        return _apply_ignore(errs, warns, ignore)
    checks = []
    if not common.is_root():
        checks.append(("IsPrivilegedUser", "user is not running as root"))
    if control_plane:
        cpus = int(common.host_info().get("cpus") or os.cpu_count() or 1)
        if cpus < 2:
            checks.append(("NumCPU", "the number of available CPUs %d is less than the required 2" % cpus))
        mem = int(common.host_info().get("memoryMB") or 4096)
        if mem < 1700:
            checks.append(("Mem", "the system RAM (%d MB) is less than the minimum 1700 MB" % mem))
    if shutil.which("kubelet") is None:
        checks.append(("KubeletVersion", 'couldn\'t get kubelet version: cannot execute \'kubelet --version\': '
                       'exec: "kubelet": executable file not found in $PATH'))
    else:
        kl = parse_version((common.package_version("kubelet") or "").split("-")[0])
        cpv = parse_version(cp_version or kubeadm_version())
        if kl and cpv:
            if kl[:2] > cpv[:2]:
                checks.append(("KubeletVersion", 'the kubelet version is higher than the control plane version. This '
                               'is not a supported version skew and may lead to a malfunctional cluster. Kubelet '
                               'version: "%d.%d.%d" Control plane version: "%d.%d.%d"' % (kl + cpv)))
            elif kl[:2] < (cpv[0], cpv[1] - 3):
                checks.append(("KubeletVersion", 'Kubelet version "%d.%d.%d" is lower than kubeadm can support. '
                               'Please upgrade kubelet' % kl))
    ok = common.package_version("containerd") is not None and common.service_active("containerd")
    if not ok:
        checks.append(("CRI", 'container runtime is not running: output: time="%s" level=fatal msg="validate '
                       'service connection: validate CRI v1 runtime API for endpoint '
                       '\\"unix:///var/run/containerd/containerd.sock\\": rpc error: code = Unavailable desc = '
                       'connection error: desc = \\"transport: Error while dialing: dial unix '
                       '/var/run/containerd/containerd.sock: connect: no such file or directory\\""\n, error: '
                       'exit status 1' % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
    addr = common.host_address()
    ports = [bind_port, 10259, 10257, 10250, 2379, 2380] if control_plane else [10250]
    for p in ports:
        if not port_free(addr, p):
            checks.append(("Port-%d" % p, "Port %d is in use" % p))
    files = []
    if control_plane:
        files += [os.path.join(MANIFESTS, c + ".yaml") for c in
                  ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")]
    if join:
        files += [os.path.join(K8S, "kubelet.conf"), os.path.join(K8S, "bootstrap-kubelet.conf"),
                  os.path.join(K8S, "pki", "ca.crt")]
    for f in files:
        if os.path.exists(f):
            checks.append(("FileAvailable-" + f.replace("/", "-"), "%s already exists" % f))
    if control_plane and not join:
        if os.path.isdir(MANIFESTS) and os.listdir(MANIFESTS):
            checks.append(("DirAvailable--etc-kubernetes-manifests", "/etc/kubernetes/manifests is not empty"))
    if control_plane and os.path.isdir(ETCD_DIR) and os.listdir(ETCD_DIR):
        checks.append(("DirAvailable--var-lib-etcd", "/var/lib/etcd is not empty"))
    br = common.sysctl_value("net.bridge.bridge-nf-call-iptables")
    if br is None:
        checks.append(("FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
                       "/proc/sys/net/bridge/bridge-nf-call-iptables does not exist"))
    elif br.strip() != "1":
        checks.append(("FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
                       "/proc/sys/net/bridge/bridge-nf-call-iptables contents are not set to 1"))
    fw = common.sysctl_value("net.ipv4.ip_forward")
    if (fw or "0").strip() != "1":
        checks.append(("FileContent--proc-sys-net-ipv4-ip_forward",
                       "/proc/sys/net/ipv4/ip_forward contents are not set to 1"))
    warnings = []
    if common.swap_on():
        if fail_swap_on:
            checks.append(("Swap", "running with swap on is not supported. Please disable swap"))
        else:
            warnings.append(("Swap", "swap is supported for cgroup v2 only. The kubelet must be properly "
                             "configured to use swap. Please refer to https://kubernetes.io/docs/concepts/"
                             "architecture/nodes/#swap-memory, or disable swap on the node"))
    if not common.service_enabled("kubelet"):
        warnings.append(("Service-Kubelet", "kubelet service is not enabled, please run 'systemctl enable "
                         "kubelet.service'"))
    return _apply_ignore(checks, warnings, ignore)


def _cp_checks(bind_port):
    checks = []
    cpus = int(common.host_info().get("cpus") or os.cpu_count() or 1)
    if cpus < 2:
        checks.append(("NumCPU", "the number of available CPUs %d is less than the required 2" % cpus))
    mem = int(common.host_info().get("memoryMB") or 4096)
    if mem < 1700:
        checks.append(("Mem", "the system RAM (%d MB) is less than the minimum 1700 MB" % mem))
    addr = common.host_address()
    for p in (bind_port, 10259, 10257, 2379, 2380):
        if not port_free(addr, p):
            checks.append(("Port-%d" % p, "Port %d is in use" % p))
    for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
        f = os.path.join(MANIFESTS, c + ".yaml")
        if os.path.exists(f):
            checks.append(("FileAvailable-" + f.replace("/", "-"), "%s already exists" % f))
    if os.path.isdir(ETCD_DIR) and os.listdir(ETCD_DIR):
        checks.append(("DirAvailable--var-lib-etcd", "/var/lib/etcd is not empty"))
    return checks


def _apply_ignore(checks, warnings, ignore):
    ign = {i.strip().lower() for i in ignore if i.strip()}
    errors = []
    for name, msg in checks:
        if "all" in ign or name.lower() in ign:
            warnings.append((name, msg))
        else:
            errors.append((name, msg))
    return errors, warnings


def run_preflight(control_plane, ignore, **kw):
    say("[preflight] Running pre-flight checks before initializing the new control plane instance"
        if kw.get("cp_only") else "[preflight] Running pre-flight checks")
    errors, warnings = preflight(control_plane, ignore, **kw)
    for name, msg in warnings:
        sys.stderr.write("\t[WARNING %s]: %s\n" % (name, msg))
    if errors:
        lines = ["error execution phase preflight: [preflight] Some fatal errors occurred:"]
        lines += ["\t[ERROR %s]: %s" % (n, m) for n, m in errors]
        lines.append("[preflight] If you know what you are doing, you can make a check non-fatal with "
                     "`--ignore-preflight-errors=...`")
        die("\n".join(lines))


# ------------------------------------------------------------------ files
def static_manifest(component, node, address, port, cluster, lab_annotations=None, initial_cluster=None,
                    existing=False):
    cmd = {"kube-apiserver": ["kube-apiserver", "--advertise-address=%s" % address, "--secure-port=%d" % port,
                              "--allow-privileged=true", "--authorization-mode=Node,RBAC",
                              "--client-ca-file=/etc/kubernetes/pki/ca.crt", "--enable-bootstrap-token-auth=true",
                              "--etcd-servers=https://127.0.0.1:2379",
                              "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
                              "--service-cluster-ip-range=%s" % cluster.get("serviceSubnet", "10.96.0.0/12"),
                              "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
                              "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key"],
           "kube-controller-manager": ["kube-controller-manager", "--allocate-node-cidrs=%s"
                                       % ("true" if cluster.get("podSubnet") else "false")] +
                                      (["--cluster-cidr=%s" % cluster["podSubnet"]] if cluster.get("podSubnet") else []) +
                                      ["--kubeconfig=/etc/kubernetes/controller-manager.conf", "--leader-elect=true"],
           "kube-scheduler": ["kube-scheduler", "--kubeconfig=/etc/kubernetes/scheduler.conf", "--leader-elect=true"],
           "etcd": ["etcd", "--advertise-client-urls=https://%s:2379" % address,
                    "--cert-file=/etc/kubernetes/pki/etcd/server.crt", "--client-cert-auth=true",
                    "--data-dir=/var/lib/etcd", "--initial-advertise-peer-urls=https://%s:2380" % address,
                    "--key-file=/etc/kubernetes/pki/etcd/server.key",
                    "--listen-client-urls=https://127.0.0.1:2379,https://%s:2379" % address,
                    "--listen-peer-urls=https://%s:2380" % address, "--name=%s" % node,
                    "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt"]}[component]
    if component == "etcd":
        # as kubeadm writes them: the members the new etcd starts with (init: itself; a control-plane join: the
        # current members and itself, joining the existing cluster)
        i = cmd.index("--initial-advertise-peer-urls=https://%s:2380" % address) + 1
        cmd[i:i] = ["--initial-cluster=%s" % (initial_cluster or "%s=https://%s:2380" % (node, address))] + \
            (["--initial-cluster-state=existing"] if existing else [])
    image = "registry.k8s.io/%s:%s" % (component, cluster["kubernetesVersion"]) if component != "etcd" \
        else "registry.k8s.io/etcd:3.6.4-0"
    md = {"name": component, "namespace": "kube-system",
          "labels": {"component": component, "tier": "control-plane"}}
    if lab_annotations:
        md["annotations"] = lab_annotations
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": md,
           "spec": {"hostNetwork": True, "priorityClassName": "system-node-critical",
                    "containers": [{"name": component, "image": image, "command": cmd}]},
           "status": {}}
    common.write_file(os.path.join(MANIFESTS, component + ".yaml"), yaml.safe_dump(doc, sort_keys=False), 0o600)


def write_control_plane(node, address, port, cluster, store=None, upstream=None, initial_cluster=None):
    say('[etcd] Creating static Pod manifest for local etcd in "%s"' % MANIFESTS)
    static_manifest("etcd", node, address, port, cluster, initial_cluster=initial_cluster, existing=bool(upstream))
    say('[control-plane] Using manifest folder "%s"' % MANIFESTS)
    ann = {"lab.bootstrap/store": store} if store else {"lab.bootstrap/upstream": upstream}
    for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        say('[control-plane] Creating static Pod manifest for "%s"' % comp)
        static_manifest(comp, node, address, port, cluster, ann if comp == "kube-apiserver" else None)
    os.makedirs(ETCD_DIR, exist_ok=True)
    os.chmod(ETCD_DIR, 0o700)


def wait_etcd_member(address, port, ca):
    """kubeadm's learner mode: the join waits until the new member's etcd runs and is promoted."""
    import base64
    say("[etcd] Waiting for the new etcd member to join the cluster. This can take up to 40s")
    try:
        with open(os.path.join(K8S, "pki", "etcd", "peer.crt")) as f:
            cert = base64.b64encode(f.read().encode()).decode()
    except OSError as e:
        die("error execution phase control-plane-join/etcd: %s" % e)
    me = "https://%s:2380" % address
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            res = C.call("https://%s:%d" % (address, port), "etcd_member_list", {}, timeout=5, ca=ca,
                         headers={"X-Lab-Etcd-Cert": cert})
            if any(me in m["peerURLs"] and m.get("name") and not m.get("isLearner") for m in res["members"]):
                return
        except (C.ClientError, OSError):
            pass
        time.sleep(0.5)
    die("error execution phase control-plane-join/etcd: error creating local etcd static pod manifest file: "
        "timeout waiting for etcd cluster to be available")


def write_kubelet_files(node, kubelet_cfg, extra_args=None, taints=None):
    say('[kubelet-start] Writing kubelet environment file with flags to file "%s/kubeadm-flags.env"' % KUBELET_DIR)
    args = {"container-runtime-endpoint": "unix:///var/run/containerd/containerd.sock",
            "pod-infra-container-image": "registry.k8s.io/pause:3.10", "hostname-override": node}
    if taints:
        args["register-with-taints"] = ",".join("%s%s:%s" % (t.get("key"), "=" + t["value"] if t.get("value") else "",
                                                             t.get("effect", "NoSchedule")) for t in taints)
    args.update({k: str(v) for k, v in (extra_args or {}).items()})
    common.write_file(os.path.join(KUBELET_DIR, "kubeadm-flags.env"),
                      'KUBELET_KUBEADM_ARGS="%s"\n' % " ".join("--%s=%s" % kv for kv in args.items()))
    say('[kubelet-start] Writing kubelet configuration to file "%s/config.yaml"' % KUBELET_DIR)
    cfg = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
           "cgroupDriver": "systemd", "clusterDNS": ["10.96.0.10"], "clusterDomain": "cluster.local",
           "staticPodPath": MANIFESTS, "rotateCertificates": True, "failSwapOn": True}
    cfg.update({k: v for k, v in (kubelet_cfg or {}).items() if k not in ("apiVersion", "kind")})
    common.write_file(os.path.join(KUBELET_DIR, "config.yaml"), yaml.safe_dump(cfg, sort_keys=False))


def start_kubelet():
    say("[kubelet-start] Starting the kubelet")
    r = systemctl("restart", "kubelet")
    if r.returncode != 0:
        sys.stderr.write("\t[WARNING kubelet-start]: could not restart the kubelet service: %s\n"
                         % (r.stderr.strip() or r.stdout.strip()))


def wait_kubelet(node, server):
    say("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s")
    t0 = time.time()
    deadline = t0 + wait_seconds(240)
    doomed = Doomed(lambda: not common.service_enabled("kubelet") and not common.daemon_running("kubelet") and
                    "kubelet" not in common.services_state().get("started", []))
    while time.time() < deadline and not doomed():
        if common.daemon_running("kubelet") and not port_free(common.host_address(), 10250):
            say("[kubelet-check] The kubelet is healthy after %.6fms" % ((time.time() - t0) * 1000))
            return
        time.sleep(0.1)
    die("[kubelet-check] The kubelet is not healthy after 4m0.000000s\n\n"
        "Unfortunately, an error has occurred, likely caused by:\n"
        "\t- The kubelet is not running\n"
        "\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups "
        "disabled)\n\n"
        "If you are on a systemd-powered system, you can try to troubleshoot the error with the following "
        "commands:\n\t- 'systemctl status kubelet'\n\t- 'journalctl -xeu kubelet'\n\n"
        "error execution phase wait-control-plane: failed while waiting for the kubelet to start: The HTTP call "
        "equal to 'curl -sSL http://127.0.0.1:10248/healthz' returned error: Get "
        "\"http://127.0.0.1:10248/healthz\": dial tcp 127.0.0.1:10248: connect: connection refused")


def wait_apiserver(address, port):
    say("[control-plane-check] Waiting for healthy control plane components. This can take up to 4m0s")
    say("[control-plane-check] Checking kube-apiserver at https://%s:%d/livez" % (address, port))
    t0 = time.time()
    deadline = t0 + wait_seconds(240)
    server = "https://%s:%d" % (address, port)
    doomed = Doomed(lambda: not common.containerd_healthy()[0] or address != common.host_address())
    while time.time() < deadline and not doomed():
        try:
            C.call(server, "version", timeout=2, ca=local_ca())
            for comp in ("kube-controller-manager", "kube-scheduler", "kube-apiserver"):
                say("[control-plane-check] %s is healthy after %.9fs" % (comp, time.time() - t0))
            return
        except C.ClientError:
            time.sleep(0.1)
    ok, reason = common.containerd_healthy()
    if ok and address != common.host_address():
        ok, reason = False, "kube-apiserver cannot bind %s: not an address of this host" % address
    die("[control-plane-check] kube-apiserver is not healthy after 4m0.000000s\n\n"
        "A control plane component may have crashed or exited when started by the container runtime.\n"
        "To troubleshoot, list all containers using your preferred container runtimes CLI.\n"
        "Here is one example how you may list all running Kubernetes containers by using crictl:\n"
        "\t- 'crictl --runtime-endpoint unix:///var/run/containerd/containerd.sock ps -a | grep kube | grep -v "
        "pause'\n%s\nerror execution phase wait-control-plane: failed while waiting for the control plane to "
        "start: kube-apiserver check failed at https://%s:%d/livez: Get \"https://%s:%d/livez?timeout=10s\": dial "
        "tcp %s:%d: connect: connection refused"
        % ("" if ok else "\t(lab: %s)\n" % reason, address, port, address, port, address, port))


def wait_node(server, node, what="kubelet-start", headers=None):
    """Wait until the kubelet registered the node. Like kubeadm, which waits for the kubelet's TLS bootstrap to
    finish before it talks to the API server: a local check for the client certificate the kubelet writes when
    it registered (every 0.1 s), then one API call to see the node (again every 0.5 s while it is not there)."""
    from . import k8s_kubelet
    deadline = time.time() + wait_seconds(240)
    doomed = Doomed(lambda: k8s_kubelet.register_labels_taints()[2] is not None)
    while time.time() < deadline and not doomed():
        if not os.path.exists(k8s_kubelet.CLIENT_CERT):
            time.sleep(0.1)
            continue
        try:
            C.call(server, "get", {"resource": "nodes", "name": node}, timeout=3, ca=local_ca(), headers=headers)
            return
        except C.ClientError:
            time.sleep(0.5)
    bad = k8s_kubelet.register_labels_taints()[2]
    if bad:
        die("[kubelet-check] The kubelet is not healthy: it exits at start: %s\nerror execution phase %s: "
            "timed out waiting for the condition" % (bad, what))
    die("error execution phase %s: error uploading crisocket: nodes \"%s\" not found" % (what, node))


def local_ca():
    try:
        with open(os.path.join(K8S, "pki", "ca.crt")) as f:
            return f.read()
    except OSError:
        return None


def join_commands(endpoint, token, ca_hash, cert_key=None):
    base = "kubeadm join %s --token %s \\\n\t--discovery-token-ca-cert-hash %s" % (endpoint, token, ca_hash)
    cp = base + " \\\n\t--control-plane" + (" --certificate-key %s" % cert_key if cert_key else "")
    return base, cp


# ------------------------------------------------------------------ init
def gen_token():
    a = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(a) for _ in range(6)) + "." + "".join(secrets.choice(a) for _ in range(16))


def add_common_flags(p):
    p.add_argument("--config")
    p.add_argument("--ignore-preflight-errors", action="append", default=[])
    p.add_argument("--node-name")
    p.add_argument("--cri-socket")
    p.add_argument("--skip-phases", action="append", default=[])
    p.add_argument("--v", "-v")
    p.add_argument("--dry-run", action="store_true")


def load_config(path, allowed):
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        die("unable to read config from \"%s\" : open %s: no such file or directory" % (path, path))
    try:
        docs, warnings = CFG.parse(text, allowed)
    except CFG.ConfigError as e:
        die(str(e))
    for w in warnings:
        sys.stderr.write(w + "\n")
    return docs


def cmd_init(argv):
    p = argparse.ArgumentParser(prog="kubeadm init", add_help=False)
    add_common_flags(p)
    for f in ("--pod-network-cidr", "--service-cidr", "--apiserver-advertise-address", "--apiserver-bind-port",
              "--control-plane-endpoint", "--kubernetes-version", "--token", "--token-ttl", "--certificate-key",
              "--service-dns-domain", "--image-repository", "--cert-dir"):
        p.add_argument(f)
    p.add_argument("--upload-certs", action="store_true")
    p.add_argument("--skip-token-print", action="store_true")
    p.add_argument("--skip-certificate-key-print", action="store_true")
    p.add_argument("--apiserver-cert-extra-sans")
    a, extra = p.parse_known_args(argv)
    if extra:
        die("unknown flag: %s" % extra[0])
    flag_vals = {k: v for k, v in vars(a).items() if v not in (None, False, []) and k not in
                 ("config", "ignore_preflight_errors", "skip_phases", "v", "upload_certs", "skip_token_print",
                  "dry_run", "certificate_key", "skip_certificate_key_print")}
    init, cc, kc = {}, {}, {}
    if a.config:
        if flag_vals:
            die("can not mix '--config' with arguments [%s]" % " ".join(k.replace("_", "-") for k in sorted(flag_vals)))
        docs = load_config(a.config, ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration",
                                      "KubeProxyConfiguration"])
        init = docs.get("InitConfiguration") or {}
        cc = docs.get("ClusterConfiguration") or {}
        kc = docs.get("KubeletConfiguration") or {}
    reg = init.get("nodeRegistration") or {}
    lep = init.get("localAPIEndpoint") or {}
    net = cc.get("networking") or {}
    node = (a.node_name or reg.get("name") or socket.gethostname()).lower()
    address = a.apiserver_advertise_address or lep.get("advertiseAddress") or common.host_address()
    port = int(a.apiserver_bind_port or lep.get("bindPort") or 6443)
    pod_subnet = a.pod_network_cidr or net.get("podSubnet")
    svc_subnet = a.service_cidr or net.get("serviceSubnet") or "10.96.0.0/12"
    cpe = a.control_plane_endpoint or cc.get("controlPlaneEndpoint") or ""
    ignore = sum((x.split(",") for x in a.ignore_preflight_errors), []) + list(reg.get("ignorePreflightErrors") or [])
    # validation, like kubeadm's
    errs = []
    for fld, val in (("networking.podSubnet", pod_subnet), ("networking.serviceSubnet", svc_subnet)):
        if val:
            for part in str(val).split(","):
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    errs.append('%s: Invalid value: "%s": couldn\'t parse subnet' % (fld, val))
    try:
        ipaddress.ip_address(address)
    except ValueError:
        errs.append('localAPIEndpoint.advertiseAddress: Invalid value: "%s": couldn\'t use "%s" as "apiserver-'
                    'advertise-address", must be ipv4 or ipv6 address' % (address, address))
    tokens = []
    for i, bt in enumerate(init.get("bootstrapTokens") or []):
        t = bt.get("token") or gen_token()
        if not S.TOKEN_RE.match(str(t)):
            errs.append('bootstrapTokens[%d].token: Invalid value: "%s": the bootstrap token is invalid' % (i, t))
        try:
            ttl = CFG.duration(bt.get("ttl", "24h"))
        except CFG.ConfigError as e:
            errs.append("bootstrapTokens[%d].ttl: %s" % (i, e))
            ttl = 86400
        tokens.append((str(t), ttl, bt.get("description", ""), bt.get("usages"), bt.get("groups")))
    if not tokens:
        t = a.token or gen_token()
        if a.token and not S.TOKEN_RE.match(a.token):
            errs.append('bootstrapTokens[0].token: Invalid value: "%s": the bootstrap token is invalid' % a.token)
        try:
            ttl = CFG.duration(a.token_ttl or "24h")
        except CFG.ConfigError as e:
            die(str(e))
        tokens.append((t, ttl, "", None, None))
    cert_key = a.certificate_key or init.get("certificateKey")
    if cert_key and not re.match(r"^[0-9a-f]{64}$", str(cert_key)):
        errs.append("certificateKey: Invalid value: \"%s\": the certificate key must be a hex encoded string of "
                    "32 bytes" % cert_key)
    kv = a.kubernetes_version or cc.get("kubernetesVersion")
    kadm = kubeadm_version()
    if kv:
        pv = parse_version(kv)
        if pv is None:
            errs.append('kubernetesVersion: Invalid value: "%s": invalid version' % kv)
        else:
            mine = parse_version(kadm)
            if pv[:2] > mine[:2] or pv > mine:
                die("the specified version to deploy (%s) is greater than the kubeadm version (%s)"
                    % ("v" + kv.lstrip("v"), kadm))
            if pv[:2] < (mine[0], mine[1] - 1):
                die("this version of kubeadm only supports deploying clusters with the control plane version >= "
                    "%d.%d.0. Current version: %s" % (mine[0], mine[1] - 1, "v" + kv.lstrip("v")))
        kv = "v" + kv.lstrip("v")
    else:
        kv = kadm
    if errs:
        die("\n".join(errs))
    say("[init] Using Kubernetes version: %s" % kv)
    run_preflight(True, ignore, bind_port=port, fail_swap_on=kc.get("failSwapOn", True) is not False, cp_version=kv)
    if a.dry_run:
        say("[dryrun] Would pull the required images (like 'kubeadm config images pull')")
        say("[dryrun] Finished dry-running successfully. Above are the resources that would be created")
        return 0
    say("[preflight] Pulling images required for setting up a Kubernetes cluster")
    say("[preflight] This might take a minute or two, depending on the speed of your internet connection")
    say("[preflight] You can also perform this action beforehand using 'kubeadm config images pull'")
    pull_images(control_plane_images(kv))
    if not ipaddress.ip_address(address).is_loopback or address != common.host_address():
        pass  # checked when the API server binds (wait-control-plane)
    # certificates
    say('[certs] Using certificateDir folder "%s/pki"' % K8S)
    cpe_host = cpe.rsplit(":", 1)[0] if cpe else ""
    PKI.create_control_plane_pki(node, address, cpe_host, service_ip=str(next(
        ipaddress.ip_network(svc_subnet.split(",")[0], strict=False).hosts())))
    for c in ("ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client", "etcd/ca",
              "etcd/server", "etcd/peer", "etcd/healthcheck-client", "apiserver-etcd-client"):
        say('[certs] Generating "%s" certificate and key' % c)
    say('[certs] Generating "sa" key and public key')
    endpoint = cpe if cpe else "%s:%d" % (address, port)
    if cpe and ":" not in cpe:
        endpoint = "%s:%d" % (cpe, port)
    local = "https://%s:%d" % (address, port)
    say('[kubeconfig] Using kubeconfig folder "%s"' % K8S)
    for f, user, org in (("admin.conf", "kubernetes-admin", "kubeadm:cluster-admins"),
                         ("super-admin.conf", "kubernetes-super-admin", "system:masters"),
                         ("kubelet.conf", "system:node:" + node, "system:nodes"),
                         ("controller-manager.conf", "system:kube-controller-manager", None),
                         ("scheduler.conf", "system:kube-scheduler", None)):
        say('[kubeconfig] Writing "%s" kubeconfig file' % f)
        PKI.write_kubeconfig(os.path.join(K8S, f), "https://" + endpoint if f == "admin.conf" or
                             f == "super-admin.conf" else local, user, org)
    with open(os.path.join(K8S, "pki", "ca.crt")) as f:
        ca_pem = f.read()
    ca_hash = PKI.ca_hash_of_pem(ca_pem)
    cluster = {"name": cc.get("clusterName", "kubernetes"), "kubernetesVersion": kv, "controlPlaneEndpoint": cpe,
               "endpoint": endpoint, "podSubnet": pod_subnet, "serviceSubnet": svc_subnet, "caPem": ca_pem,
               "caHash": ca_hash, "initAPI": local,
               "clusterConfiguration": dict(cc, kubernetesVersion=kv, controlPlaneEndpoint=cpe,
                                            networking={"podSubnet": pod_subnet, "serviceSubnet": svc_subnet,
                                                        "dnsDomain": net.get("dnsDomain", "cluster.local")}),
               "kubeletConfiguration": kc}
    phases = set(sum((x.split(",") for x in a.skip_phases), [])) | set(init.get("skipPhases") or [])
    skip = []
    if "addon/coredns" in phases or "addon" in phases or (cc.get("dns") or {}).get("disabled"):
        skip.append("coredns")
    if "addon/kube-proxy" in phases or "addon" in phases or (cc.get("proxy") or {}).get("disabled"):
        skip.append("kube-proxy")
    cluster["skipAddons"] = skip
    now = common.now()
    st = S.new_store()
    S.init_cluster(st, cluster, node, now)
    from . import k8s_etcd
    k8s_etcd.init_membership(st, node, address)
    for t, ttl, desc, usages, groups in tokens:
        S.add_token(st, t, ttl, now, desc, usages, groups)
    if a.upload_certs:
        cert_key = cert_key or secrets.token_hex(32)
        st["uploadedCerts"] = {"keyHash": S.cert_key_hash(cert_key), "expires": now + 7200,
                               "certs": PKI.read_shared_certs()}
    os.makedirs(ETCD_DIR, exist_ok=True)
    common.stop_daemon("kube-apiserver")    # a stale static pod (init over ignored preflight errors)
    common.save_json(S.STORE, st, mode=0o600)
    write_control_plane(node, address, port, cluster, store=S.STORE)
    write_kubelet_files(node, kc, CFG.args_map(None, reg.get("kubeletExtraArgs")),
                        reg.get("taints") if reg.get("taints") else None)
    start_kubelet()
    say('[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory '
        '"%s"' % MANIFESTS)
    wait_kubelet(node, local)
    wait_apiserver(address, port)
    common.delay("init")
    say('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the "kube-system" Namespace')
    say('[kubelet] Creating a ConfigMap "kubelet-config" in namespace kube-system with the configuration for the '
        'kubelets in the cluster')
    if a.upload_certs:
        say('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
        say("[upload-certs] Using certificate key:")
        say(cert_key)
    else:
        say("[upload-certs] Skipping phase. Please see --upload-certs")
    adm = C.kubeconfig_auth(os.path.join(K8S, "admin.conf"))[2]
    wait_node(local, node, "mark-control-plane", adm)
    say("[mark-control-plane] Marking the node %s as control-plane by adding the labels: [node-role.kubernetes.io/"
        "control-plane node.kubernetes.io/exclude-from-external-load-balancers]" % node)
    say("[mark-control-plane] Marking the node %s as control-plane by adding the taints [node-role.kubernetes.io/"
        "control-plane:NoSchedule]" % node)
    C.call(local, "mark_control_plane", {"name": node, "taint": reg.get("taints", None) is None}, ca=local_ca(),
           headers=adm)
    say("[bootstrap-token] Using token: %s" % tokens[0][0] if not a.skip_token_print else
        "[bootstrap-token] Using token: <value withheld>")
    say("[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles")
    say("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes")
    say("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for nodes to "
        "get long term certificate credentials")
    say("[bootstrap-token] Configured RBAC rules to allow the csrapprover controller automatically approve CSRs "
        "from a Node Bootstrap Token")
    say("[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client certificates "
        "in the cluster")
    say('[bootstrap-token] Creating the "cluster-info" ConfigMap in the "kube-public" namespace')
    say('[kubelet-finalize] Updating "/etc/kubernetes/kubelet.conf" to point to a rotatable kubelet client '
        'certificate and key')
    if "coredns" not in skip:
        say("[addons] Applied essential addon: CoreDNS")
    if "kube-proxy" not in skip:
        say("[addons] Applied essential addon: kube-proxy")
    say("")
    say("Your Kubernetes control-plane has initialized successfully!")
    say("")
    say("To start using your cluster, you need to run the following as a regular user:")
    say("")
    say("  mkdir -p $HOME/.kube")
    say("  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config")
    say("  sudo chown $(id -u):$(id -g) $HOME/.kube/config")
    say("")
    say("Alternatively, if you are the root user, you can run:")
    say("")
    say("  export KUBECONFIG=/etc/kubernetes/admin.conf")
    say("")
    say("You should now deploy a pod network to the cluster.")
    say('Run "kubectl apply -f [podnetwork].yaml" with one of the options listed at:')
    say("  https://kubernetes.io/docs/concepts/cluster-administration/addons/")
    say("")
    tok = tokens[0][0] if not a.skip_token_print else "<value withheld>"
    worker, cp = join_commands(endpoint, tok, ca_hash,
                               (cert_key if not a.skip_certificate_key_print else "<value withheld>")
                               if a.upload_certs else None)
    if cpe:
        say("You can now join any number of control-plane nodes running the following command on each as root:")
        say("")
        say("  " + cp)
        say("")
        say("Please note that the certificate-key gives access to cluster sensitive data, keep it secret!")
        say("As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use")
        say('"kubeadm init phase upload-certs --upload-certs" to reload certs afterward.')
        say("")
        say("Then you can join any number of worker nodes by running the following on each as root:")
    else:
        say("Then you can join any number of worker nodes by running the following on each as root:")
    say("")
    say(worker + " ")
    return 0


# ------------------------------------------------------------------ join
def cmd_join(argv):
    p = argparse.ArgumentParser(prog="kubeadm join", add_help=False)
    add_common_flags(p)
    p.add_argument("endpoint", nargs="?")
    for f in ("--token", "--discovery-token", "--tls-bootstrap-token", "--discovery-file",
              "--certificate-key", "--apiserver-advertise-address", "--apiserver-bind-port"):
        p.add_argument(f)
    p.add_argument("--discovery-token-ca-cert-hash", action="append", default=[])
    p.add_argument("--discovery-token-unsafe-skip-ca-verification", action="store_true")
    p.add_argument("--control-plane", action="store_true")
    a, extra = p.parse_known_args(argv)
    if extra:
        die("unknown flag: %s" % extra[0])
    if a.config:
        mixed = [k for k in ("endpoint", "token", "discovery_token", "certificate_key", "node_name",
                             "apiserver_advertise_address") if getattr(a, k)] + \
                (["discovery-token-ca-cert-hash"] if a.discovery_token_ca_cert_hash else []) + \
                (["control-plane"] if a.control_plane else [])
        if mixed:
            die("can not mix '--config' with arguments [%s]" % " ".join(m.replace("_", "-") for m in mixed))
        docs = load_config(a.config, ["JoinConfiguration", "KubeletConfiguration"])
        jc = docs.get("JoinConfiguration")
        if jc is None:
            die("no JoinConfiguration kind was found in the YAML file")
        kc = docs.get("KubeletConfiguration") or {}
        disc = jc.get("discovery") or {}
        bt = disc.get("bootstrapToken") or {}
        endpoint, token = bt.get("apiServerEndpoint"), bt.get("token") or disc.get("tlsBootstrapToken")
        hashes, unsafe = list(bt.get("caCertHashes") or []), bool(bt.get("unsafeSkipCAVerification"))
        reg = jc.get("nodeRegistration") or {}
        cpj = jc.get("controlPlane")
        control_plane = cpj is not None
        cpj = cpj or {}
        lep = cpj.get("localAPIEndpoint") or {}
        cert_key = cpj.get("certificateKey")
        extra_args = CFG.args_map(None, reg.get("kubeletExtraArgs"))
        reg_taints = reg.get("taints")
        node = (reg.get("name") or socket.gethostname()).lower()
        address = lep.get("advertiseAddress") or common.host_address()
        port = int(lep.get("bindPort") or 6443)
        ignore = list(reg.get("ignorePreflightErrors") or []) + sum((x.split(",") for x in a.ignore_preflight_errors), [])
    else:
        kc = {}
        extra_args, reg_taints = {}, None
        endpoint = a.endpoint
        token = a.discovery_token or a.token
        hashes, unsafe = a.discovery_token_ca_cert_hash, a.discovery_token_unsafe_skip_ca_verification
        control_plane, cert_key = a.control_plane, a.certificate_key
        node = (a.node_name or socket.gethostname()).lower()
        address = a.apiserver_advertise_address or common.host_address()
        port = int(a.apiserver_bind_port or 6443)
        ignore = sum((x.split(",") for x in a.ignore_preflight_errors), [])
    errs = []
    if not endpoint:
        errs.append("discovery.bootstrapToken.apiServerEndpoint: Invalid value: \"\": the API server endpoint is "
                    "required" if a.config else "[discovery: Invalid value: \"\": bootstrapToken or file must be set]")
    if not token:
        errs.append("discovery.bootstrapToken.token: Invalid value: \"\": the bootstrap token is invalid")
    elif not S.TOKEN_RE.match(str(token)):
        errs.append('discovery.bootstrapToken.token: Invalid value: "%s": the bootstrap token is invalid' % token)
    if not hashes and not unsafe:
        errs.append("discovery.bootstrapToken: Invalid value: \"\": using token-based discovery without caCertHashes "
                    "can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config file or pass "
                    "--discovery-token-unsafe-skip-ca-verification flag to continue")
    for h in hashes:
        if not re.match(r"^sha256:[0-9a-f]{64}$", str(h)):
            errs.append("discovery.bootstrapToken.caCertHashes: Invalid value: \"%s\": invalid hash \"%s\""
                        % (h, h))
    if control_plane and cert_key and not re.match(r"^[0-9a-f]{64}$", str(cert_key)):
        errs.append('controlPlane.certificateKey: Invalid value: "%s": the certificate key must be a hex encoded '
                    'string of 32 bytes' % cert_key)
    if errs:
        die("\n".join(errs))
    run_preflight(False, ignore, bind_port=port, fail_swap_on=kc.get("failSwapOn", True) is not False, join=True)
    # discovery: connect to the endpoint for real, check the token's JWS signature and the CA pin
    if ":" not in endpoint:
        endpoint += ":6443"
    server = "https://" + endpoint
    tid, tsecret = str(token).split(".", 1)
    info, last = None, None
    deadline = time.time() + (3.0 if common.profile() != "realistic" else 10.0)
    while info is None:
        try:
            info = C.call(server, "cluster_info", timeout=5)
        except C.ClientError as e:
            last = e
            if time.time() > deadline or e.reason not in ("Refused", "Timeout", "NoHost", ""):
                break
            time.sleep(0.3)
    if info is None:
        die("error execution phase preflight: couldn't validate the identity of the API Server: Get "
            "\"https://%s/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s\": %s"
            % (endpoint, last.message))
    sig = info["jws"].get(tid)
    if sig is None:
        die("error execution phase preflight: couldn't validate the identity of the API Server: could not find a "
            "JWS signature in the cluster-info ConfigMap for token ID \"%s\"" % tid)
    if sig != S.jws(tsecret, info["caPem"] + "|" + info["endpoint"]):
        die("error execution phase preflight: couldn't validate the identity of the API Server: failed to verify "
            "JWS signature of received cluster info object, can't trust this API server")
    got = PKI.ca_hash_of_pem(info["caPem"])
    if not unsafe and got not in hashes:
        die("error execution phase preflight: couldn't validate the identity of the API Server: cluster CA found "
            "in cluster-info ConfigMap is invalid: none of the public keys \"%s\" are pinned" % got)
    say("[preflight] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...")
    say("[preflight] Use 'kubeadm init phase upload-config kubeadm --config your-config-file' to re-upload it.")
    try:
        cinfo = C.call(server, "cluster_get", timeout=10, ca=info["caPem"],
                       headers={"Authorization": "Bearer " + str(token)})
    except C.ClientError as e:
        die("error execution phase preflight: unable to fetch the kubeadm-config ConfigMap: %s" % e.message)
    if control_plane:
        if not cinfo.get("controlPlaneEndpoint"):
            die("error execution phase preflight: \nOne or more conditions for hosting a new control plane instance "
                "is not satisfied.\n\nunable to add a new control plane instance to a cluster that doesn't have a "
                "stable controlPlaneEndpoint address\n\nPlease ensure that:\n* The cluster has a stable "
                "controlPlaneEndpoint address.\n* The certificates that must be shared among control plane "
                "instances are provided.\n")
        run_preflight(True, ignore, bind_port=port, cp_only=True)
        if not cert_key:
            # without a certificate key the shared certificates must already be on disk (they are not)
            die("error execution phase control-plane-prepare/certs: error creating PKI assets: failed to load "
                "certificate authority: couldn't load the certificate file /etc/kubernetes/pki/ca.crt: open "
                "/etc/kubernetes/pki/ca.crt: no such file or directory")
    try:
        boot = C.call(server, "bootstrap", {"token": token, "node": node, "controlPlane": control_plane,
                                           "certificateKey": cert_key, "address": address}, timeout=10,
                      ca=info["caPem"])
    except C.ClientError as e:
        if e.reason in ("CertsNotFound", "BadKey"):
            die("error execution phase control-plane-prepare/download-certs: " + e.message)
        if e.reason == "Conflict":
            die("error execution phase kubelet-start: " + e.message)
        if e.reason == "Unauthorized":
            die("error execution phase kubelet-start: error getting kubelet config: Unauthorized")
        die("error execution phase kubelet-start: " + e.message)
    common.delay("join")
    c = boot["cluster"]
    # A control plane's preflight pulls its images; a worker's kubelet pulls the sandbox and kube-proxy before
    # its node can be Ready. Images pulled beforehand (`kubeadm config images pull`, `crictl pull`) cost nothing.
    v = c.get("kubernetesVersion") or kubeadm_version()
    pull_images(control_plane_images(v) if control_plane else worker_images(v))
    os.makedirs(os.path.join(K8S, "pki"), exist_ok=True)
    if control_plane:
        say("[control-plane-prepare] Downloading the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" "
            "Namespace")
        cpe_host = c["controlPlaneEndpoint"].rsplit(":", 1)[0]
        PKI.create_control_plane_pki(node, address, cpe_host, shared=boot["certs"])
        for comp in ("apiserver", "apiserver-kubelet-client", "front-proxy-client", "etcd/server", "etcd/peer",
                     "etcd/healthcheck-client", "apiserver-etcd-client"):
            say('[certs] Generating "%s" certificate and key' % comp)
        say("[certs] Valid certificates and keys now exist in \"/etc/kubernetes/pki\"")
        say("[certs] Using the existing \"sa\" key")
        local = "https://%s:%d" % (address, port)
        for f, user, org in (("admin.conf", "kubernetes-admin", "kubeadm:cluster-admins"),
                             ("controller-manager.conf", "system:kube-controller-manager", None),
                             ("scheduler.conf", "system:kube-scheduler", None)):
            say('[kubeconfig] Writing "%s" kubeconfig file' % f)
            PKI.write_kubeconfig(os.path.join(K8S, f), "https://" + c["endpoint"] if f == "admin.conf" else local,
                                 user, org)
        write_control_plane(node, address, port, c, upstream=c["initAPI"],
                            initial_cluster=boot.get("etcdInitialCluster"))
        kubelet_server = local
    else:
        common.write_file(os.path.join(K8S, "pki", "ca.crt"), info["caPem"])
        kubelet_server = server
    say("[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\"")
    write_kubelet_files(node, dict(c.get("kubeletConfiguration") or {}, **kc), extra_args, reg_taints)
    common.write_file(os.path.join(K8S, "kubelet.conf"),
                      PKI.kubeconfig(kubelet_server, info["caPem"], "system:node:" + node, token=boot["credential"]),
                      0o600)
    start_kubelet()
    say("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s")
    say("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    if control_plane:
        wait_apiserver(address, port)
    wait_node(server, node, headers={"Authorization": "Bearer " + boot["credential"]})
    if control_plane:
        say("[etcd] Announced new etcd member joining to the existing etcd cluster")
        wait_etcd_member(address, port, info["caPem"])
        say("[mark-control-plane] Marking the node %s as control-plane by adding the labels: [node-role.kubernetes.io/"
            "control-plane node.kubernetes.io/exclude-from-external-load-balancers]" % node)
        say("[mark-control-plane] Marking the node %s as control-plane by adding the taints [node-role.kubernetes.io/"
            "control-plane:NoSchedule]" % node)
        C.call(server, "mark_control_plane", {"name": node, "taint": reg_taints is None}, ca=info["caPem"],
               headers=C.kubeconfig_auth(os.path.join(K8S, "admin.conf"))[2])
        say("")
        say("This node has joined the cluster and a new control plane instance was created:")
        say("")
        say("* Certificate signing request was sent to apiserver and approval was received.")
        say("* The Kubelet was informed of the new secure connection details.")
        say("* Control plane label and taint were applied to the new node.")
        say("* The Kubernetes control plane instances scaled up.")
        say("* A new etcd member was added to the local/stacked etcd cluster.")
        say("")
        say("To start administering your cluster from this node, you need to run the following as a regular user:")
        say("")
        say("\tmkdir -p $HOME/.kube")
        say("\tsudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config")
        say("\tsudo chown $(id -u):$(id -g) $HOME/.kube/config")
        say("")
        say("Run 'kubectl get nodes' to see this node join the cluster.")
        say("")
    else:
        say("")
        say("This node has joined the cluster:")
        say("* Certificate signing request was sent to apiserver and a response was received.")
        say("* The Kubelet was informed of the new secure connection details.")
        say("")
        say("Run 'kubectl get nodes' on the control-plane to see this node join the cluster.")
        say("")
    return 0


# ------------------------------------------------------------------ reset
def _remove_own_etcd_member():
    import base64
    addr = common.host_address()
    try:
        with open(os.path.join(K8S, "pki", "apiserver-etcd-client.crt")) as f:
            cert = base64.b64encode(f.read().encode()).decode()
        with open(os.path.join(K8S, "pki", "ca.crt")) as f:
            ca = f.read()
        server = "https://%s:6443" % addr
        ms = C.call(server, "etcd_member_list", ca=ca, headers={"X-Lab-Etcd-Cert": cert}, timeout=5)["members"]
        mine = [m for m in ms if "https://%s:2380" % addr in m["peerURLs"]]
        if not mine or len(ms) < 2:
            return
        C.call(server, "etcd_member_remove", {"id": mine[0]["id"]}, ca=ca, headers={"X-Lab-Etcd-Cert": cert},
               timeout=10)
        say("[reset] Removing member %s from the etcd cluster" % mine[0]["id"])
    except (OSError, KeyError, C.ClientError) as e:
        sys.stderr.write("W%s reset.go:xx] [reset] Failed to remove etcd member: %s\n.Please manually remove this "
                         "etcd member using etcdctl\n" % (time.strftime("%m%d %H:%M:%S"), getattr(e, "message", e)))


def cmd_reset(argv):
    p = argparse.ArgumentParser(prog="kubeadm reset", add_help=False)
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--ignore-preflight-errors", action="append", default=[])
    p.add_argument("--cri-socket")
    p.add_argument("--cleanup-tmp-dir", action="store_true")
    p.add_argument("--config")
    p.add_argument("--kubeconfig")
    p.add_argument("--skip-phases", action="append", default=[])
    p.add_argument("--v", "-v")
    a, extra = p.parse_known_args(argv)
    if extra:
        die("unknown flag: %s" % extra[0])
    if not common.is_root():
        die("error execution phase preflight: [preflight] Some fatal errors occurred:\n\t[ERROR IsPrivilegedUser]: "
            "user is not running as root\n[preflight] If you know what you are doing, you can make a check non-fatal "
            "with `--ignore-preflight-errors=...`")
    if os.path.exists(os.path.join(K8S, "admin.conf")) or os.path.exists(os.path.join(K8S, "kubelet.conf")):
        say("[reset] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...")
        say("[reset] Use 'kubeadm init phase upload-config kubeadm --config your-config-file' to re-upload it.")
    if not a.force:
        common.out("W%s  reset.go:141] [reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' "
                   "will be reverted.\n[reset] Are you sure you want to proceed? [y/N]: " % time.strftime("%m%d %H:%M:%S"))
        ans = sys.stdin.readline().strip().lower()
        if ans not in ("y", "yes"):
            die("error execution phase preflight: won't proceed; the user didn't answer (Y|y) in order to continue")
    say("[preflight] Running pre-flight checks")
    if os.path.exists(os.path.join(MANIFESTS, "etcd.yaml")):
        # a control plane's reset removes its stacked etcd member first (the cluster keeps its quorum)
        _remove_own_etcd_member()
    if os.path.isdir(ETCD_DIR) and os.path.exists(os.path.join(MANIFESTS, "etcd.yaml")):
        say("[reset] Deleted contents of the etcd data directory: /var/lib/etcd")
    say("[reset] Stopping the kubelet service")
    systemctl("stop", "kubelet")
    common.stop_daemon("kubelet")
    common.stop_daemon("kube-apiserver")
    common.stop_daemon("etcd")
    say('[reset] Unmounting mounted directories in "/var/lib/kubelet"')
    dirs = [MANIFESTS, KUBELET_DIR, os.path.join(K8S, "pki"), ETCD_DIR]
    for d in dirs:
        if os.path.isdir(d):
            for e in glob.glob(os.path.join(d, "*")) + glob.glob(os.path.join(d, ".*")):
                if os.path.isdir(e) and not os.path.islink(e):
                    shutil.rmtree(e, ignore_errors=True)
                else:
                    try:
                        os.unlink(e)
                    except OSError:
                        pass
    files = [os.path.join(K8S, f) for f in ("admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf",
                                            "controller-manager.conf", "scheduler.conf")]
    for f in files:
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass
    shutil.rmtree(os.path.join(K8S, "tmp"), ignore_errors=True)
    say("[reset] Deleting contents of directories: [%s]" % " ".join(dirs[:3]))
    say("[reset] Deleting files: [%s]" % " ".join(files))
    say("")
    say("The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d")
    say("")
    say("The reset process does not reset or clean up iptables rules or IPVS tables.")
    say("If you wish to reset iptables, you must do so manually by using the \"iptables\" command.")
    say("")
    say("If your cluster was setup to utilize IPVS, run ipvsadm --clear (or similar)")
    say("to reset your system's IPVS tables.")
    say("")
    say("The reset process does not clean your kubeconfig files and you must remove them manually.")
    say("Please, check the contents of the $HOME/.kube/config file.")
    return 0


# ------------------------------------------------------------------ token / upload-certs
def admin_server(kubeconfig):
    path = kubeconfig or os.path.join(K8S, "admin.conf")
    if not os.path.exists(path):
        die("failed to load admin kubeconfig: open %s: no such file or directory" % path)
    return C.Kube(path)


def call_or_die(kube, op, args, what):
    try:
        return kube.call(op, args)
    except C.ClientError as e:
        die("%s: %s" % (what, e.message))


def human_ttl(secs):
    if secs is None:
        return "<forever>"
    secs = int(max(0, secs))
    if secs >= 86400 * 2:
        return "%dd" % (secs // 86400)
    if secs >= 3600:
        return "%dh" % (secs // 3600)
    if secs >= 60:
        return "%dm" % (secs // 60)
    return "%ds" % secs


def cmd_token(argv):
    if not argv or argv[0] in ("-h", "--help"):
        say("This command manages bootstrap tokens.\n\nUsage:\n  kubeadm token [command]\n\nAvailable Commands:\n"
            "  create      Create bootstrap tokens on the server\n  delete      Delete bootstrap tokens on the server\n"
            "  generate    Generate and print a bootstrap token, but do not create it on the server\n"
            "  list        List bootstrap tokens on the server")
        return 0
    sub, rest = argv[0], argv[1:]
    p = argparse.ArgumentParser(prog="kubeadm token " + sub, add_help=False)
    p.add_argument("--kubeconfig")
    p.add_argument("--v", "-v")
    p.add_argument("--dry-run", action="store_true")
    if sub == "generate":
        say(gen_token())
        return 0
    if sub == "create":
        p.add_argument("token", nargs="?")
        p.add_argument("--ttl", default="24h0m0s")
        p.add_argument("--print-join-command", action="store_true")
        p.add_argument("--description", default="")
        p.add_argument("--usages", default="signing,authentication")
        p.add_argument("--groups", default="system:bootstrappers:kubeadm:default-node-token")
        p.add_argument("--config")
        p.add_argument("--certificate-key")
        a, extra = p.parse_known_args(rest)
        if extra:
            die("unknown flag: %s" % extra[0])
        try:
            ttl = CFG.duration(a.ttl)
        except CFG.ConfigError as e:
            die('invalid argument "%s" for "--ttl" flag: %s' % (a.ttl, e))
        t = a.token or gen_token()
        if not S.TOKEN_RE.match(t):
            die('the bootstrap token "%s" was not of the form "[a-z0-9]{6}.[a-z0-9]{16}"' % t)
        kube = admin_server(a.kubeconfig)
        call_or_die(kube, "token_create", {"token": t, "ttl": ttl, "description": a.description,
                                           "usages": a.usages.split(","), "groups": a.groups.split(",")},
                    "failed to create or update bootstrap token with name bootstrap-token-" + t[:6])
        if a.print_join_command:
            c = call_or_die(kube, "cluster_get", {}, "failed to load cluster configuration")
            base = "kubeadm join %s --token %s --discovery-token-ca-cert-hash %s " % (c["endpoint"], t, c["caHash"])
            if a.certificate_key:
                base += "--control-plane --certificate-key %s " % a.certificate_key
            say(base)
        else:
            say(t)
        return 0
    if sub == "list":
        p.add_argument("-o", "--output", default="text")
        a, extra = p.parse_known_args(rest)
        kube = admin_server(a.kubeconfig)
        toks = call_or_die(kube, "token_list", {}, "failed to list bootstrap tokens")
        now = common.now()
        if a.output == "json":
            for t in toks:
                say(json.dumps({"kind": "BootstrapToken", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
                                "token": "%s.%s" % (t["id"], t["secret"]), "description": t["description"],
                                "ttl": human_ttl(None if t["expires"] is None else t["expires"] - now),
                                "expires": S.ts(t["expires"]) if t["expires"] else None,
                                "usages": t["usages"], "groups": t["groups"]}, indent=2))
            return 0
        rows = [("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
        for t in toks:
            rows.append(("%s.%s" % (t["id"], t["secret"]),
                         human_ttl(None if t["expires"] is None else t["expires"] - now),
                         S.ts(t["expires"]) if t["expires"] else "<never>", ",".join(t["usages"]),
                         t["description"] or "<none>", ",".join(t["groups"])))
        w = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            say("   ".join(r[i].ljust(w[i]) for i in range(6)).rstrip())
        return 0
    if sub == "delete":
        p.add_argument("ids", nargs="+")
        a, extra = p.parse_known_args(rest)
        kube = admin_server(a.kubeconfig)
        for i in a.ids:
            # a token ID, or a whole token whose ID is used (kubeadm's own check and wording)
            if not re.fullmatch(r"[a-z0-9]{6}", i) and not S.TOKEN_RE.match(i):
                die('given token didn\'t match pattern "^([a-z0-9]{6})$" or "^([a-z0-9]{6})$"')
            tid = i.split(".")[0]
            say(call_or_die(kube, "token_delete", {"id": tid}, 'failed to delete bootstrap token "%s"' % tid))
        return 0
    die('unknown command "%s" for "kubeadm token"' % sub)


def cmd_init_phase(argv):
    if argv[:1] != ["upload-certs"]:
        die("lab: only `kubeadm init phase upload-certs` is simulated")
    p = argparse.ArgumentParser(prog="kubeadm init phase upload-certs", add_help=False)
    p.add_argument("--upload-certs", action="store_true")
    p.add_argument("--certificate-key")
    p.add_argument("--config")
    p.add_argument("--kubeconfig")
    p.add_argument("--skip-certificate-key-print", action="store_true")
    p.add_argument("--v", "-v")
    a, extra = p.parse_known_args(argv[1:])
    if extra:
        die("unknown flag: %s" % extra[0])
    key = a.certificate_key
    if a.config:
        docs = load_config(a.config, ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration",
                                      "KubeProxyConfiguration"])
        key = key or (docs.get("InitConfiguration") or {}).get("certificateKey")
    if not a.upload_certs:
        say("[upload-certs] Skipping phase. Please see --upload-certs")
        return 0
    if key and not re.match(r"^[0-9a-f]{64}$", key):
        die("error execution phase upload-certs: error uploading certs: error decoding certificate key: encoding/hex: "
            "invalid byte" if not re.match(r"^[0-9a-fA-F]*$", key) else
            "error execution phase upload-certs: error uploading certs: crypto/aes: invalid key size %d" % (len(key) // 2))
    key = key or secrets.token_hex(32)
    try:
        certs = PKI.read_shared_certs()
    except FileNotFoundError as e:
        die("error execution phase upload-certs: error uploading certs: failed to load %s" % e.filename)
    kube = admin_server(a.kubeconfig)
    call_or_die(kube, "upload_certs", {"key": key, "certs": certs}, "error execution phase upload-certs")
    say('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
    say("[upload-certs] Using certificate key:")
    say(key if not a.skip_certificate_key_print else "<value withheld>")
    return 0


# ------------------------------------------------------------------ certs check-expiration
def _not_after(pem_bytes):
    """A certificate's notAfter, read from its DER like kubeadm's Go code does (no process started: a real
    `kubeadm certs check-expiration` takes ~20 ms, not an openssl start per certificate); openssl when the
    certificate does not parse that way."""
    import calendar
    v = PKI.validity(pem_bytes)
    if v is not None:
        return v[1]
    r = subprocess.run(["/usr/bin/openssl", "x509", "-noout", "-enddate"], input=pem_bytes, capture_output=True)
    if r.returncode != 0:
        return None
    text = r.stdout.decode().strip().split("=", 1)[1]            # "Nov 21 17:47:00 2027 GMT"
    return calendar.timegm(time.strptime(text.replace("  ", " "), "%b %d %H:%M:%S %Y %Z"))


# libyaml's loader when PyYAML has it (a kubeconfig read by the pure-Python one costs milliseconds of CPU).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _residual(secs):
    if secs <= 0:
        return "<invalid>"
    days = int(secs // 86400)
    if days >= 365:
        return "%dy" % (days // 365)
    if days >= 1:
        return "%dd" % days
    return "%dh" % int(secs // 3600)


def cmd_check_expiration():
    import base64
    if not os.path.exists(os.path.join(K8S, "pki", "ca.crt")):
        die("error execution phase check-expiration: failed to load existing certificate ca: open "
            "/etc/kubernetes/pki/ca.crt: no such file or directory")
    say('[check-expiration] Reading configuration from the "kubeadm-config" ConfigMap in namespace "kube-system"...')
    say("[check-expiration] Use 'kubeadm init phase upload-config kubeadm --config your-config-file' to re-upload it.")
    say("")
    now = common.now()
    rows = [("CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED")]
    items = [("admin.conf", "conf", "ca"), ("apiserver", "apiserver.crt", "ca"),
             ("apiserver-etcd-client", "apiserver-etcd-client.crt", "etcd-ca"),
             ("apiserver-kubelet-client", "apiserver-kubelet-client.crt", "ca"),
             ("controller-manager.conf", "conf", "ca"), ("etcd-healthcheck-client", "etcd/healthcheck-client.crt",
                                                         "etcd-ca"),
             ("etcd-peer", "etcd/peer.crt", "etcd-ca"), ("etcd-server", "etcd/server.crt", "etcd-ca"),
             ("front-proxy-client", "front-proxy-client.crt", "front-proxy-ca"),
             ("scheduler.conf", "conf", "ca"), ("super-admin.conf", "conf", "ca")]
    for name, src, ca in items:
        if src == "conf":
            try:
                with open(os.path.join(K8S, name)) as f:
                    cfg = yaml.load(f, Loader=_YAML_LOADER) or {}
                pem = base64.b64decode(cfg["users"][0]["user"]["client-certificate-data"])
            except (OSError, KeyError, IndexError, TypeError, ValueError):
                continue
        else:
            try:
                with open(os.path.join(K8S, "pki", src), "rb") as f:
                    pem = f.read()
            except OSError:
                continue
        t = _not_after(pem)
        if t is None:
            continue
        rows.append((name, time.strftime("%b %d, %Y %H:%M UTC", time.gmtime(t)), _residual(t - now), ca, "no"))
    w = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        say("   ".join(r[i].ljust(w[i]) for i in range(5)).rstrip())
    say("")
    rows = [("CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED")]
    for name, src in (("ca", "ca.crt"), ("etcd-ca", "etcd/ca.crt"), ("front-proxy-ca", "front-proxy-ca.crt")):
        try:
            with open(os.path.join(K8S, "pki", src), "rb") as f:
                t = _not_after(f.read())
        except OSError:
            continue
        rows.append((name, time.strftime("%b %d, %Y %H:%M UTC", time.gmtime(t)), _residual(t - now), "no"))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        say("   ".join(r[i].ljust(w[i]) for i in range(4)).rstrip())
    return 0


# ------------------------------------------------------------------ certs renew
# name -> (what kubeadm calls it, file under /etc/kubernetes (a kubeconfig) or pki/, issuing CA under pki/)
RENEWABLE = [
    ("admin.conf", "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself",
     "admin.conf", "ca"),
    ("apiserver", "certificate for serving the Kubernetes API", "pki/apiserver.crt", "ca"),
    ("apiserver-etcd-client", "certificate the apiserver uses to access etcd", "pki/apiserver-etcd-client.crt",
     "etcd/ca"),
    ("apiserver-kubelet-client", "certificate for the API server to connect to kubelet",
     "pki/apiserver-kubelet-client.crt", "ca"),
    ("controller-manager.conf", "certificate embedded in the kubeconfig file for the controller manager to use",
     "controller-manager.conf", "ca"),
    ("etcd-healthcheck-client", "certificate for liveness probes to healthcheck etcd",
     "pki/etcd/healthcheck-client.crt", "etcd/ca"),
    ("etcd-peer", "certificate for etcd nodes to communicate with each other", "pki/etcd/peer.crt", "etcd/ca"),
    ("etcd-server", "certificate for serving etcd", "pki/etcd/server.crt", "etcd/ca"),
    ("front-proxy-client", "certificate for the front proxy client", "pki/front-proxy-client.crt",
     "front-proxy-ca"),
    ("scheduler.conf", "certificate embedded in the kubeconfig file for the scheduler manager to use",
     "scheduler.conf", "ca"),
    ("super-admin.conf", "certificate embedded in the kubeconfig file for the super-admin", "super-admin.conf",
     "ca"),
]


def cmd_certs_renew(argv):
    """`kubeadm certs renew all|NAME`: the same certificates (subject, key, SANs) signed again by the local CA,
    valid one year from now on the lab clock. Running components keep the old ones until restarted."""
    import base64
    names = [r[0] for r in RENEWABLE]
    args = [x for x in argv if not x.startswith("-")]
    if len(args) != 1 or (args[0] != "all" and args[0] not in names):
        die('unknown command "%s" for "kubeadm certs renew"' % (args[0] if args else ""))
    if not common.is_root():
        die("[preflight] Some fatal errors occurred:\n\t[ERROR IsPrivilegedUser]: user is not running as root")
    pki = os.path.join(K8S, "pki")
    if not os.path.exists(os.path.join(pki, "ca.key")):
        die("error execution phase renew: failed to load existing certificate ca: open /etc/kubernetes/pki/ca.crt: "
            "no such file or directory")
    say('[renew] Reading configuration from the "kubeadm-config" ConfigMap in namespace "kube-system"...')
    conf = os.path.join(K8S, "admin.conf")
    try:
        server, kca, hdrs = C.kubeconfig_auth(conf)
        C.call(server, "cluster_get", ca=kca, headers=hdrs, timeout=5)
        say("[renew] Use 'kubeadm init phase upload-config kubeadm --config your-config-file' to re-upload it.")
    except (C.ClientError, OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        sys.stderr.write("W%s renew.go:xx] [renew] Error reading configuration from the Cluster. Falling back to "
                         "default configuration\n" % time.strftime("%m%d %H:%M:%S", time.gmtime(common.now())))
    say("")
    now = common.now()
    for name, what, rel, ca in RENEWABLE:
        if args[0] != "all" and name != args[0]:
            continue
        path = os.path.join(K8S, rel)
        ca_crt, ca_key = os.path.join(pki, ca + ".crt"), os.path.join(pki, ca + ".key")
        if not os.path.exists(path):
            if args[0] != "all":
                die("error execution phase renew: %s: open %s: no such file or directory" % (name, path))
            continue
        if rel.endswith(".conf"):
            with open(path) as f:
                cfg = yaml.safe_load(f) or {}
            u = cfg["users"][0]["user"]
            cert = base64.b64decode(u["client-certificate-data"]).decode()
            key = base64.b64decode(u["client-key-data"]).decode()
            new = PKI.resign(cert, key, ca_crt, ca_key, now - PKI.BACKDATE, now + 365 * 86400)
            u["client-certificate-data"] = base64.b64encode(new.encode()).decode()
            common.write_file(path, yaml.safe_dump(cfg, default_flow_style=False, sort_keys=False), 0o600)
        else:
            with open(path) as f:
                cert = f.read()
            with open(path[:-4] + ".key") as f:
                key = f.read()
            new = PKI.resign(cert, key, ca_crt, ca_key, now - PKI.BACKDATE, now + 365 * 86400)
            common.write_file(path, new, 0o644)
        say("%s renewed" % what)
    say("")
    say("Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler "
        "and etcd, so that they can use the new certificates.")
    return 0


# ------------------------------------------------------------------ upgrade
def _vstr(v):
    return "v%d.%d.%d" % v


def local_manifest_version():
    try:
        with open(os.path.join(MANIFESTS, "kube-apiserver.yaml")) as f:
            pod = yaml.safe_load(f)
        return pod["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return None


def wait_static_pod_restart(since):
    """After new manifests: the kubelet replaces the API server static pod; kubeadm waits for it to be back."""
    say("[upgrade/staticpods] Waiting for the kubelet to restart the component")
    say("[upgrade/staticpods] This can take up to 5m0s")
    seen = os.path.join(common.RUN_DIR, "kube-apiserver.manifest")
    address = common.host_address()
    deadline = time.time() + wait_seconds(300)
    while time.time() < deadline:
        try:
            restarted = os.stat(seen).st_mtime >= since
        except OSError:
            restarted = False
        if restarted:
            try:
                C.call("https://%s:6443" % address, "version", timeout=2, ca=local_ca())
                say("[apiclient] Found 1 Pods for label selector component=kube-apiserver")
                return
            except C.ClientError:
                pass
        time.sleep(0.1)
    die("[upgrade/apply] FATAL: couldn't upgrade control plane. kubeadm has tried to recover everything into the "
        "earlier state. Errors faced: timed out waiting for the condition: static Pod hash for component "
        "kube-apiserver on Node %s did not change after 5m0s" % common.host_name())


def rewrite_manifests(version):
    since = time.time()
    for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        path = os.path.join(MANIFESTS, comp + ".yaml")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            pod = yaml.safe_load(f)
        image = "registry.k8s.io/%s:%s" % (comp, version)
        changed = pod["spec"]["containers"][0].get("image") != image
        pod["spec"]["containers"][0]["image"] = image
        common.write_file(path, yaml.safe_dump(pod, sort_keys=False), 0o600)
        say('[upgrade/staticpods] Moving new manifest to "%s" and backing up old manifest to '
            '"/etc/kubernetes/tmp/kubeadm-backup-manifests/%s.yaml"' % (path, comp))
        if comp == "kube-apiserver" and changed:
            wait_static_pod_restart(since)
        say("[upgrade/staticpods] Component %s upgraded successfully!" % comp)


def cmd_upgrade(argv):
    if not argv or argv[0] not in ("plan", "apply", "node", "diff"):
        die('unknown command "%s" for "kubeadm upgrade"' % (argv[0] if argv else ""))
    sub, rest = argv[0], argv[1:]
    p = argparse.ArgumentParser(prog="kubeadm upgrade " + sub, add_help=False)
    p.add_argument("version", nargs="?")
    p.add_argument("-y", "--yes", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--kubeconfig")
    p.add_argument("--config")
    p.add_argument("--ignore-preflight-errors", action="append", default=[])
    p.add_argument("--certificate-renewal", default="true")
    p.add_argument("--etcd-upgrade", default="true")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--skip-phases", action="append", default=[])
    p.add_argument("--v", "-v")
    a, extra = p.parse_known_args(rest)
    if extra:
        die("unknown flag: %s" % extra[0])
    if not common.is_root():
        die("[preflight] Some fatal errors occurred:\n\t[ERROR IsPrivilegedUser]: user is not running as root")
    kadm = parse_version(kubeadm_version())
    if sub == "node":
        kc = os.path.join(K8S, "kubelet.conf")
        if not os.path.exists(kc):
            die("error execution phase preflight: couldn't create a Kubernetes client from file \"%s\": failed to "
                "load admin kubeconfig: open %s: no such file or directory" % (kc, kc))
        server, kca, hdrs = C.kubeconfig_auth(kc)
        try:
            c = C.call(server, "cluster_get", ca=kca, headers=hdrs)
        except C.ClientError as e:
            die("error execution phase preflight: unable to fetch the kubeadm-config ConfigMap: " + e.message)
        target = parse_version(c["kubernetesVersion"])
        say("[upgrade] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...")
        say("[preflight] Running pre-flight checks")
        if target > kadm:
            die("error execution phase control-plane: couldn't complete the static pod upgrade: the cluster version "
                "%s is newer than this kubeadm %s. Upgrade kubeadm first" % (_vstr(target), _vstr(kadm)))
        if kadm > target:
            # the lab is strict here: the nodes follow the cluster, which `upgrade apply` upgrades first
            die("error execution phase preflight: the cluster is at %s (kubeadm-config), older than this kubeadm %s: "
                "run 'kubeadm upgrade apply %s' on a control plane node first, then 'kubeadm upgrade node' on the "
                "other nodes" % (_vstr(target), _vstr(kadm), _vstr(kadm)))
        if os.path.exists(os.path.join(MANIFESTS, "kube-apiserver.yaml")):
            say("[upgrade/staticpods] Preparing for \"kube-apiserver\" upgrade")
            rewrite_manifests(_vstr(target))
        else:
            say("[preflight] Skipping prepull. Not a control plane node.")
            say("[upgrade] Skipping phase. Not a control plane node.")
        say("[upgrade] Backing up kubelet config file to /etc/kubernetes/tmp/kubeadm-kubelet-config.yaml")
        say("[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\"")
        say("[upgrade] The configuration for this node was successfully upgraded!")
        say("[upgrade] Now you should go ahead and upgrade the kubelet package using your package manager.")
        return 0
    kube = admin_server(a.kubeconfig)
    c = call_or_die(kube, "cluster_get", {}, "[upgrade/init config] FATAL: unable to fetch the kubeadm-config ConfigMap")
    cur = parse_version(c["kubernetesVersion"])
    say("[upgrade] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...")
    say("[upgrade] Use 'kubeadm init phase upload-config kubeadm --config your-config-file' to re-upload it.")
    say("[upgrade/preflight] Running preflight checks")
    say("[upgrade] Running cluster health checks")
    nodes = call_or_die(kube, "get", {"resource": "nodes"}, "[upgrade/health] FATAL")["items"]
    bad = [n["metadata"]["name"] for n in nodes
           if "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"]
           and next(x for x in n["status"]["conditions"] if x["type"] == "Ready")["status"] == "Unknown"]
    if bad and not a.force:
        die("[upgrade/health] FATAL: [preflight] Some fatal errors occurred:\n\t[ERROR ControlPlaneNodesReady]: "
            "there are NotReady control-planes in the cluster: %s" % bad)
    if sub == "plan":
        target = kadm
        say("[upgrade] Fetching available versions to upgrade to")
        say("[upgrade/versions] Cluster version: %s" % _vstr(cur))
        say("[upgrade/versions] kubeadm version: %s" % _vstr(kadm))
        if kadm < cur:
            die("[upgrade/versions] FATAL: the kubeadm version %s is lower than the cluster version %s: install the "
                "kubeadm of the cluster's version or newer" % (_vstr(kadm), _vstr(cur)))
        if target <= cur:
            say("")
            say("Awesome, you're up-to-date! Enjoy!")
            return 0
        if target[:2] > (cur[0], cur[1] + 1):
            target = None
        say("")
        say("Components that must be upgraded manually after you have upgraded the control plane with "
            "'kubeadm upgrade apply':")
        say("COMPONENT   NODE      CURRENT   TARGET")
        for n in nodes:
            say("kubelet     %-9s %-9s %s" % (n["metadata"]["name"], n["status"]["nodeInfo"]["kubeletVersion"],
                                              _vstr(kadm)))
        say("")
        say("Upgrade to the latest stable version:")
        say("")
        say("COMPONENT                 NODE      CURRENT   TARGET")
        for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
            say("%-25s %-9s %-9s %s" % (comp, "", _vstr(cur), _vstr(kadm)))
        say("")
        if target:
            say("You can now apply the upgrade by executing the following command:")
            say("")
            say("\tkubeadm upgrade apply %s" % _vstr(target))
        else:
            say("kubeadm can upgrade only 1 minor version at a time: upgrade to v%d.%d first" % (cur[0], cur[1] + 1))
        say("")
        return 0
    # apply
    if not a.version:
        die("missing one or more required arguments. Required arguments: [version]")
    target = parse_version(a.version)
    if target is None:
        die('[upgrade/version] FATAL: invalid version "%s"' % a.version)
    if not os.path.exists(os.path.join(MANIFESTS, "kube-apiserver.yaml")):
        die("[upgrade/preflight] FATAL: this node is not a control plane node: %s/kube-apiserver.yaml not found"
            % MANIFESTS)
    errs = []
    if target > kadm:
        errs.append('Specified version to upgrade to "%s" is higher than the kubeadm version "%s". Upgrade kubeadm '
                    'first using the tool you used to install kubeadm' % (_vstr(target), _vstr(kadm)))
    if target[:2] > (cur[0], cur[1] + 1):
        errs.append('Specified version to upgrade to "%s" is too high; kubeadm can upgrade only 1 minor version at a '
                    'time' % _vstr(target))
    if kadm[:2] > target[:2]:
        errs.append('Kubeadm version "%s" can only be used to upgrade to Kubernetes version "v%d.%d"'
                    % (_vstr(kadm), kadm[0], kadm[1]))
    if target < cur:
        errs.append('Specified version to upgrade to "%s" is equal to or lower than the cluster version "%s". '
                    'Downgrades are not supported yet' % (_vstr(target), _vstr(cur)))
    for n in nodes:
        kl = parse_version(n["status"]["nodeInfo"]["kubeletVersion"])
        if kl and kl[:2] < (target[0], target[1] - 3):
            errs.append('There are kubelets in this cluster that are too old that have these versions [%s]'
                        % _vstr(kl))
    if errs and not a.force:
        die("[upgrade/version] FATAL: the --version argument is invalid due to these errors:\n\n%s\n\nCan be "
            "bypassed if you pass the --force flag" % "\n".join("\t- " + e for e in errs))
    say('[upgrade/version] You have chosen to upgrade to version "%s"' % _vstr(target))
    if not a.yes:
        common.out("[upgrade] Are you sure you want to proceed? [y/N]: ")
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            die("won't proceed; the user didn't answer (Y|y) in order to continue")
    common.delay("init", 0.5)
    say("[upgrade/staticpods] Writing new Static Pod manifests to \"/etc/kubernetes/tmp/kubeadm-upgraded-manifests\"")
    rewrite_manifests(_vstr(target))
    call_or_die(kube, "upgrade_cluster", {"version": _vstr(target)}, "[upgrade/apply] FATAL")
    say("[upgrade/postupgrade] Applying label node-role.kubernetes.io/control-plane='' to Nodes with label "
        "node-role.kubernetes.io/master='' (deprecated)")
    say("[addons] Applied essential addon: CoreDNS")
    say("[addons] Applied essential addon: kube-proxy")
    say("")
    say('[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "%s".' % _vstr(target))
    say("")
    say("[upgrade] Now please proceed with upgrading the rest of the nodes by following the right order.")
    return 0


def main(tool, argv):
    args = [x for x in argv]
    if not args or args[0] in ("-h", "--help", "help"):
        say("kubeadm: easily bootstrap a secure Kubernetes cluster\n\nUsage:\n  kubeadm [command]\n\nAvailable "
            "Commands:\n  certs       Commands related to handling kubernetes certificates\n  config      Manage "
            "configuration for a kubeadm cluster\n  init        Run this command in order to set up the Kubernetes "
            "control plane\n  join        Run this on any machine you wish to join an existing cluster\n  reset       "
            "Performs a best effort revert of changes made to this host by 'kubeadm init' or 'kubeadm join'\n  "
            "token       Manage bootstrap tokens\n  upgrade     Upgrade your cluster smoothly to a newer version "
            "with this command\n  version     Print the version of kubeadm")
        return 0
    cmd, rest = args[0], args[1:]
    if cmd == "version":
        v = kubeadm_version()
        if "-o" in rest or any(r.startswith("--output") or r.startswith("-o") for r in rest):
            joined = " ".join(rest)
            if "short" in joined:
                say(v)
                return 0
            if "json" in joined:
                say(json.dumps({"clientVersion": {"major": v.split(".")[0][1:], "minor": v.split(".")[1],
                                                  "gitVersion": v, "platform": "linux/amd64"}}, indent=2))
                return 0
        mj, mn = v[1:].split(".")[:2]
        say('kubeadm version: &version.Info{Major:"%s", Minor:"%s", EmulationMajor:"", EmulationMinor:"", '
            'MinCompatibilityMajor:"", MinCompatibilityMinor:"", GitVersion:"%s", GitCommit:"lab", '
            'GitTreeState:"clean", BuildDate:"2025-09-09T00:00:00Z", GoVersion:"go1.24.6", Compiler:"gc", '
            'Platform:"linux/amd64"}' % (mj, mn, v))
        return 0
    if cmd == "init":
        if rest[:1] == ["phase"]:
            return cmd_init_phase(rest[1:])
        return cmd_init(rest)
    if cmd == "join":
        return cmd_join(rest)
    if cmd == "reset":
        return cmd_reset(rest)
    if cmd == "token":
        return cmd_token(rest)
    if cmd == "certs" and rest[:1] == ["certificate-key"]:
        say(secrets.token_hex(32))
        return 0
    if cmd == "certs" and rest[:1] == ["check-expiration"]:
        return cmd_check_expiration()
    if cmd == "certs" and rest[:1] == ["renew"]:
        return cmd_certs_renew(rest[1:])
    if cmd == "kubeconfig" and rest[:1] == ["user"]:
        p = argparse.ArgumentParser(prog="kubeadm kubeconfig user", add_help=False)
        p.add_argument("--client-name")
        p.add_argument("--org", action="append", default=[])
        p.add_argument("--config")
        p.add_argument("--validity-period")
        a, extra = p.parse_known_args(rest[1:])
        if extra or not a.client_name:
            die('required flag(s) "client-name" not set' if not a.client_name else "unknown flag: %s" % extra[0])
        if not os.path.exists(os.path.join(K8S, "pki", "ca.key")):
            die("couldn't create a kubeconfig; the CA files couldn't be loaded: open /etc/kubernetes/pki/ca.key: "
                "no such file or directory")
        c = yaml.safe_load(open(os.path.join(K8S, "admin.conf"))) if os.path.exists(
            os.path.join(K8S, "admin.conf")) else None
        server = c["clusters"][0]["cluster"]["server"] if c else "https://%s:6443" % common.host_address()
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            days = 365
            if a.validity_period:
                m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", a.validity_period)
                if not m or not a.validity_period:
                    die('invalid argument "%s" for "--validity-period" flag: time: invalid duration "%s"'
                        % (a.validity_period, a.validity_period))
                secs = int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60 + int(m.group(3) or 0)
                days = secs / 86400.0
            PKI.write_kubeconfig(os.path.join(d, "u.conf"), server, a.client_name, "/O=".join(a.org) or None,
                                 days=days)
            with open(os.path.join(d, "u.conf")) as f:
                common.out(f.read())
        return 0
    if cmd == "config" and rest[:2] in (["images", "pull"], ["images", "list"]):
        v = kubeadm_version()
        for i, x in enumerate(rest):
            if x == "--kubernetes-version" and i + 1 < len(rest):
                v = "v" + rest[i + 1].lstrip("v")
            elif x.startswith("--kubernetes-version="):
                v = "v" + x.split("=", 1)[1].lstrip("v")
        imgs = control_plane_images(v)
        if rest[1] == "pull":
            if not common.service_active("containerd"):
                die("failed to create new CRI runtime service: validate service connection: validate CRI v1 runtime "
                    "API for endpoint \"unix:///var/run/containerd/containerd.sock\": rpc error: code = Unavailable")
            pull_images(imgs)
            for i in imgs:
                say("[config/images] Pulled " + i)
        else:
            for i in imgs:
                say(i)
        return 0
    if cmd == "upgrade":
        return cmd_upgrade(rest)
    die('unknown command "%s" for "kubeadm"\nRun \'kubeadm --help\' for usage.' % cmd)
