"""The simulated OS toolchain: each tool works for the real procedure and refuses like the real one."""
import hashlib
import os
import subprocess

import yaml

KEY_URL = "https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key"
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
K8S_LIST = ("echo 'deb [signed-by=%s] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /' "
            "| sudo -n tee /etc/apt/sources.list.d/kubernetes.list >/dev/null" % KEYRING)
HEALTH = ("/usr/bin/python3 -c \"import sys; sys.path.insert(0, '/opt/labnode'); from labnode import common; "
          "ok, why = common.containerd_healthy(); print(ok, why)\"")


def test_apt_kubernetes_packages_need_repo_key_and_update(lab):
    l = lab(3)
    h = "lab-1"
    # a fresh image has none of them, whatever the machine under the lab has installed
    r = l.ssh(h, "dpkg-query -W kubectl kubeadm kubelet containerd")
    assert r.returncode == 1 and "no packages found matching kubectl" in r.stderr, r.stderr
    r = l.ssh(h, "sudo -n apt-get install -y kubeadm")
    assert r.returncode == 100 and "E: Unable to locate package kubeadm" in r.stderr
    # repository configured but the index not refreshed: still unknown
    l.ssh(h, "curl -fsSL %s | sudo -n gpg --dearmor -o %s && %s" % (KEY_URL, KEYRING, K8S_LIST), check=True)
    r = l.ssh(h, "sudo -n apt-get install -y kubeadm=1.34.1-1.1")
    assert r.returncode == 100 and "E: Unable to locate package kubeadm" in r.stderr
    l.ssh(h, "sudo -n apt-get update", check=True)
    r = l.ssh(h, "sudo -n apt-get install -y kubeadm=1.34.9-1.1")
    assert r.returncode == 100 and "E: Version '1.34.9-1.1' for 'kubeadm' was not found" in r.stderr
    r = l.ssh(h, "apt-get install -y kubeadm=1.34.1-1.1")
    assert r.returncode == 100
    assert "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)" in r.stderr
    r = l.ssh(h, "sudo -n apt-get install -y kubelet=1.34.1-1.1 kubeadm=1.34.1-1.1 kubectl=1.34.1-1.1 && "
                 "sudo -n apt-mark hold kubelet kubeadm kubectl", check=True)
    assert "kubeadm set on hold." in r.stdout
    r = l.ssh(h, "dpkg-query -W -f='${Package} ${Version}\\n' kubeadm kubelet kubectl; ls /usr/bin/kubeadm "
                 "/usr/bin/kubelet /usr/bin/kubectl; apt-mark showhold", check=True)
    assert "kubeadm 1.34.1-1.1\nkubelet 1.34.1-1.1\nkubectl 1.34.1-1.1\n" in r.stdout
    assert r.stdout.count("/usr/bin/kube") == 3 and "kubectl\nkubelet\n" in r.stdout
    # held packages refuse a version change unless explicitly allowed
    r = l.ssh(h, "sudo -n apt-get install -y kubeadm=1.34.0-1.1")
    assert r.returncode == 100 and "Held packages were changed" in r.stderr
    r = l.ssh(h, "sudo -n apt-get install -y --allow-change-held-packages --allow-downgrades kubeadm=1.34.0-1.1 && "
                 "dpkg-query -W -f='${Version}' kubeadm", check=True)
    assert r.stdout.endswith("1.34.0-1.1")
    # the upgrade guide's way: unhold, install with a version glob, hold again
    r = l.ssh(h, "sudo -n apt-mark unhold kubeadm && sudo -n apt-get install -y kubeadm='1.34.1-*' && "
                 "sudo -n apt-mark hold kubeadm && dpkg-query -W -f='${Version}' kubeadm", check=True)
    assert "Canceled hold on kubeadm." in r.stdout and r.stdout.endswith("1.34.1-1.1")
    r = l.ssh(h, "sudo -n apt-get install -y --allow-change-held-packages kubeadm='1.35.*'")
    assert r.returncode == 100 and "E: Version '1.35.*' for 'kubeadm' was not found" in r.stderr
    # dpkg-query of a package that is not installed fails like dpkg-query
    r = l.ssh(h, "dpkg-query -W containerd")
    assert r.returncode == 1 and "dpkg-query: no packages found matching containerd" in r.stderr
    # Debian policy: installing kubelet enables + starts it; it crash-loops until kubeadm configured it
    r = l.ssh(h, "systemctl is-enabled kubelet; systemctl is-active kubelet")
    assert r.stdout.split()[0] == "enabled" and r.stdout.split()[1] in ("activating", "active")


