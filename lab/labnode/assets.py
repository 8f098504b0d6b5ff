"""What the lab's `curl` can fetch: a fixed table of known URLs (no real network, ever), and the
Kubernetes package repository catalogue shared by apt/dnf.

Static payloads live in lab/assets/ (copied to /opt/labnode/assets in each host); binary payloads (the helm
release tarball) are built by `build_binary_assets` at `lab up`.
"""
import base64
import gzip
import hashlib
import io
import os
import re
import tarfile

from labnode import wrapper_script

HELM_VERSION = "v3.16.3"
HELM_TARBALL = "helm-%s-linux-amd64.tar.gz" % HELM_VERSION
FLANNEL_VERSION = "v0.26.1"
CALICO_VERSION = "v3.28.2"

# pkgs.k8s.io: one repository per minor; the patch releases each carries (KubernetesReleases).
# The maintained minors at the newest patch public material shows (late 2026: 1.34.7, 1.35.5, 1.36.1), 1.33 as a
# source to upgrade from; 1.32 (past its end of life) is still served, as pkgs.k8s.io keeps old repositories.
K8S_PATCHES = {"1.32": 9, "1.33": 5, "1.34": 7, "1.35": 5, "1.36": 1}
K8S_PACKAGES = ["kubeadm", "kubelet", "kubectl", "cri-tools", "kubernetes-cni"]
CRI_TOOLS = {"1.32": "1.32.0", "1.33": "1.33.0", "1.34": "1.34.0", "1.35": "1.35.0", "1.36": "1.36.0"}
CNI_VERSION = {"1.32": "1.6.0", "1.33": "1.6.0", "1.34": "1.7.1", "1.35": "1.7.1", "1.36": "1.7.1"}
# The signing key of core:/stable (same key for every minor).
K8S_KEY_FINGERPRINT = "DE15B14486CD377B9E876E1A234654DA9A296436"
K8S_KEY_ID = K8S_KEY_FINGERPRINT[-16:]

# OS repositories: containerd is available there (version per OS).
OS_CONTAINERD = {
    "ubuntu-22.04": "1.7.24-0ubuntu1~22.04.1",
    "ubuntu-24.04": "1.7.24-0ubuntu1~24.04.1",
    "debian-12": "1.6.20~ds1-1+b1",
    "amazon-linux-2023": "1.7.23-1.amzn2023.0.1",
}
OS_BASE_PACKAGES = {
    # packages the OS repository offers besides containerd (name -> version); installing them is a no-op
    "deb": {"apt-transport-https": "2.4.13", "ca-certificates": "20240203", "curl": "7.81.0-1ubuntu1.20",
            "gpg": "2.2.27-3ubuntu2.1", "gnupg": "2.2.27-3ubuntu2.1", "socat": "1.7.4.1-3ubuntu4",
            "conntrack": "1:1.4.6-2build2", "ebtables": "2.0.11-4build2", "ethtool": "1:5.16-1ubuntu0.1",
            "iptables": "1.8.7-1ubuntu5.2", "jq": "1.6-2.1ubuntu3", "runc": "1.1.12-0ubuntu2~22.04.1"},
    "rpm": {"curl": "8.5.0-1.amzn2023.0.4", "gnupg2": "2.3.7-1.amzn2023.0.4", "socat": "1.7.4.2-1.amzn2023.0.2",
            "conntrack-tools": "1.4.6-2.amzn2023.0.2", "iptables-nft": "1.8.8-3.amzn2023.0.2",
            "ethtool": "6.0-1.amzn2023.0.2", "jq": "1.7.1-1.amzn2023.0.1", "runc": "1.1.14-1.amzn2023.0.1",
            "iproute-tc": "5.10.0-2.amzn2023.0.5", "tar": "1.34-1.amzn2023.0.4"},
}


def k8s_versions(minor):
    """Patch versions the repository of `minor` ('1.34') carries, oldest first."""
    n = K8S_PATCHES.get(minor)
    return [] if n is None else ["%s.%d" % (minor, p) for p in range(n + 1)]


def deb_version(v):
    return v + "-1.1"


def rpm_version(v):
    return v


def assets_dir():
    for d in ("/opt/labnode/assets", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                  "assets")):
        if os.path.isdir(d):
            return d
    return "/opt/labnode/assets"


