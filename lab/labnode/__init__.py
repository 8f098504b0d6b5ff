"""LabNode: the simulated node toolchain installed into every lab host.

TOOLS maps a command name to the labnode module that implements it; every module exposes
`main(tool, argv) -> int | None`. `python3 -m labnode TOOL ARGS...` dispatches (see __main__.py).
Both lab engineers edit these literals: A the OS tools, B the Kubernetes ones.
"""

TOOLS = {
    # --- OS (A)
    "apt-get": "os_apt",
    "apt": "os_apt",
    "apt-mark": "os_apt",
    "apt-cache": "os_apt",
    "dpkg-query": "os_dpkg",
    "dpkg": "os_dpkg",
    "dnf": "os_dnf",
    "yum": "os_dnf",
    "rpm": "os_dnf",
    "systemctl": "os_systemctl",
    "journalctl": "os_systemctl",
    "modprobe": "os_kernel",
    "lsmod": "os_kernel",
    "sysctl": "os_kernel",
    "swapoff": "os_kernel",
    "swapon": "os_kernel",
    "curl": "os_curl",
    "gpg": "os_gpg",
    "iptables": "os_net",
    "ip6tables": "os_net",
    "iptables-save": "os_net",
    "ip": "os_net",
    "ss": "os_ss",
    "netstat": "os_ss",
    "nproc": "os_facts",
    "date": "os_facts",
    "hostname": "os_facts",
    "reboot": "os_facts",
    "shutdown": "os_facts",
    "containerd": "os_containerd",
    "ctr": "os_containerd",
    "crictl": "os_containerd",
    "containerd-daemon": "os_containerd",
    # --- Kubernetes (B)
    "kubeadm": "k8s_kubeadm",
    "kubelet": "k8s_kubelet",
    "kubelet-daemon": "k8s_kubelet",
    "kubectl": "k8s_kubectl",
    "helm": "k8s_helm",
    "kube-apiserver-daemon": "k8s_apiserver",
    "etcd-daemon": "k8s_etcd",
    "etcdctl": "k8s_etcd",
    "etcdutl": "k8s_etcd",
}

# Commands that exist in the host only once a package put them there (apt/dnf install writes the wrapper),
# or never as a file at all (internal entry points).
PACKAGE_BINARIES = {
    "containerd": ["containerd", "ctr"],
    "cri-tools": ["crictl"],
    "kubeadm": ["kubeadm"],
    "kubelet": ["kubelet"],
    "kubectl": ["kubectl"],
}
NOT_PREINSTALLED = {"helm", "containerd-daemon", "kubelet-daemon", "kube-apiserver-daemon", "etcd-daemon", "etcdctl",
                    "etcdutl"}
# Tools that only exist on one OS family ('deb' = ubuntu/debian, 'rpm' = amazon linux).
FAMILY_ONLY = {
    "apt-get": "deb", "apt": "deb", "apt-mark": "deb", "apt-cache": "deb", "dpkg-query": "deb", "dpkg": "deb",
    "dnf": "rpm", "yum": "rpm", "rpm": "rpm",
}

# systemd services: the command its (simulated) unit runs. A service starts only when its package is
# installed and its unit file exists (os_systemctl checks both).
SERVICES = {
    "containerd": ["/usr/bin/python3", "-m", "labnode", "containerd-daemon"],
    "kubelet": ["/usr/bin/python3", "-m", "labnode", "kubelet-daemon"],
}
# unit name -> package that ships it
SERVICE_PACKAGES = {
    "containerd": "containerd",
    "kubelet": "kubelet",
}


def preinstalled_tools(family):
    """Tool names that get a wrapper in /usr/bin and /usr/sbin at `lab up` for an OS family."""
    packaged = {b for bins in PACKAGE_BINARIES.values() for b in bins}
    return sorted(t for t in TOOLS
                  if t not in packaged and t not in NOT_PREINSTALLED
                  and FAMILY_ONLY.get(t, family) == family)


CLIENT = "/opt/labnode/bin/labnode"


def wrapper_script(tool):
    """The file content installed as /usr/bin/<tool> in a host: the thin client that hands the call to the host's
    fork server (forkserver.py; it runs the tool itself when there is no server), or, in a lab made without a C
    compiler, the interpreter directly."""
    return ('#!/bin/sh\n[ ! -x %s ] || exec %s %s "$@"\n'
            'PYTHONPATH=/opt/labnode exec /usr/bin/python3 -m labnode %s "$@"\n' % (CLIENT, CLIENT, tool, tool))