def test_apt_refuses_unsigned_or_unknown_repositories(lab):
    l = lab(3)
    h = "lab-2"
    # armored key saved as .gpg (the gpg --dearmor step skipped): NO_PUBKEY, repository not signed
    l.ssh(h, "curl -fsSL %s | sudo -n tee %s >/dev/null && %s" % (KEY_URL, KEYRING, K8S_LIST), check=True)
    r = l.ssh(h, "sudo -n apt-get update")
    assert r.returncode == 100
    assert "NO_PUBKEY 234654DA9A296436" in r.stderr and "is not signed" in r.stderr
    assert l.ssh(h, "sudo -n apt-get install -y kubeadm").returncode == 100
    # curl without -L gets the redirect, not the key: gpg finds no OpenPGP data
    r = l.ssh(h, "curl -fsS %s | sudo -n gpg --batch --yes --dearmor -o %s" % (KEY_URL, KEYRING))
    assert r.returncode == 2 and "no valid OpenPGP data found" in r.stderr
    # a minor the repository does not carry
    r = l.ssh(h, "curl -fsSL %s | sudo -n gpg --batch --yes --dearmor -o %s && "
                 "echo 'deb [signed-by=%s] https://pkgs.k8s.io/core:/stable:/v1.19/deb/ /' | "
                 "sudo -n tee /etc/apt/sources.list.d/kubernetes.list && sudo -n apt-get update" % (KEY_URL, KEYRING,
                                                                                                     KEYRING))
    assert r.returncode == 100 and "403" in r.stderr + r.stdout
    # gpg refuses to overwrite without --yes (the idempotency trap of the install guide)
    r = l.ssh(h, "curl -fsSL %s | sudo -n gpg --dearmor -o %s" % (KEY_URL, KEYRING))
    assert r.returncode == 2 and "exists" in r.stderr


def test_apt_install_of_another_minor_needs_its_repository(lab):
    l = lab(3)
    h = "lab-3"
    l.ssh(h, "curl -fsSL %s | sudo -n gpg --dearmor -o %s && %s && sudo -n apt-get update -qq"
          % (KEY_URL, KEYRING, K8S_LIST), check=True)
    r = l.ssh(h, "sudo -n apt-get install -y kubeadm=1.33.5-1.1")
    assert r.returncode == 100 and "Version '1.33.5-1.1' for 'kubeadm' was not found" in r.stderr
    r = l.ssh(h, "apt-cache madison kubeadm", check=True)
    assert [x.split("|")[1].strip() for x in r.stdout.splitlines()] == ["1.34.%d-1.1" % p for p in range(7, -1, -1)]
    r = l.ssh(h, "sudo -n sed -i 's/v1.34/v1.33/' /etc/apt/sources.list.d/kubernetes.list && "
                 "sudo -n apt-get update -qq && sudo -n apt-get install -y kubeadm=1.33.5-1.1 >/dev/null && "
                 "kubeadm_v=$(dpkg-query -W -f='${Version}' kubeadm) && echo $kubeadm_v", check=True)
    assert r.stdout.strip() == "1.33.5-1.1"


