"""The realistic profile's charges (lab/README.md, Profiles): an index update per update, a package transaction
per call that changes something plus one per package, an image pull per image and per node, and kubeadm
init/join charged only for the images the node does not have yet."""
import pytest

SCALE = 0.1
K8S_REPO_DEB = r"""
mkdir -p -m 755 /etc/apt/keyrings
curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /' > /etc/apt/sources.list.d/kubernetes.list
"""
K8S_REPO_RPM = r"""
printf '[kubernetes]\nname=Kubernetes\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/\nenabled=1\ngpgcheck=1\ngpgkey=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/repodata/repomd.xml.key\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n' > /etc/yum.repos.d/kubernetes.repo
"""


def charges(l, host="lab-1"):
    out = l.exec(host, "cat /var/log/labnode/delays.log 2>/dev/null").stdout
    return [(p[1], round(float(p[2]), 3)) for p in (x.split() for x in out.splitlines()) if len(p) == 3]


KINDS = ("apt-update", "pkg-transaction", "pkg-package", "image-pull")


def charged(l, command, host="lab-1"):
    """What `command` (run as root over SSH) was charged for indexes, packages and images (a service started
    by an install has its own charge, not looked at here)."""
    before = len(charges(l, host))
    r = l.ssh(host, "sudo -n sh -c '%s'" % command.replace("'", "'\\''"))
    assert r.returncode == 0, r.stdout + r.stderr
    return [c for c in charges(l, host)[before:] if c[0] in KINDS]


@pytest.fixture
def realistic(lab, monkeypatch):
    monkeypatch.setenv("LAB_SCALE", str(SCALE))
    return lambda os="ubuntu-22.04": lab(1, os=os, profile="realistic", key="costs")


def test_apt_one_update_and_one_transaction_then_images_per_image(realistic):
    l = realistic()
    assert charged(l, K8S_REPO_DEB) == []
    assert charged(l, "apt-get update -q >/dev/null") == [("apt-update", 0.6)]
    # containerd, runc, kubelet, kubeadm, kubectl, cri-tools, kubernetes-cni: one transaction of seven packages
    assert charged(l, "apt-get install -y -q containerd kubelet=1.34.1-1.1 kubeadm=1.34.1-1.1 kubectl=1.34.1-1.1"
                      " >/dev/null") == [("pkg-transaction", 0.4), ("pkg-package", 1.4)]
    # nothing to change: no charge
    assert charged(l, "apt-get install -y -q containerd >/dev/null") == []

    # images: per image and per node, once; pause a quarter
    assert charged(l, "crictl --runtime-endpoint unix:///var/run/containerd/containerd.sock pull "
                      "registry.k8s.io/pause:3.10.1 >/dev/null") == [("image-pull", 0.1)]
    assert charged(l, "crictl pull registry.k8s.io/pause:3.10.1 >/dev/null") == []
    assert charged(l, "kubeadm config images pull --kubernetes-version v1.34.1 >/dev/null") == [("image-pull", 0.4)] * 6
    assert charged(l, "kubeadm config images pull --kubernetes-version v1.34.1 >/dev/null") == []
    listed = l.ssh("lab-1", "sudo -n crictl images -q | wc -l; sudo -n crictl images | grep -c kube-proxy",
                   check=True).stdout.split()
    assert listed == ["7", "1"]
    # another version's images are other images
    assert charged(l, "kubeadm config images pull --kubernetes-version v1.34.2 >/dev/null") == [("image-pull", 0.4)] * 4
    # crictl needs root (the containerd socket), like the real one
    r = l.ssh("lab-1", "crictl images")
    assert r.returncode == 1 and "permission denied" in r.stderr


def test_dnf_reads_a_new_repository_once_in_its_transaction(realistic):
    l = realistic("amazon-linux-2023")
    # the image's own repository is cached: containerd alone costs no index update
    assert charged(l, "dnf install -y -q containerd >/dev/null") == [("pkg-transaction", 0.4), ("pkg-package", 0.4)]
    assert charged(l, K8S_REPO_RPM) == []
    # the new repository's metadata is read by the install itself: one index update, one transaction
    assert charged(l, "dnf install -y -q --disableexcludes=kubernetes kubelet-1.34.1 kubeadm-1.34.1 kubectl-1.34.1"
                      " >/dev/null") == [("apt-update", 0.6), ("pkg-transaction", 0.4), ("pkg-package", 1.0)]
    assert charged(l, "dnf makecache -q >/dev/null") == []
    # a changed repository file is read again
    assert charged(l, "sed -i s/v1.34/v1.35/g /etc/yum.repos.d/kubernetes.repo && dnf makecache -q >/dev/null") \
        == [("apt-update", 0.6)]