# ------------------------------------------------------------------ OpenPGP armor
def crc24(data):
    crc = 0xB704CE
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def k8s_key_binary():
    """Deterministic stand-in for the binary key (an old-format public-key packet header + body)."""
    body = b""
    seed = ("pkgs.k8s.io " + K8S_KEY_FINGERPRINT).encode()
    while len(body) < 1180:
        seed = hashlib.sha256(seed).digest()
        body += seed
    body = b"\x04\x64\x9a\x2c\x3e\x01" + body[:1180]
    packet = b"\x99" + len(body).to_bytes(2, "big") + body
    uid = b"isv:kubernetes OBS Project <isv:kubernetes@build.opensuse.org>"
    packet += b"\xb4" + bytes([len(uid)]) + uid
    return packet


def armor(data, kind="PUBLIC KEY BLOCK"):
    b64 = base64.b64encode(data).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    crc = base64.b64encode(crc24(data).to_bytes(3, "big")).decode()
    return ("-----BEGIN PGP %s-----\nVersion: GnuPG v2.0.15 (GNU/Linux)\n\n%s\n=%s\n-----END PGP %s-----\n"
            % (kind, "\n".join(lines), crc, kind))


def dearmor(text):
    """Binary content of an ASCII-armored OpenPGP block, or None if `text` is not valid armor."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    m = re.search(r"-----BEGIN PGP ([A-Z ]+)-----\r?\n(.*?)-----END PGP \1-----", text, re.S)
    if not m:
        return None
    block = m.group(2).replace("\r", "")
    if "\n\n" in block:
        block = block.split("\n\n", 1)[1]
    data_lines, crc = [], None
    for line in block.strip().split("\n"):
        line = line.strip()
        if line.startswith("=") and len(line) == 5:
            crc = line[1:]
        elif line:
            data_lines.append(line)
    try:
        data = base64.b64decode("".join(data_lines), validate=True)
    except ValueError:
        return None
    if not data:
        return None
    if crc is not None:
        try:
            if int.from_bytes(base64.b64decode(crc), "big") != crc24(data):
                return None
        except ValueError:
            return None
    return data


# ------------------------------------------------------------------ binary assets (built at `lab up`)
HELM_WRAPPER = wrapper_script("helm")


def helm_tarball_bytes():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tf:
        for name, data, mode in (("linux-amd64/helm", HELM_WRAPPER.encode(), 0o755),
                                 ("linux-amd64/LICENSE", b"Apache License, Version 2.0 (lab copy)\n", 0o644),
                                 ("linux-amd64/README.md", b"Helm: the package manager for Kubernetes (lab).\n",
                                  0o644)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            ti.mtime = 1731974400
            ti.uname = ti.gname = "root"
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


ETCD_VERSION = "v3.6.4"
ETCD_TARBALL = "etcd-%s-linux-amd64.tar.gz" % ETCD_VERSION


def etcd_tarball_bytes():
    """The etcd release tarball: etcd, etcdctl, etcdutl (the lab's, k8s_etcd.py) in etcd-vX-linux-amd64/."""
    buf = io.BytesIO()
    top = ETCD_TARBALL[:-len(".tar.gz")]
    # a fixed gzip mtime: the same bytes on every download, so the published SHA256SUMS holds
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data, mode in (("etcd", wrapper_script("etcd-daemon").encode(), 0o755),
                                 ("etcdctl", wrapper_script("etcdctl").encode(), 0o755),
                                 ("etcdutl", wrapper_script("etcdutl").encode(), 0o755),
                                 ("README.md", b"etcd: a distributed reliable key-value store (lab).\n", 0o644)):
            ti = tarfile.TarInfo(top + "/" + name)
            ti.size = len(data)
            ti.mode = mode
            ti.mtime = 1754006400
            ti.uname = ti.gname = "root"
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def build_binary_assets(dest):
    data = helm_tarball_bytes()
    with open(os.path.join(dest, HELM_TARBALL), "wb") as f:
        f.write(data)
    with open(os.path.join(dest, HELM_TARBALL + ".sha256sum"), "w") as f:
        f.write("%s  %s\n" % (hashlib.sha256(data).hexdigest(), HELM_TARBALL))
    with open(os.path.join(dest, HELM_TARBALL + ".sha256"), "w") as f:
        f.write(hashlib.sha256(data).hexdigest() + "\n")


# ------------------------------------------------------------------ the URL table
def _file(name):
    def get():
        p = os.path.join(assets_dir(), name)
        if name == HELM_TARBALL and not os.path.exists(p):
            return helm_tarball_bytes()
        if name.startswith(HELM_TARBALL + ".sha256") and not os.path.exists(p):
            h = hashlib.sha256(helm_tarball_bytes()).hexdigest()
            return (h + ("  " + HELM_TARBALL if name.endswith("sum") else "") + "\n").encode()
        with open(p, "rb") as f:
            return f.read()
    return get


def _key():
    return armor(k8s_key_binary()).encode()


def lookup(url):
    """(status, body_fn, redirect_to) for a URL the lab knows; None if the host is unknown;
    (404, None, None) for a known host but unknown path."""
    m = re.match(r"^(https?)://([^/:]+)(?::\d+)?(/[^?#]*)?", url)
    if not m:
        return None
    host, path = m.group(2).lower(), m.group(3) or "/"
    if host == "pkgs.k8s.io":
        # the real pkgs.k8s.io answers with a redirect to its CDN: without -L curl prints nothing useful
        mm = re.match(r"^/core:/stable:/v(\d+\.\d+)/(deb|rpm)/(.*)$", path)
        if mm and mm.group(1) in K8S_PATCHES:
            return (302, None, "https://prod-cdn.packages.k8s.io" + path)
        return (403, lambda: b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>\n", None)
    if host == "prod-cdn.packages.k8s.io":
        mm = re.match(r"^/core:/stable:/v(\d+\.\d+)/(deb|rpm)/(.*)$", path)
        if mm and mm.group(1) in K8S_PATCHES:
            rest = mm.group(3)
            if (mm.group(2), rest) in (("deb", "Release.key"), ("rpm", "repodata/repomd.xml.key")):
                return (200, _key, None)
        return (404, None, None)
    if host == "get.helm.sh":
        name = path.lstrip("/")
        if name in (HELM_TARBALL, HELM_TARBALL + ".sha256sum", HELM_TARBALL + ".sha256"):
            return (200, _file(name), None)
        return (404, None, None)
    if host == "raw.githubusercontent.com":
        if path == "/helm/helm/main/scripts/get-helm-3":
            return (200, _file("get-helm-3"), None)
        if path == "/projectcalico/calico/%s/manifests/tigera-operator.yaml" % CALICO_VERSION:
            return (200, _file("tigera-operator.yaml"), None)
        if path == "/projectcalico/calico/%s/manifests/custom-resources.yaml" % CALICO_VERSION:
            return (200, _file("calico-custom-resources.yaml"), None)
        return (404, None, None)
    if host == "github.com":
        if path in ("/flannel-io/flannel/releases/download/%s/kube-flannel.yml" % FLANNEL_VERSION,
                    "/flannel-io/flannel/releases/latest/download/kube-flannel.yml"):
            # GitHub release downloads redirect to objects.githubusercontent.com (needs -L)
            return (302, None, "https://objects.githubusercontent.com/github-production-release-asset/flannel/"
                               "%s/kube-flannel.yml" % FLANNEL_VERSION)
        if path == "/etcd-io/etcd/releases/download/%s/SHA256SUMS" % ETCD_VERSION:
            return (302, None, "https://objects.githubusercontent.com/github-production-release-asset/etcd/"
                               "%s/SHA256SUMS" % ETCD_VERSION)
        if path == "/etcd-io/etcd/releases/download/%s/%s" % (ETCD_VERSION, ETCD_TARBALL):
            return (302, None, "https://objects.githubusercontent.com/github-production-release-asset/etcd/"
                               "%s/%s" % (ETCD_VERSION, ETCD_TARBALL))
        if path == "/kubernetes-sigs/metrics-server/releases/latest/download/components.yaml":
            return (302, None, "https://objects.githubusercontent.com/github-production-release-asset/"
                               "metrics-server/components.yaml")
        return (404, None, None)
    if host == "objects.githubusercontent.com":
        if path.endswith("/flannel/%s/kube-flannel.yml" % FLANNEL_VERSION):
            return (200, _file("kube-flannel.yml"), None)
        if path.endswith("/etcd/%s/SHA256SUMS" % ETCD_VERSION):
            return (200, lambda: ("%s  %s\n" % (hashlib.sha256(etcd_tarball_bytes()).hexdigest(), ETCD_TARBALL))
                    .encode(), None)
        if path.endswith("/etcd/%s/%s" % (ETCD_VERSION, ETCD_TARBALL)):
            return (200, etcd_tarball_bytes, None)
        if path.endswith("/metrics-server/components.yaml"):
            return (200, _file("metrics-server-components.yaml"), None)
        return (404, None, None)
    return None