def test_systemctl_and_containerd_health(lab):
    l = lab(1, key="containerd")
    h = "lab-1"
    r = l.ssh(h, "sudo -n systemctl start kubelet")
    assert r.returncode == 5 and "Unit kubelet.service not found." in r.stderr
    r = l.ssh(h, "systemctl is-active containerd")
    assert r.returncode == 3 and r.stdout.strip() == "inactive"
    l.ssh(h, "sudo -n apt-get update -qq && sudo -n apt-get install -y -qq containerd >/dev/null", check=True)
    assert l.ssh(h, "systemctl is-active containerd").stdout.strip() == "active"
    pid = l.ssh(h, "pgrep -x containerd", check=True).stdout.strip()
    assert l.ssh(h, "systemctl show -p MainPID --value containerd", check=True).stdout.strip() == pid
    r = l.ssh(h, "systemctl restart containerd")
    assert r.returncode == 1 and "Access denied" in r.stderr
    assert l.ssh(h, HEALTH, check=True).stdout.startswith("False")
    r = l.ssh(h, "containerd config default | grep -c 'SystemdCgroup = false'", check=True)
    assert r.stdout.strip() == "1"
    l.ssh(h, "sudo -n mkdir -p /etc/containerd && containerd config default | sudo -n tee /etc/containerd/config.toml "
             ">/dev/null && sudo -n sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' "
             "/etc/containerd/config.toml", check=True)
    # the running daemon still has the old configuration
    r = l.ssh(h, HEALTH, check=True)
    assert r.stdout.startswith("False") and "restart" in r.stdout
    l.ssh(h, "sudo -n systemctl restart containerd && sudo -n systemctl enable --now containerd", check=True)
    assert l.ssh(h, HEALTH, check=True).stdout.strip() == "True ok"
    assert l.ssh(h, "systemctl is-enabled containerd; systemctl is-active containerd", check=True).stdout == \
        "enabled\nactive\n"
    # a config that does not parse: containerd crash-loops (Restart=always), not active
    l.ssh(h, "echo 'version = [' | sudo -n tee -a /etc/containerd/config.toml >/dev/null && "
             "sudo -n systemctl restart containerd", check=True)
    r = l.ssh(h, "sleep 0.5; systemctl is-active containerd")
    assert r.returncode == 3 and r.stdout.strip() == "activating"
    assert "failed to load TOML" in l.exec(h, "cat /var/log/labnode/containerd.log", check=True).stdout
    assert "failed to load TOML" in l.ssh(h, "journalctl -u containerd --no-pager -n 5", check=True).stdout
    l.ssh(h, "sudo -n systemctl stop containerd", check=True)
    assert l.ssh(h, "systemctl is-active containerd").stdout.strip() == "inactive"


