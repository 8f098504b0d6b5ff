"""Which releases does a Kubernetes package repository have? The question bootstrap's preflight asks the host's
package manager (AptNodeOS/DnfNodeOS `repositoryVersionsQuery`) through a configuration of its own in a temporary
directory: apt with `-o Dir::Etc::SourceList/SourceParts/Dir::State::Lists`, then `apt-cache madison`; dnf with
`--repofrompath`/`--repo`, then `list --showduplicates`. The lab answers in the real tools' formats, refuses what
they refuse, and leaves the host's own sources and lists alone.

The scripts below are the product's (kept in step by hand: the E2E test PackageRepositoryTests runs the real one)."""
import re

APT_QUERY = r"""
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/parts" "$d/lists/partial" "$d/cache/archives/partial" && mkdir -m 700 "$d/gnupg"
curl -fsSL -o "$d/Release.key" 'https://pkgs.k8s.io/core:/stable:/v{minor}/deb/Release.key' || exit 1
gpg --homedir "$d/gnupg" --dearmor -o "$d/keyring.gpg" "$d/Release.key" || exit 1
printf 'deb [signed-by=%s] %s /\n' "$d/keyring.gpg" 'https://pkgs.k8s.io/core:/stable:/v{minor}/deb/' > "$d/sources.list"
set -- -o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/parts" \
  -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o APT::Sandbox::User=root
apt-get "$@" update -q >"$d/update.log" 2>&1 || {{ cat "$d/update.log" >&2; exit 1; }}
apt-cache "$@" madison kubeadm
"""

DNF_QUERY = r"""
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
dnf -q --setopt=cachedir="$d" '--repofrompath=bootstrap-kubernetes-{minor},https://pkgs.k8s.io/core:/stable:/v{minor}/rpm/' \
  '--repo=bootstrap-kubernetes-{minor}' \
  '--setopt=bootstrap-kubernetes-{minor}.gpgkey=https://pkgs.k8s.io/core:/stable:/v{minor}/rpm/repodata/repomd.xml.key' \
  list --showduplicates kubeadm
"""

MADISON = re.compile(r"^ +kubeadm \| (\S+) \| https://pkgs\.k8s\.io/core:/stable:/v1\.35/deb  Packages$")
DNF_ROW = re.compile(r"^kubeadm\.x86_64 +(\S+) +(\S+)$")


def sudo(script):
    return "sudo -n bash -c '%s'" % script.replace("'", "'\\''")


def test_apt_reads_a_repository_without_configuring_it(lab):
    l = lab(1)
    r = l.ssh("lab-1", sudo(APT_QUERY.format(minor="1.35")))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(MADISON.match(x) for x in lines), r.stdout
    assert [MADISON.match(x).group(1) for x in lines] == ["1.35.%d-1.1" % p for p in range(5, -1, -1)]
    # the host's own configuration and lists know nothing of it
    r = l.ssh("lab-1", "ls /etc/apt/sources.list.d/; apt-cache madison kubeadm; ls /tmp")
    assert "kubernetes" not in r.stdout and "kubeadm |" not in r.stdout, r.stdout
    # a minor pkgs.k8s.io does not serve: the update fails, as apt's does
    r = l.ssh("lab-1", sudo(APT_QUERY.format(minor="1.29")))
    assert r.returncode != 0 and r.stdout == "", r.stdout


def test_apt_private_lists_need_the_key_and_their_directory(lab):
    l = lab(1)
    no_key = APT_QUERY.format(minor="1.35").replace(
        'gpg --homedir "$d/gnupg" --dearmor -o "$d/keyring.gpg" "$d/Release.key" || exit 1', "true")
    assert no_key != APT_QUERY.format(minor="1.35")
    r = l.ssh("lab-1", sudo(no_key))
    assert r.returncode == 1 and "NO_PUBKEY" in r.stderr, r.stderr
    no_partial = APT_QUERY.format(minor="1.35").replace('"$d/lists/partial"', '"$d/lists"')
    r = l.ssh("lab-1", sudo(no_partial))
    assert r.returncode == 1 and "/lists/partial is missing" in r.stderr, r.stderr


def test_dnf_lists_every_version_of_a_repository_given_on_the_command_line(lab):
    l = lab(1, "amazon-linux-2023")
    r = l.ssh("lab-1", sudo(DNF_QUERY.format(minor="1.35")))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Available Packages", r.stdout
    rows = [DNF_ROW.match(x) for x in lines[1:]]
    assert all(rows), r.stdout
    assert [m.group(1) for m in rows] == ["1.35.%d-150500.1.1" % p for p in range(6)]
    assert {m.group(2) for m in rows} == {"bootstrap-kubernetes-1.35"}
    assert "kubernetes" not in l.ssh("lab-1", "ls /etc/yum.repos.d/").stdout
    # without --showduplicates dnf shows the newest only; installed packages come first, with an @repository
    repo = ("[kubernetes]\nname=Kubernetes\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.35/rpm/\nenabled=1\n"
            "gpgcheck=1\ngpgkey=https://pkgs.k8s.io/core:/stable:/v1.35/rpm/repodata/repomd.xml.key\n"
            "exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n")
    l.ssh("lab-1", "sudo -n tee /etc/yum.repos.d/kubernetes.repo >/dev/null", input=repo, check=True)
    l.ssh("lab-1", "sudo -n dnf install -y -q --disableexcludes=kubernetes kubeadm-1.35.2", check=True)
    r = l.ssh("lab-1", "dnf list --disableexcludes=kubernetes kubeadm")
    assert r.stdout.splitlines()[0] == "Installed Packages", r.stdout
    assert re.search(r"^kubeadm\.x86_64 +1\.35\.2-150500\.1\.1 +@kubernetes$", r.stdout, re.M), r.stdout
    assert re.search(r"^Available Packages\nkubeadm\.x86_64 +1\.35\.5-150500\.1\.1 +kubernetes$", r.stdout, re.M), r.stdout
    # the repository excludes its packages from every command that does not lift the exclusion
    r = l.ssh("lab-1", "dnf list --showduplicates --repo=kubernetes kubeadm")
    assert "Available Packages" not in r.stdout, r.stdout
    # a minor that is not served: the metadata download fails, dnf exits 1
    r = l.ssh("lab-1", sudo(DNF_QUERY.format(minor="1.29")))
    assert r.returncode == 1 and "Failed to download metadata for repo 'bootstrap-kubernetes-1.29'" in r.stderr, r.stderr
