"""Package database shared by apt-get/apt-mark/dpkg-query (deb family) and dnf/rpm (rpm family).

packages.json: {"installed": {name: version}, "held": [names], "lists": {repo-id: {...}}}
Versions: deb `1.34.1-1.1`, rpm `1.34.1` (release `150500.1.1`). What a package puts on disk when it is
installed (binaries as labnode wrappers, unit files, CNI plugins) is in `FILES`/`install_files`."""
import os

from labnode import PACKAGE_BINARIES, assets, common, wrapper_script

RPM_RELEASE = "150500.1.1"

KUBELET_UNIT = """[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""
KUBEADM_DROPIN = """# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should
# use the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-{defaults}
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""
CONTAINERD_UNIT = """[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
"""

DEPENDS = {"containerd": ["runc"], "kubeadm": ["cri-tools", "kubernetes-cni"], "kubelet": ["kubernetes-cni"]}
K8S_PKGS = set(assets.K8S_PACKAGES)


def unit_dir():
    return "/usr/lib/systemd/system" if common.os_family() == "rpm" else "/lib/systemd/system"


REAL_TOOLS = "/opt/labnode/realtools.json"


def real_kubectl(version):
    """The machine's real kubectl for a package version (`lab up` recorded them in realtools.json): the binary of
    the same minor, else the closest older one, else the machine's default; None without one (the lab's
    imitation is installed then)."""
    tools = (common.load_json(REAL_TOOLS, {}) or {}).get("kubectl") or {}
    if not tools.get("default"):
        return None
    vs = {}
    for k, p in (tools.get("versions") or {}).items():
        try:
            vs[tuple(int(x) for x in k.split("."))] = p
        except ValueError:
            continue
    try:
        want = tuple(int(x) for x in str(version or "").split("-")[0].split(".")[:2])
    except ValueError:
        want = None
    if want and len(want) == 2 and vs:
        older = [v for v in vs if v <= want]
        pick = max(older) if older else min(vs)
        return vs[pick]
    return tools["default"]


def install_files(name, version=None):
    """Files the package puts on disk. The kubectl package installs the machine's real kubectl (a link to it)
    when there is one, so that every kubectl command in a host is judged by the real client."""
    for b in PACKAGE_BINARIES.get(name, []):
        real = real_kubectl(version) if b == "kubectl" else None
        if real and os.path.exists(real):
            path = "/usr/bin/" + b
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(real, path)
            continue
        common.write_file("/usr/bin/" + b, wrapper_script(b), 0o755)
    if name == "kubelet":
        common.write_file(os.path.join(unit_dir(), "kubelet.service"), KUBELET_UNIT)
        defaults = "/etc/sysconfig/kubelet" if common.os_family() == "rpm" else "/etc/default/kubelet"
        common.write_file(os.path.join(unit_dir(), "kubelet.service.d", "10-kubeadm.conf"),
                          KUBEADM_DROPIN.replace("{defaults}", defaults))
        if not os.path.exists(defaults):
            common.write_file(defaults, "KUBELET_EXTRA_ARGS=\n")
        os.makedirs("/etc/kubernetes/manifests", exist_ok=True)
        os.makedirs("/var/lib/kubelet", exist_ok=True)
    elif name == "containerd":
        common.write_file(os.path.join(unit_dir(), "containerd.service"), CONTAINERD_UNIT)
        os.makedirs("/etc/containerd", exist_ok=True)
    elif name == "kubernetes-cni":
        for p in ("bridge", "host-local", "loopback", "portmap", "bandwidth", "firewall", "tuning"):
            common.write_file("/opt/cni/bin/" + p, "#!/bin/sh\necho 'CNI plugin %s (lab)' >&2\nexit 1\n" % p, 0o755)


def remove_files(name):
    paths = ["/usr/bin/" + b for b in PACKAGE_BINARIES.get(name, [])]
    if name == "kubelet":
        paths += [os.path.join(unit_dir(), "kubelet.service"),
                  os.path.join(unit_dir(), "kubelet.service.d", "10-kubeadm.conf")]
    elif name == "containerd":
        paths += [os.path.join(unit_dir(), "containerd.service")]
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def version_key(v):
    """Sort key for versions like 1.34.1-1.1, 1.7.24-0ubuntu1~22.04.1: numbers compare numerically,
    '~' sorts before everything, even the end of the string (Debian rules, good enough here)."""
    out = []
    for part in v.replace("~", ".~.").replace("-", ".-.").replace(":", ".").split("."):
        if part == "":
            continue
        if part.isdigit():
            out.append((2, int(part), ""))
        elif part == "~":
            out.append((-1, 0, ""))
        else:
            out.append((1, 0, part))
    out.append((0, 0, ""))
    return out


def os_catalogue():
    """{name: [versions]} of the OS repository."""
    fam = common.os_family()
    cat = {n: [v] for n, v in assets.OS_BASE_PACKAGES[fam].items()}
    cat["containerd"] = [assets.OS_CONTAINERD.get(common.host_os(), assets.OS_CONTAINERD["ubuntu-22.04"])]
    return cat


def k8s_catalogue(minor):
    fam = common.os_family()
    cat = {}
    for v in assets.k8s_versions(minor):
        fmt = assets.deb_version(v) if fam == "deb" else assets.rpm_version(v)
        for n in ("kubeadm", "kubelet", "kubectl"):
            cat.setdefault(n, []).append(fmt)
    cat["cri-tools"] = [assets.CRI_TOOLS[minor] + ("-1.1" if fam == "deb" else "")]
    cat["kubernetes-cni"] = [assets.CNI_VERSION[minor] + ("-1.1" if fam == "deb" else "")]
    return cat


def merge(cats):
    out = {}
    for origin, cat in cats:
        for n, vs in cat.items():
            for v in vs:
                out.setdefault(n, {})[v] = origin
    return out