def test_kernel_modules_sysctl_and_swap(lab):
    l = lab(1, key="kernel")
    h = "lab-1"
    real_fwd, real_swaps = open("/proc/sys/net/ipv4/ip_forward").read(), open("/proc/swaps").read()
    r = l.ssh(h, "sudo -n modprobe nosuchmod")
    assert r.returncode == 1 and "modprobe: FATAL: Module nosuchmod not found in directory /lib/modules/" in r.stderr
    r = l.ssh(h, "modprobe overlay")
    assert r.returncode == 1 and "Operation not permitted" in r.stderr
    # kmod semantics: the second name is a module parameter, not a module
    l.ssh(h, "sudo -n modprobe overlay br_netfilter", check=True)
    r = l.ssh(h, "lsmod", check=True)
    assert "\noverlay " in r.stdout and "br_netfilter" not in r.stdout
    r = l.ssh(h, "sudo -n sysctl -w net.bridge.bridge-nf-call-iptables=1")
    assert r.returncode == 255 and "cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables" in r.stderr
    r = l.ssh(h, "sudo -n sysctl -w net.ipv4.no_such_key=1")
    assert r.returncode == 255 and "cannot stat /proc/sys/net/ipv4/no_such_key" in r.stderr
    r = l.ssh(h, "sysctl -w net.ipv4.ip_forward=1")
    assert r.returncode == 255 and "permission denied on key" in r.stderr
    assert l.ssh(h, "test -e /proc/sys/net/bridge/bridge-nf-call-iptables").returncode == 1
    l.ssh(h, "sudo -n modprobe br_netfilter", check=True)
    assert l.ssh(h, "sysctl -n net.bridge.bridge-nf-call-iptables", check=True).stdout == "1\n"
    r = l.ssh(h, "cat /proc/sys/net/bridge/bridge-nf-call-iptables; grep -c '^br_netfilter ' /proc/modules || true",
              check=True)
    assert r.stdout.split("\n")[0] == "1"
    if os.path.exists("/proc/modules"):
        assert r.stdout.split("\n")[1] == "1"
    # /proc/sys in a host is the simulated kernel: writing the file is the same as sysctl -w
    r = l.ssh(h, "cat /proc/sys/net/ipv4/ip_forward; echo 1 | sudo -n tee /proc/sys/net/ipv4/ip_forward >/dev/null; "
                 "sysctl -n net.ipv4.ip_forward; echo 0 | sudo -n tee /proc/sys/net/ipv4/ip_forward >/dev/null",
              check=True)
    assert r.stdout == "0\n1\n"
    l.ssh(h, "printf 'net.bridge.bridge-nf-call-iptables = 1\\nnet.bridge.bridge-nf-call-ip6tables = 1\\n"
             "net.ipv4.ip_forward = 1\\n' | sudo -n tee /etc/sysctl.d/k8s.conf >/dev/null", check=True)
    assert l.ssh(h, "sysctl -n net.ipv4.ip_forward", check=True).stdout == "0\n"  # files alone change nothing
    r = l.ssh(h, "sudo -n sysctl --system", check=True)
    assert "* Applying /etc/sysctl.d/k8s.conf ..." in r.stdout and "net.ipv4.ip_forward = 1" in r.stdout
    assert l.ssh(h, "sysctl -n net.ipv4.ip_forward; cat /proc/sys/net/ipv4/ip_forward", check=True).stdout == "1\n1\n"
    # swap
    r = l.ssh(h, "swapoff -a")
    assert r.returncode != 0 and "Not superuser" in r.stderr
    r = l.ssh(h, "sudo -n swapoff -a && cat /proc/swaps && grep SwapTotal /proc/meminfo && swapon --show", check=True)
    assert "/swap.img" not in r.stdout and "SwapTotal:             0 kB" in r.stdout
    r = l.ssh(h, "sudo -n swapon -a && cat /proc/swaps && grep SwapTotal /proc/meminfo", check=True)
    assert "/swap.img" in r.stdout and "SwapTotal:       2097148 kB" in r.stdout
    # the real kernel was never touched
    assert open("/proc/sys/net/ipv4/ip_forward").read() == real_fwd
    assert open("/proc/swaps").read() == real_swaps


