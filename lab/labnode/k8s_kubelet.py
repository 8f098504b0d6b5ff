"""Simulated kubelet: `kubelet --version`, and `kubelet-daemon` (what the kubelet systemd unit runs).

The daemon exits (the unit crash-loops, like the real one) until kubeadm wrote /var/lib/kubelet/config.yaml
and /etc/kubernetes/kubelet.conf. Then it listens on the host's address:10250, runs the control plane's
static pods (the lab kube-apiserver daemon, when /etc/kubernetes/manifests/kube-apiserver.yaml exists and the
container runtime is healthy) and posts the node's status to the API server about every second. When the
cluster runs a pod network add-on that fits, it pulls the images of that add-on's DaemonSet pod the node's
image store does not have (charged per image, like any pull) and writes the add-on's CNI config into
/etc/cni/net.d (what the add-on's DaemonSet does on a real node)."""
import hashlib
import os
import re
import socket
import sys
import threading
import time

import yaml

from . import common
from . import k8s_client as C
from . import os_containerd

KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
CONFIG = "/var/lib/kubelet/config.yaml"
FLAGS = "/var/lib/kubelet/kubeadm-flags.env"
# written once the node is registered, as the real kubelet writes its client certificate after the TLS bootstrap
CLIENT_CERT = "/var/lib/kubelet/pki/kubelet-client-current.pem"
MANIFESTS = "/etc/kubernetes/manifests"
CNI_DIR = "/etc/cni/net.d"
INTERVAL = 1.0
STEADY = 5.0        # seconds between status posts when nothing changes (real kubelet: 10s)