def test_curl_serves_known_urls_only(lab):
    l = lab(1, key="curl")
    h = "lab-1"
    r = l.ssh(h, "curl -fsSL https://example.com/x")
    assert r.returncode == 6 and "curl: (6) Could not resolve host: example.com" in r.stderr
    r = l.ssh(h, "curl -fsL https://example.com/x")
    assert r.returncode == 6 and r.stderr == ""
    r = l.ssh(h, "curl -sS -m 3 http://10.1.2.3/")
    assert r.returncode == 7 and "Failed to connect to 10.1.2.3 port 80" in r.stderr
    r = l.ssh(h, "curl -fsSL https://get.helm.sh/helm-v9.9.9-linux-amd64.tar.gz")
    assert r.returncode == 22 and "The requested URL returned error: 404" in r.stderr
    r = l.ssh(h, "curl -sSL https://get.helm.sh/helm-v9.9.9-linux-amd64.tar.gz")
    assert r.returncode == 0 and "404 Not Found" in r.stdout
    r = l.ssh(h, "curl -fsSL -o /nonexistent/dir/x https://get.helm.sh/helm-v3.16.3-linux-amd64.tar.gz")
    assert r.returncode == 23
    # the helm release: tarball + checksum, extracts to linux-amd64/helm
    r = l.ssh(h, "cd /tmp && curl -fsSLO https://get.helm.sh/helm-v3.16.3-linux-amd64.tar.gz && "
                 "curl -fsSL -o helm.sum https://get.helm.sh/helm-v3.16.3-linux-amd64.tar.gz.sha256sum && "
                 "sha256sum -c helm.sum && tar xzf helm-v3.16.3-linux-amd64.tar.gz && test -x linux-amd64/helm && "
                 "head -c 2 linux-amd64/helm", check=True)
    assert "helm-v3.16.3-linux-amd64.tar.gz: OK" in r.stdout and r.stdout.endswith("#!")
    # flannel manifest: GitHub redirects, so only -L gets it
    url = "https://github.com/flannel-io/flannel/releases/download/v0.26.1/kube-flannel.yml"
    assert l.ssh(h, "curl -fsS %s" % url, check=True).stdout == ""
    docs = list(yaml.safe_load_all(l.ssh(h, "curl -fsSL %s" % url, check=True).stdout))
    kinds = [d["kind"] for d in docs if d]
    assert kinds[0] == "Namespace" and "ConfigMap" in kinds and "DaemonSet" in kinds
    cm = [d for d in docs if d and d["kind"] == "ConfigMap"][0]
    assert '"Network": "10.244.0.0/16"' in cm["data"]["net-conf.json"]
    r = l.ssh(h, "curl -s -o /dev/null -w '%{http_code}' https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key")
    assert r.stdout == "302"
    # loopback is fetched for real (the lab's API endpoints live there)
    addr = l.host(h)["address"]
    l.ssh(h, "cd /tmp && echo hello > hello.txt && (setsid /usr/bin/python3 -m http.server --bind %s 18080 "
             "</dev/null >/dev/null 2>&1 &) && sleep 0.7" % addr, check=True)
    try:
        r = l.ssh(h, "curl -fsS http://%s:18080/hello.txt; curl -sS http://%s:18081/" % (addr, addr))
        assert r.stdout == "hello\n" and r.returncode == 7 and "Failed to connect" in r.stderr
    finally:
        l.exec(h, "pkill -f 'http.server --bind %s 18080' || true" % addr)


def test_curl_instance_metadata_imdsv2(lab):
    l = lab(1, key="curl")
    h = l.host("lab-1")
    r = l.ssh("lab-1", "curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/instance-id")
    assert r.stdout == "401"
    r = l.ssh("lab-1", "T=$(curl -sf -X PUT http://169.254.169.254/latest/api/token "
                       "-H 'X-aws-ec2-metadata-token-ttl-seconds: 21600') && for k in instance-id local-ipv4; do "
                       "curl -sf -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/$k; "
                       "echo; done; sudo -n cat /sys/class/dmi/id/board_asset_tag", check=True)
    iid, addr, tag = r.stdout.split()
    assert iid.startswith("i-0") and iid == tag and addr == h["address"]


def test_gpg_dearmor_matches_key(lab):
    l = lab(1, key="curl")
    r = l.ssh("lab-1", "curl -fsSL %s | gpg --dearmor | sha256sum" % KEY_URL, check=True)
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__))))
    from labnode import assets
    assert r.stdout.split()[0] == hashlib.sha256(assets.k8s_key_binary()).hexdigest()
    r = l.ssh("lab-1", "echo garbage | gpg --dearmor")
    assert r.returncode == 2 and "no valid OpenPGP data found" in r.stderr


def test_net_tools_are_simulated(lab):
    l = lab(1, key="curl")
    real_addr = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    r = l.ssh("lab-1", "iptables -L")
    assert r.returncode == 4 and "you must be root" in r.stderr
    l.ssh("lab-1", "sudo -n iptables -A INPUT -p tcp --dport 6443 -j ACCEPT && sudo -n iptables -t nat -N KUBE-TEST "
                   "&& sudo -n ip addr add 10.9.9.9/32 dev lo", check=True)
    assert l.ssh("lab-1", "sudo -n iptables -C INPUT -p tcp --dport 6443 -j ACCEPT").returncode == 0
    r = l.ssh("lab-1", "sudo -n iptables -C INPUT -p tcp --dport 22 -j ACCEPT")
    assert r.returncode == 1 and "Bad rule" in r.stderr
    assert "-A INPUT -p tcp --dport 6443 -j ACCEPT" in l.ssh("lab-1", "sudo -n iptables-save", check=True).stdout
    assert subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout == real_addr
    r = l.ssh("lab-1", "ip -4 addr show; ip route", check=True)
    assert l.host("lab-1")["address"] in r.stdout and "default via" in r.stdout


def test_cpu_and_memory_profile(lab):
    l = lab(3, cpus="4,1", memory="8192,1024")
    r = l.ssh("lab-2", "nproc; grep MemTotal /proc/meminfo; grep -c ^processor /proc/cpuinfo", check=True)
    lines = r.stdout.split("\n")
    assert lines[0] == "1" and lines[2] == "1"
    assert int(lines[1].split()[1]) < 1700 * 1024
    assert [(h["cpus"], h["memoryMB"]) for h in l.hosts] == [(4, 8192), (1, 1024), (1, 1024)]
    r = l.ssh("lab-1", "nproc; grep MemTotal /proc/meminfo", check=True)
    assert r.stdout.split("\n")[0] == "4" and int(r.stdout.split()[2]) > 7_900_000


def test_dnf_on_amazon_linux(lab):
    l = lab(1, "amazon-linux-2023")
    h = "lab-1"
    r = l.ssh(h, "sudo -n dnf install -y kubelet-1.34.1")
    assert r.returncode == 1 and "Unable to find a match: kubelet-1.34.1" in r.stderr
    r = l.ssh(h, "dnf install -y containerd")
    assert r.returncode == 1 and "superuser privileges" in r.stderr
    repo = ("[kubernetes]\nname=Kubernetes\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/\nenabled=1\n"
            "gpgcheck=1\ngpgkey=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/repodata/repomd.xml.key\n"
            "exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n")
    l.ssh(h, "sudo -n tee /etc/yum.repos.d/kubernetes.repo >/dev/null", input=repo, check=True)
    r = l.ssh(h, "sudo -n dnf install -y kubelet-1.34.1 kubeadm-1.34.1 kubectl-1.34.1")
    assert r.returncode == 1 and "No match for argument: kubelet-1.34.1" in r.stderr
    r = l.ssh(h, "sudo -n dnf install -y kubelet-1.34.9 --disableexcludes=kubernetes")
    assert r.returncode == 1
    l.ssh(h, "sudo -n dnf install -y kubelet-1.34.1 kubeadm-'1.34.0-*' kubectl-1.34.1 --disableexcludes=kubernetes "
             "&& sudo -n dnf install -y containerd && sudo -n dnf install -y kubeadm-1.34.1 "
             "--disableexcludes=kubernetes", check=True)
    r = l.ssh(h, "rpm -q kubeadm kubelet kubectl; rpm -q --qf '%{VERSION}\\n' kubeadm; rpm -q nothere", timeout=60)
    assert r.returncode == 1
    assert "kubeadm-1.34.1-150500.1.1.x86_64" in r.stdout and "\n1.34.1\n" in r.stdout
    assert "package nothere is not installed" in r.stdout
    # Fedora policy: installed services are neither enabled nor started
    r = l.ssh(h, "systemctl is-enabled kubelet containerd; systemctl is-active containerd")
    assert r.stdout.split() == ["disabled", "disabled", "inactive"]
    assert l.ssh(h, "command -v apt-get dpkg-query").returncode == 1


# ---------------------------------------------------------------- pure helpers (no lab, no root needed)
def _labnode():
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from labnode import assets, common, os_curl, os_pkgdb
    return assets, common, os_curl, os_pkgdb


def test_armor_roundtrip_and_crc_check():
    assets, _, _, _ = _labnode()
    key = assets.k8s_key_binary()
    text = assets.armor(key)
    assert text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    assert assets.dearmor(text) == key
    # a corrupted body fails the CRC-24 check, like gpg
    lines = text.split("\n")
    i = next(n for n, x in enumerate(lines) if len(x) == 64)
    lines[i] = ("B" if lines[i][0] != "B" else "C") + lines[i][1:]
    assert assets.dearmor("\n".join(lines)) is None
    assert assets.dearmor(b"\x99\x01\x02") is None