def log(msg):
    sys.stderr.write("%s kubelet: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


_started_version = None


def version():
    v = common.package_version("kubelet") or "1.34.1"
    return "v" + v.split("-")[0]


def running_version():
    """The version of the kubelet binary this daemon started from (a package upgrade needs a restart)."""
    global _started_version
    if _started_version is None:
        _started_version = version()
    return _started_version


def kubelet_flags():
    """--name=value flags of /var/lib/kubelet/kubeadm-flags.env."""
    try:
        with open(FLAGS) as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    m = re.search(r'KUBELET_KUBEADM_ARGS="([^"]*)"', text)
    out = {}
    for tok in (m.group(1) if m else "").split():
        if tok.startswith("--") and "=" in tok:
            k, v = tok[2:].split("=", 1)
            out[k] = v
    return out


ALLOWED_K8S_LABELS = ("kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
                      "beta.kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type",
                      "node.kubernetes.io/instance-type", "failure-domain.beta.kubernetes.io/region",
                      "failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/region",
                      "topology.kubernetes.io/zone")


def register_labels_taints():
    """(labels, taints, error) from --node-labels / --register-with-taints; error like the kubelet's flag
    validation (labels under kubernetes.io / k8s.io are reserved, except a few and node-restriction ones)."""
    f = kubelet_flags()
    labels, taints, bad = {}, [], []
    for kv in filter(None, f.get("node-labels", "").split(",")):
        k, _, v = kv.partition("=")
        labels[k] = v
        dom = k.split("/", 1)[0] if "/" in k else ""
        if (dom.endswith("kubernetes.io") or dom.endswith("k8s.io")) and k not in ALLOWED_K8S_LABELS and \
                not dom.endswith("node-restriction.kubernetes.io") and not dom.startswith(("kubelet.", "node.")):
            bad.append(k)
    for t in filter(None, f.get("register-with-taints", "").split(",")):
        kv, _, eff = t.partition(":")
        k, _, v = kv.partition("=")
        taint = {"key": k, "effect": eff}
        if v:
            taint["value"] = v
        taints.append(taint)
    err = None
    if bad:
        err = ("failed to validate kubelet flags: unknown 'kubernetes.io' or 'k8s.io' labels specified with "
               "--node-labels: %s\n--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix "
               "(kubelet.kubernetes.io, node.kubernetes.io) or be in the specifically allowed set" % sorted(bad))
    return labels, taints, err


def node_name():
    try:
        with open(FLAGS) as f:
            m = re.search(r"--hostname-override=(\S+?)\"?(\s|$)", f.read())
            if m:
                return m.group(1).strip('"')
    except FileNotFoundError:
        pass
    return socket.gethostname().lower()


def os_image():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except FileNotFoundError:
        pass
    return "Linux"


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def cni_config():
    try:
        names = sorted(n for n in os.listdir(CNI_DIR) if n.endswith((".conf", ".conflist", ".json")))
    except FileNotFoundError:
        return None
    return names[0] if names else None


def _manifest_flags(path):
    """(command flags, digest) of a static pod manifest, or (None, None)."""
    try:
        with open(path, "rb") as f:
            text = f.read()
        pod = yaml.safe_load(text)
        cmd = pod["spec"]["containers"][0]["command"]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return None, None
    return dict(x[2:].split("=", 1) for x in cmd[1:] if x.startswith("--") and "=" in x), \
        hashlib.sha256(text).hexdigest()


def sync_etcd(runtime_ok):
    """The etcd static pod (k8s_etcd.daemon) while its manifest exists; restarted when the manifest changes.
    Returns its --data-dir (where the API server's registry lives) or None."""
    path = os.path.join(MANIFESTS, "etcd.yaml")
    flags, digest = _manifest_flags(path) if os.path.exists(path) else (None, None)
    seen = os.path.join(common.RUN_DIR, "etcd.manifest")
    if flags is None or not runtime_ok:
        if common.daemon_running("etcd"):
            common.stop_daemon("etcd")
        return flags.get("data-dir") if flags else None
    if common.daemon_running("etcd"):
        if digest == read(seen, digest):
            return flags.get("data-dir")
        log("static pod etcd: manifest changed, restarting")
        common.stop_daemon("etcd")
    addr = common.host_address()
    argv = ["/usr/bin/python3", "-m", "labnode", "etcd-daemon", "--address=" + addr]
    for fl in ("cert-file", "key-file", "trusted-ca-file", "data-dir", "name", "initial-cluster", "initial-cluster-state"):
        if flags.get(fl):
            argv.append("--%s=%s" % (fl, flags[fl]))
    common.start_daemon("etcd", argv)
    common.write_file(seen, digest + "\n")
    log("started static pod etcd-%s" % node_name())
    return flags.get("data-dir")


def sync_static_pods(runtime_ok):
    """Run the API server static pod as a lab daemon while its manifest exists (and the runtime works)."""
    data_dir = sync_etcd(runtime_ok)
    path = os.path.join(MANIFESTS, "kube-apiserver.yaml")
    if not os.path.exists(path):
        if common.daemon_running("kube-apiserver"):
            common.stop_daemon("kube-apiserver")
        return False
    if not runtime_ok:
        return False
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        digest = None
    # the registry is etcd's: an API server restarts when etcd moves to another data directory (a restore)
    digest = digest and hashlib.sha256(("%s %s" % (digest, data_dir)).encode()).hexdigest()
    seen = os.path.join(common.RUN_DIR, "kube-apiserver.manifest")
    if common.daemon_running("kube-apiserver"):
        if digest == read(seen, digest):
            return True
        # a changed manifest (an upgrade's new image, new flags): the kubelet replaces the static pod
        log("static pod kube-apiserver: manifest changed, restarting")
        common.stop_daemon("kube-apiserver")
    try:
        with open(path) as f:
            pod = yaml.safe_load(f)
        cmd = pod["spec"]["containers"][0]["command"]
        ann = (pod.get("metadata") or {}).get("annotations") or {}
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as e:
        log("could not read static pod manifest %s: %s" % (path, e))
        return False
    flags = dict(x[2:].split("=", 1) for x in cmd[1:] if x.startswith("--") and "=" in x)
    addr, port = flags.get("advertise-address"), flags.get("secure-port", "6443")
    if addr != common.host_address():
        # this host owns only its own address: the API server cannot bind anything else (and the lab never
        # listens outside 127.0.0.0/8)
        log('static pod kube-apiserver: "command failed" err="failed to listen on %s:%s: listen tcp %s:%s: bind: '
            'cannot assign requested address"' % (addr, port, addr, port))
        return False
    argv = ["/usr/bin/python3", "-m", "labnode", "kube-apiserver-daemon", "--address", addr, "--port", port]
    for fl in ("tls-cert-file", "tls-private-key-file", "client-ca-file", "requestheader-client-ca-file"):
        if flags.get(fl):
            argv += ["--" + fl, flags[fl]]
    try:
        image = pod["spec"]["containers"][0].get("image") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        image = ""
    if re.search(r":v\d+\.\d+\.\d+$", image):
        argv += ["--lab-version", image.rsplit(":", 1)[1]]      # the binary the image holds: its /version
    if ann.get("lab.bootstrap/store"):
        store = ann["lab.bootstrap/store"]
        if data_dir and os.path.dirname(store) != data_dir.rstrip("/"):
            store = os.path.join(data_dir, "store.json")
        argv += ["--store", store]
    elif ann.get("lab.bootstrap/upstream"):
        argv += ["--upstream", ann["lab.bootstrap/upstream"]]
        if data_dir:
            argv += ["--etcd-data-dir", data_dir]
    common.start_daemon("kube-apiserver", argv)
    if digest:
        common.write_file(seen, digest + "\n")
    log("started static pod kube-apiserver-%s" % node_name())
    return True


def serve_port(addr):
    """The kubelet's own port (10250): bound for real, so port checks see it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 10250))
    s.listen(16)

    def loop():
        while True:
            try:
                c, _ = s.accept()
                try:
                    c.recv(1024)
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                finally:
                    c.close()
            except OSError:
                return
    threading.Thread(target=loop, daemon=True).start()
    return s


def watch_own_node(name, shared, wake):
    """What the real kubelet's informer on its own Node gives it: when the Node it registered is deleted, the
    main loop is woken and registers it again (a running kubelet re-creates its deleted Node)."""
    while True:
        conn, uid = shared.get("conn"), shared.get("uid")
        if not conn or not uid:
            time.sleep(INTERVAL)
            continue
        server, ca, hdrs = conn
        try:
            res = C.call(server, "node_watch", {"node": name, "uid": uid, "timeout": 15}, timeout=40, ca=ca,
                         headers=hdrs)
        except C.ClientError:
            time.sleep(INTERVAL)
            continue
        if res.get("uid") != uid and shared.get("uid") == uid:
            shared["gone"] = uid
            wake.set()


def daemon():
    if not os.path.exists(CONFIG):
        log('"command failed" err="failed to load kubelet config file, path: %s, error: failed to load Kubelet '
            'config file %s, error failed to read kubelet config file \\"%s\\", error: open %s: no such file or '
            'directory"' % (CONFIG, CONFIG, CONFIG, CONFIG))
        return 1
    try:
        with open(CONFIG) as f:
            cfg = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        log('"command failed" err="failed to load kubelet config file: %s"' % e)
        return 1
    fail_swap_on = cfg.get("failSwapOn", True) is not False
    if common.swap_on() and fail_swap_on:
        log('"command failed" err="failed to run Kubelet: running with swap on is not supported, please disable '
            'swap or set --fail-swap-on flag to false"')
        return 1
    if not os.path.exists(KUBELET_CONF) and not os.path.exists("/etc/kubernetes/bootstrap-kubelet.conf"):
        log('"command failed" err="failed to run Kubelet: unable to load bootstrap kubeconfig: stat '
            '/etc/kubernetes/bootstrap-kubelet.conf: no such file or directory"')
        return 1
    reg_labels, reg_taints, flag_err = register_labels_taints()
    if flag_err:
        log('"command failed" err="%s"' % flag_err)
        return 1
    addr = common.host_address()
    try:
        sock = serve_port(addr)
    except OSError as e:
        log('"command failed" err="failed to listen on %s:10250: %s"' % (addr, e))
        return 1
    name = node_name()
    info = common.host_info()
    log("kubelet %s starting as node %s" % (running_version(), name))
    last_err = None
    registered = False
    kc_cache = (None, None)
    last_report, last_sent = None, 0.0
    shared, wake = {}, threading.Event()
    threading.Thread(target=watch_own_node, args=(name, shared, wake), daemon=True).start()

    def pause():
        wake.wait(INTERVAL)
        wake.clear()
    while True:
        if not os.path.exists(KUBELET_CONF) or not os.path.exists(CONFIG):
            log("kubelet configuration removed; exiting")
            sock.close()
            return 1
        if common.swap_on() and fail_swap_on:
            log('"command failed" err="failed to run Kubelet: running with swap on is not supported, please disable '
                'swap"')
            sock.close()
            return 1
        ok, reason = common.containerd_healthy()
        static = sync_static_pods(ok)
        try:
            mtime = os.stat(KUBELET_CONF).st_mtime
            if kc_cache[0] != mtime:
                kc_cache = (mtime, C.kubeconfig_auth(KUBELET_CONF))
            server, ca, hdrs = kc_cache[1]
            shared["conn"] = kc_cache[1]
        except (C.ClientError, OSError) as e:
            log("cannot read kubelet.conf: %s" % getattr(e, "message", e))
            pause()
            continue
        if shared.get("gone"):
            if shared.pop("gone") == shared.get("uid") and registered:
                log('"Node was deleted; registering it again" node="%s"' % name)
                registered = False
        report = {"address": addr, "cpus": info.get("cpus", 2), "memoryMB": info.get("memoryMB", 2048),
                  "runtimeOk": ok, "runtimeReason": reason, "swap": common.swap_on(), "failSwapOn": fail_swap_on,
                  "cniConfig": cni_config(), "kubeletVersion": running_version(),
                  "runtimeVersion": "containerd://%s" % (common.package_version("containerd") or "").split("-")[0],
                  "osImage": os_image(), "kernelVersion": os.uname().release,
                  "machineID": read("/etc/machine-id"), "systemUUID": read("/sys/class/dmi/id/product_uuid"),
                  "staticPods": static}
        # post often while something changes or the node is not ready yet; every few seconds when steady
        if registered and report == last_report and report["cniConfig"] and ok and time.time() - last_sent < STEADY:
            pause()
            continue
        try:
            rep = dict(report, register=not registered)
            if not registered:
                rep.update(registerLabels=reg_labels, registerTaints=reg_taints)
            res = C.call(server, "heartbeat", {"node": name, "report": rep}, timeout=5, ca=ca, headers=hdrs)
            if not registered:
                common.write_file(CLIENT_CERT, "# lab kubelet client credential of system:node:%s\n" % name, 0o600)
            registered = True
            shared["uid"] = res.get("uid")
            last_report, last_sent = report, time.time()
            if last_err:
                log("API server reachable again")
            last_err = None
            cni = res.get("cni")
            if cni and not report["cniConfig"]:
                # the pod network's DaemonSet pod starts here first: its images are pulled unless the node's
                # image store has them already (containerd fetches nothing present), then its init container
                # writes the configuration
                try:
                    fetched = os_containerd.pull(cni.get("images") or [])
                except OSError as e:
                    log('"Failed to pull image" err="%s"' % e)
                    pause()
                    continue
                for ref in fetched:
                    log('"Pulled image" image="%s"' % ref)
                os.makedirs(CNI_DIR, exist_ok=True)
                common.write_file(os.path.join(CNI_DIR, cni["file"]), cni["content"])
                log("pod network ready: wrote %s/%s" % (CNI_DIR, cni["file"]))
                continue
        except C.ClientError as e:
            if e.message != last_err:
                log('"Unable to register node with API server" err="%s" node="%s"' % (e.message, name))
            last_err = e.message
            if e.reason == "NotFound" and registered:
                # its Node is gone: register it again at the next round
                registered = False
        pause()


def main(tool, argv):
    if tool == "kubelet-daemon":
        return daemon()
    if "--version" in argv:
        common.out("Kubernetes %s\n" % version())
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        common.out("The kubelet is the primary \"node agent\" that runs on each node.\n\nUsage:\n  kubelet [flags]\n")
        return 0
    return daemon()