def test_systemd_cgroup_detection():
    _, common, _, _ = _labnode()
    from labnode import os_containerd
    text = os_containerd.DEFAULT_CONFIG
    assert not common.systemd_cgroup_enabled(text)
    assert common.systemd_cgroup_enabled(text.replace("SystemdCgroup = false", "SystemdCgroup = true"))
    # the top-level systemd_cgroup of the CRI plugin, or a commented line, does not count
    assert not common.systemd_cgroup_enabled(text.replace("systemd_cgroup = false", "systemd_cgroup = true"))
    assert not common.systemd_cgroup_enabled(text.replace("SystemdCgroup = false", "# SystemdCgroup = true"))


def test_curl_option_parsing_and_url_table():
    assets, _, os_curl, _ = _labnode()
    o = os_curl.parse(["-fsSLo", "/tmp/x", "https://get.helm.sh/a", "--retry", "3", "-w", "%{http_code}"])
    assert (o.fail, o.silent, o.show_error, o.location, o.output) == (True, True, True, True, "/tmp/x")
    assert o.urls == ["https://get.helm.sh/a"] and o.write_out == "%{http_code}"
    assert assets.lookup("https://example.org/") is None
    assert assets.lookup("https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key")[0] == 302
    assert assets.lookup("https://prod-cdn.packages.k8s.io/core:/stable:/v1.34/deb/Release.key")[0] == 200
    assert assets.lookup("https://prod-cdn.packages.k8s.io/core:/stable:/v1.31/deb/Release.key")[0] == 404
    assert assets.k8s_versions("1.34") == ["1.34.%d" % p for p in range(8)] and len(assets.k8s_versions("1.32")) == 10
    assert assets.k8s_versions("1.35")[-1] == "1.35.5" and assets.k8s_versions("1.36") == ["1.36.0", "1.36.1"]


def test_version_ordering():
    _, _, _, os_pkgdb = _labnode()
    vs = ["1.34.1-1.1", "1.34.0-1.1", "1.33.10-1.1", "1.33.9-1.1"]
    assert sorted(vs, key=os_pkgdb.version_key) == ["1.33.9-1.1", "1.33.10-1.1", "1.34.0-1.1", "1.34.1-1.1"]
    assert os_pkgdb.version_key("1.7.24~rc1") < os_pkgdb.version_key("1.7.24")


def test_ss_shows_only_this_hosts_sockets(lab):
    l = lab(3)
    a1, a2 = l.host("lab-1")["address"], l.host("lab-2")["address"]
    l.ssh("lab-2", "cd /tmp && (setsid /usr/bin/python3 -m http.server --bind %s 18090 </dev/null >/dev/null 2>&1 &)"
                   " && sleep 0.7" % a2, check=True)
    try:
        r = l.ssh("lab-1", "ss -ltn", check=True)
        assert "%s:22 " % a1 in r.stdout and a2 not in r.stdout
        r = l.ssh("lab-2", "sudo -n ss -ltnp 'sport = :18090'", check=True)
        assert "%s:18090" % a2 in r.stdout and "pid=" in r.stdout and ":22 " not in r.stdout
        assert l.ssh("lab-1", "ss -ltnH 'sport = :18090'", check=True).stdout == ""
    finally:
        l.exec("lab-2", "pkill -f 'http.server --bind %s 18090' || true" % a2)


def _wait(cond, timeout=20.0, step=0.1):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False


def test_apt_lock_wait_and_an_interrupted_dpkg(lab, monkeypatch):
    import re
    monkeypatch.setenv("LAB_SCALE", "0.5")         # an apt-get install of one package takes (4 s + 2 s) x 0.5
    l = lab(1, profile="realistic", key="dpkg")
    h = "lab-1"
    l.ssh(h, "sudo -n apt-get update -q >/dev/null", check=True)
    journal = lambda: l.exec(h, "ls /var/lib/dpkg/updates").stdout.strip() != ""  # noqa: E731
    running = lambda: l.exec(h, "pgrep -f '[l]abnode apt-get' >/dev/null").returncode == 0  # noqa: E731

    # a second apt-get gives up at once, naming the holder; told to wait (DPkg::Lock::Timeout), it waits
    first = subprocess.Popen(l.ssh_argv(h) + ["sudo -n apt-get install -y -q containerd"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert _wait(journal), "apt-get did not start unpacking"
    r = l.ssh(h, "sudo -n apt-get install -y -q containerd")
    assert r.returncode == 100, r.stdout + r.stderr
    assert re.search(r"E: Could not get lock /var/lib/dpkg/lock-frontend\. It is held by process \d+ \(apt-get\)",
                     r.stderr), r.stderr
    r = l.ssh(h, "sudo -n apt-get -o DPkg::Lock::Timeout=30 install -y -q containerd")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend" in r.stderr
    assert "containerd is already the newest version" in r.stdout
    out, err = first.communicate(timeout=30)
    assert first.returncode == 0, out + err
    assert "Setting up containerd" in out and not journal()
    # a lock that stays busy: the wait ends after the time-out
    l.ssh(h, "sudo -n apt-get purge -y -q containerd", check=True)
    first = subprocess.Popen(l.ssh_argv(h) + ["sudo -n apt-get install -y -q containerd"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert _wait(journal)
    r = l.ssh(h, "sudo -n apt-get -o DPkg::Lock::Timeout=1 install -y -q containerd")
    assert r.returncode == 100 and "Unable to acquire the dpkg frontend lock" in r.stderr
    first.communicate(timeout=30)

    # killed half-way (kill -9): dpkg was interrupted; apt refuses until `dpkg --configure -a`
    l.ssh(h, "sudo -n apt-get purge -y -q containerd", check=True)
    first = subprocess.Popen(l.ssh_argv(h) + ["sudo -n apt-get install -y -q containerd"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert _wait(journal)
    l.exec(h, "pkill -KILL -f '[l]abnode apt-get'")
    first.communicate(timeout=30)
    assert _wait(lambda: not running())
    r = l.ssh(h, "sudo -n apt-get install -y -q containerd")
    assert r.returncode == 100
    assert "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem." in r.stderr
    r = l.ssh(h, "sudo -n apt-get purge -y -q containerd")
    assert r.returncode == 100 and "dpkg was interrupted" in r.stderr
    assert l.ssh(h, "sudo -n apt-get update -q >/dev/null").returncode == 0    # the lists are not dpkg's
    r = l.ssh(h, "dpkg --audit")
    assert r.returncode == 1 and " containerd" in r.stdout
    assert l.ssh(h, "dpkg --configure -a").returncode == 2                       # root only
    r = l.ssh(h, "sudo -n dpkg --configure -a", check=True)
    assert "Setting up containerd" in r.stdout
    assert l.ssh(h, "dpkg --audit").returncode == 0
    r = l.ssh(h, "sudo -n apt-get install -y -q containerd && systemctl is-active containerd", check=True)
    assert "containerd is already the newest version" in r.stdout and r.stdout.strip().endswith("active")

    # the caller gone (a killed ssh, a killed bootstrap): apt-get dies of SIGPIPE at its next line of output,
    # and leaves the same state
    l.ssh(h, "sudo -n apt-get purge -y -q containerd", check=True)
    first = subprocess.Popen(l.ssh_argv(h) + ["sudo -n apt-get install -y -q containerd"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert _wait(journal)
    first.kill()
    first.communicate(timeout=30)
    assert _wait(lambda: not running())
    assert l.exec(h, "tail -n 1 /var/log/labnode/commands.log").stdout.startswith("141 apt-get install")
    r = l.ssh(h, "sudo -n apt-get install -y -q containerd")
    assert r.returncode == 100 and "dpkg was interrupted" in r.stderr
    l.ssh(h, "sudo -n dpkg --configure -a", check=True)
