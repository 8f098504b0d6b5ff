#!/usr/bin/env python3
"""scripts/lab: simulated hosts on this machine (root only).

Each host is a real OpenSSH sshd on 127.x.y.(10+i):22 in its own mount + UTS namespaces, with overlay
(copy-on-write) views of /etc /usr /var /opt /home /root, private tmpfs /run and /tmp, fake /proc/meminfo,
/proc/swaps, /proc/cpuinfo and /sys/class/dmi/id/product_uuid, and the LabNode toolchain shadowing the
real OS tools. Everything lives in LAB_DIR (default /srv/bootstrap-lab); LAB_NET (default 127.0.0).
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import labnode  # noqa: E402
from labnode import assets as lab_assets  # noqa: E402
from labnode.common import save_json, load_json, flock  # noqa: E402

OSES = {
    "ubuntu-22.04": {"user": "ubuntu", "family": "deb", "swap": "/swap.img"},
    "ubuntu-24.04": {"user": "ubuntu", "family": "deb", "swap": "/swap.img"},
    "debian-12": {"user": "admin", "family": "deb", "swap": "/swapfile"},
    "amazon-linux-2023": {"user": "ec2-user", "family": "rpm", "swap": "/swapfile"},
}
OVERLAY_DIRS = ["etc", "usr", "var", "opt", "home", "root"]
# A host's view hides these (tmpfs or overlay): LAB_DIR must not live under them.
SHADOWED = ["/etc", "/usr", "/var", "/opt", "/home", "/root", "/run", "/tmp", "/proc", "/sys", "/dev"]
SWAP_MB = 2048


def die(msg, code=1):
    sys.stderr.write("lab: %s\n" % msg)
    sys.exit(code)


def lab_dir():
    return os.path.abspath(os.environ.get("LAB_DIR", "/srv/bootstrap-lab"))


def lab_net():
    net = os.environ.get("LAB_NET", "127.0.0")
    if not re.fullmatch(r"127\.\d{1,3}\.\d{1,3}", net) or any(int(x) > 255 for x in net.split(".")):
        die("LAB_NET must look like 127.X.Y (loopback only), got %r" % net, 2)
    return net


def inventory(ld=None):
    return load_json(os.path.join(ld or lab_dir(), "inventory.json"), None)


def need_root():
    if os.geteuid() != 0:
        die("the lab needs root (namespaces, overlay mounts, sshd)", 1)


# ------------------------------------------------------------------ process helpers
def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError, ValueError):
        return False


def mnt_ns(pid):
    try:
        return os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        return None


def pids_in_ns(nsset):
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            ns = mnt_ns(int(d))
            if ns is not None and ns in nsset:
                found.append(int(d))
    return found


def host_dir(ld, name):
    return os.path.join(ld, "hosts", name)


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def read_text(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def host_ns(ld, name):
    return read_text(os.path.join(host_dir(ld, name), "ns")).strip() or None


def holder_pid(ld, name):
    """The pid that keeps the host's namespaces alive (verified against the recorded namespace)."""
    hd = host_dir(ld, name)
    pid = read_int(os.path.join(hd, "holder.pid"))
    ns = host_ns(ld, name)
    if pid and pid_alive(pid) and ns and mnt_ns(pid) == ns:
        return pid
    return None


def root_pid(ns, nspid):
    """The pid (in our pid namespace) of the process of a host's mount namespace `ns` whose pid inside the
    host's pid namespace is `nspid`."""
    for p in pids_in_ns({ns}):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("NSpid:"):
                        if int(line.split()[-1]) == nspid and len(line.split()) > 2:
                            return p
                        break
        except (OSError, ValueError):
            pass
    return None


def sshd_pid(ld, name):
    """The host's sshd listener (its pid file holds the pid inside the host's pid namespace)."""
    hd = host_dir(ld, name)
    nspid = read_int(os.path.join(hd, "sshd.pid"))
    ns = host_ns(ld, name)
    if not nspid or not ns or holder_pid(ld, name) is None:
        return None
    return root_pid(ns, nspid)


def port_open(addr, port=22, timeout=0.3):
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def lab_alive(ld):
    hosts_root = os.path.join(ld, "hosts")
    if not os.path.isdir(hosts_root):
        return []
    return [n for n in sorted(os.listdir(hosts_root)) if holder_pid(ld, n)]


# ------------------------------------------------------------------ the tools' thin client
def c_compiler():
    """The C compiler for the tools' thin client: the clang that ships with the Swift toolchain (the project builds
    with it, so every machine that builds bootstrap has it), else clang or cc on PATH. None without one."""
    cands = []
    swift = shutil.which("swift")
    if swift:
        cands.append(os.path.join(os.path.dirname(os.path.realpath(swift)), "clang"))
    cands += [shutil.which(c) for c in ("clang", "cc", "gcc")]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    return None


def build_client(ld, dest):
    """Compile lab/labnode/client.c into the template (once per `up`). Without a compiler the tools run through
    the interpreter directly (slower, same behaviour) and `up` says so."""
    cc = c_compiler()
    if cc is None:
        sys.stderr.write("lab: no C compiler (the Swift toolchain's clang, or cc): tools run without the fork server, "
                         "one Python start-up per call\n")
        return False
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    r = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", dest, os.path.join(HERE, "labnode", "client.c")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        die("compiling the tools' client with %s failed:\n%s" % (cc, r.stdout), 1)
    os.chmod(dest, 0o755)
    return True


# ------------------------------------------------------------------ template (shared by all hosts of an `up`)
def first_free_uid():
    used = set()
    for line in read_text("/etc/passwd").splitlines():
        parts = line.split(":")
        if len(parts) > 3 and parts[2].isdigit():
            used.add(int(parts[2]))
    for line in read_text("/etc/group").splitlines():
        parts = line.split(":")
        if len(parts) > 2 and parts[2].isdigit():
            used.add(int(parts[2]))
    uid = 1000
    while uid in used:
        uid += 1
    return uid


def copy_meta(src, dst):
    st = os.stat(src)
    os.chmod(dst, st.st_mode & 0o7777)
    os.chown(dst, st.st_uid, st.st_gid)


def whiteout(p):
    """An overlayfs whiteout (char device 0/0): the lower file or directory is hidden in the host."""
    if os.path.lexists(p):
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    os.mknod(p, 0o600 | 0o020000, os.makedev(0, 0))


def copy_proc_sys(dst, kern):
    """A copy of the real /proc/sys (read only), with the simulated boot values: every host's /proc/sys is an
    overlay of it, so reading and writing /proc/sys in a host never touches the real kernel."""
    for root, dirs, files in os.walk("/proc/sys"):
        rel = os.path.relpath(root, "/proc/sys")
        if rel == "net/bridge" or rel.startswith("net/bridge/"):
            continue
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for f in files:
            try:
                with open(os.path.join(root, f), "rb") as fh:
                    data = fh.read(65536)
            except OSError:
                continue
            with open(os.path.join(dst, rel, f), "wb") as o:
                o.write(data)
    for k, v in kern["sysctl"].items():
        p = os.path.join(dst, k.replace(".", "/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(v + "\n")


HIDDEN_TOOLS = ("helm", "crictl", "runc", "docker", "dockerd", "kubeadm", "kubelet", "kubectl", "etcd", "etcdctl")
HIDDEN_DIRS = ("etc/kubernetes", "etc/containerd", "etc/cni", "opt/cni", "var/lib/kubelet", "var/lib/etcd",
               "var/lib/containerd", "root/.kube")


def real_tools(ld):
    """The machine's real kubectl, which the hosts' `kubectl` package installs instead of the lab's imitation:
    `kubectl` on the machine's PATH (or $LAB_KUBECTL, a path; LAB_KUBECTL=lab keeps the imitation), and the
    versioned binaries next to it (`kubectl.1.33`, as the Google Cloud SDK ships them), by minor version.
    Paths a host cannot see (the whited-out bin directories) are linked into $LAB_DIR/realbin."""
    want = os.environ.get("LAB_KUBECTL", "")
    if want == "lab":
        return {}
    path = want or shutil.which("kubectl", path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if not path or not os.path.exists(path):
        return {}
    real = os.path.realpath(path)
    try:
        with open(real, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return {}               # a script (another lab's wrapper, a shim): not the real client
    except OSError:
        return {}
    hidden = {"/%s/%s" % (d, t) for d in ("usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin")
              for t in HIDDEN_TOOLS} | {"/" + d for d in HIDDEN_DIRS}

    def visible(p):
        if not any(p == h or p.startswith(h + "/") for h in hidden) and \
                p.split("/")[1] not in ("run", "tmp", "proc", "sys"):
            return p
        dst = os.path.join(ld, "realbin", os.path.basename(p))
        os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
        if not os.path.exists(dst):
            try:
                os.link(p, dst)
            except OSError:
                shutil.copy2(p, dst)
        return dst
    versions = {}
    d = os.path.dirname(real)
    for n in sorted(os.listdir(d)):
        m = re.match(r"^kubectl\.(\d+)\.(\d+)$", n)
        if m and os.access(os.path.join(d, n), os.X_OK):
            versions["%s.%s" % m.groups()] = visible(os.path.join(d, n))
    return {"kubectl": {"default": visible(real), "versions": versions}}


def build_template(ld, osname, pubkey, scale_profile):
    """Files every host of this OS gets in its upper dirs (copied per host with cp -a)."""
    spec = OSES[osname]
    user, family = spec["user"], spec["family"]
    t = os.path.join(ld, "template", osname)
    for d in OVERLAY_DIRS:
        os.makedirs(os.path.join(t, d), exist_ok=True)
    uid = first_free_uid()
    etc = os.path.join(t, "etc")
    # users: the login user with password field '*' (sshd without PAM refuses '!'), NOPASSWD sudo
    for fname, extra in (("passwd", "%s:x:%d:%d:%s:/home/%s:/bin/bash\n" % (user, uid, uid, user, user)),
                         ("shadow", "%s:*:20000:0:99999:7:::\n" % user),
                         ("group", "%s:x:%d:\n" % (user, uid)),
                         ("gshadow", "%s:!::\n" % user)):
        src = "/etc/" + fname
        if not os.path.exists(src):
            continue
        dst = os.path.join(etc, fname)
        text = read_text(src)
        if text and not text.endswith("\n"):
            text += "\n"
        with open(dst, "w") as f:
            f.write(text + extra)
        copy_meta(src, dst)
    os.makedirs(os.path.join(etc, "sudoers.d"), exist_ok=True)
    sud = os.path.join(etc, "sudoers.d", "90-lab-users")
    with open(sud, "w") as f:
        f.write("# lab: cloud-init style login user\n%s ALL=(ALL) NOPASSWD:ALL\n" % user)
    os.chmod(sud, 0o440)
    os.chmod(os.path.join(etc, "sudoers.d"), 0o755)
    with open(os.path.join(HERE, "assets", "os-release", osname)) as f:
        osrel = f.read()
    with open(os.path.join(etc, "os-release"), "w") as f:
        f.write(osrel)
    with open(os.path.join(etc, "fstab"), "w") as f:
        f.write("# /etc/fstab: static file system information.\n"
                "LABEL=cloudimg-rootfs\t/\text4\tdiscard,errors=remount-ro\t0 1\n"
                "%s none swap sw 0 0\n" % spec["swap"])
    for d in ("modules-load.d", "sysctl.d", "labnode"):
        os.makedirs(os.path.join(etc, d), exist_ok=True)
    if family == "rpm":
        os.makedirs(os.path.join(etc, "yum.repos.d"), exist_ok=True)
        with open(os.path.join(etc, "yum.repos.d", "amazonlinux.repo"), "w") as f:
            f.write("[amazonlinux]\nname=Amazon Linux 2023 repository\n"
                    "mirrorlist=https://al2023-repos-$awsregion-de612dc2.s3.dualstack.$awsregion.$awsdomain"
                    "/core/mirrors/$releasever/$basearch/mirror.list\nenabled=1\ngpgcheck=1\n")
        for f in ("debian_version",):
            if os.path.lexists("/etc/" + f):
                whiteout(os.path.join(etc, f))
        with open(os.path.join(etc, "system-release"), "w") as f:
            f.write("Amazon Linux release 2023.6.20241121 (Amazon Linux)\n")
        if os.path.isdir("/etc/apt"):
            whiteout(os.path.join(etc, "apt"))
    else:
        for d in ("apt/keyrings", "apt/sources.list.d"):
            os.makedirs(os.path.join(etc, d), exist_ok=True)
        # the OS's own repositories instead of the machine's
        for f in os.listdir("/etc/apt/sources.list.d") if os.path.isdir("/etc/apt/sources.list.d") else []:
            whiteout(os.path.join(etc, "apt", "sources.list.d", f))
        code = {"ubuntu-22.04": "jammy", "ubuntu-24.04": "noble", "debian-12": "bookworm"}[osname]
        if osname.startswith("ubuntu"):
            src = "".join("deb http://archive.ubuntu.com/ubuntu %s main restricted universe multiverse\n" % s_
                          for s_ in (code, code + "-updates", code + "-backports"))
            src += "deb http://security.ubuntu.com/ubuntu %s-security main restricted universe multiverse\n" % code
            deb_version = {"jammy": "bookworm/sid", "noble": "trixie/sid"}[code]
        else:
            src = ("deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian "
                   "bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n")
            deb_version = "12.8"
        with open(os.path.join(etc, "apt", "sources.list"), "w") as f:
            f.write(src)
        with open(os.path.join(etc, "debian_version"), "w") as f:
            f.write(deb_version + "\n")
    # home directories with the login key; root gets it too so that only PermitRootLogin refuses root
    home = os.path.join(t, "home", user)
    for h, owner in ((home, uid), (os.path.join(t, "root"), 0)):
        os.makedirs(os.path.join(h, ".ssh"), exist_ok=True)
        with open(os.path.join(h, ".ssh", "authorized_keys"), "w") as f:
            f.write(pubkey)
        os.chmod(os.path.join(h, ".ssh", "authorized_keys"), 0o600)
        os.chmod(os.path.join(h, ".ssh"), 0o700)
        for p in (h, os.path.join(h, ".ssh"), os.path.join(h, ".ssh", "authorized_keys")):
            os.chown(p, owner, owner)
    os.chmod(home, 0o750)
    os.chmod(os.path.join(t, "root"), 0o700)
    for name in (".bashrc", ".profile"):
        src = "/etc/skel/" + name
        if os.path.exists(src):
            shutil.copy(src, os.path.join(home, name))
            os.chown(os.path.join(home, name), uid, uid)
    # the toolchain: a copy of the package + wrappers shadowing the real binaries in /usr/bin and /usr/sbin
    opt = os.path.join(t, "opt", "labnode")
    shutil.copytree(os.path.join(HERE, "labnode"), os.path.join(opt, "labnode"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assets_dst = os.path.join(opt, "assets")
    shutil.copytree(os.path.join(HERE, "assets"), assets_dst, ignore=shutil.ignore_patterns("os-release"))
    lab_assets.build_binary_assets(assets_dst)
    save_json(os.path.join(opt, "realtools.json"), real_tools(ld))
    build_client(ld, os.path.join(opt, "bin", "labnode"))
    # coreutils' date, which the lab-clock wrapper in /usr/bin shadows (os_facts.date)
    if os.path.exists("/usr/bin/date"):
        shutil.copy2("/usr/bin/date", os.path.join(opt, "bin", "date.real"))
    # bytecode compiled once here, not by every first import in every host (the login user cannot write it there)
    subprocess.run([sys.executable if os.path.exists(sys.executable) else "python3", "-m", "compileall", "-q",
                    "-d", "/opt/labnode/labnode", os.path.join(opt, "labnode")], check=False,
                   stdout=subprocess.DEVNULL)
    for bindir in ("usr/bin", "usr/sbin"):
        os.makedirs(os.path.join(t, bindir), exist_ok=True)
        for tool in labnode.preinstalled_tools(family):
            p = os.path.join(t, bindir, tool)
            with open(p, "w") as f:
                f.write(labnode.wrapper_script(tool))
            os.chmod(p, 0o755)
        if family == "rpm":
            # overlay whiteouts: the Debian tools of the real machine do not exist on Amazon Linux
            for tool in ("apt-get", "apt", "apt-mark", "apt-cache", "apt-key", "dpkg", "dpkg-query",
                         "dpkg-deb", "update-alternatives"):
                if os.path.exists("/" + bindir + "/" + tool):
                    p = os.path.join(t, bindir, tool)
                    whiteout(p)
    # hide what the real machine has that a fresh EC2 image does not (overlay whiteouts)
    hide = {b for bins in labnode.PACKAGE_BINARIES.values() for b in bins}
    hide |= set(HIDDEN_TOOLS)
    for bindir in ("usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin"):
        for tool in sorted(hide):
            if os.path.lexists("/" + bindir + "/" + tool):
                os.makedirs(os.path.join(t, bindir), exist_ok=True)
                whiteout(os.path.join(t, bindir, tool))
    for d in HIDDEN_DIRS + ("etc/apt/sources.list.d/kubernetes.list",
              "etc/yum.repos.d/kubernetes.repo", "etc/apt/keyrings/kubernetes-apt-keyring.gpg"):
        if os.path.lexists("/" + d):
            os.makedirs(os.path.dirname(os.path.join(t, d)), exist_ok=True)
            whiteout(os.path.join(t, d))
    # simulated machine state at first boot: swap on, br_netfilter not loaded, ip_forward=0
    st = os.path.join(t, "var", "lib", "labnode")
    os.makedirs(st, exist_ok=True)
    from labnode import os_kernel
    kern = os_kernel.boot_state(swap_devices=[spec["swap"]])
    save_json(os.path.join(st, "kernel.json"), kern)
    if not os.path.isdir(os.path.join(ld, "procsys")):
        copy_proc_sys(os.path.join(ld, "procsys"), kern)
    save_json(os.path.join(st, "packages.json"), {"installed": {}, "held": [], "lists": {}})
    save_json(os.path.join(st, "services.json"), {"enabled": [], "started": []})
    os.makedirs(os.path.join(t, "var", "log", "labnode"), exist_ok=True)
    return uid


# ------------------------------------------------------------------ per host
SSHD_CONFIG = """# lab host {name}
ListenAddress {addr}:22
HostKey {hd}/ssh_host_ed25519_key
HostKey {hd}/ssh_host_ecdsa_key
HostKey {hd}/ssh_host_rsa_key
PidFile {hd}/sshd.pid
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
StrictModes yes
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 200:30:400
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
LogLevel INFO
"""

BOOT_SH = """#!/bin/sh
# lab host boot: runs as pid 1 inside `unshare --mount --uts --pid --fork --propagation private`
set -e
H={hd}
# /proc is still the machine's: /proc/self/stat read by the shell itself gives its pid out there
read -r ownpid rest < /proc/self/stat
echo $ownpid > $H/holder.pid
readlink /proc/self/ns/mnt > $H/ns
mount -t proc -o nosuid,nodev,noexec lab-proc /proc
hostname {name}
for d in etc usr var opt home root; do
  mount -t overlay overlay -o lowerdir=/$d,upperdir=$H/upper/$d,workdir=$H/work/$d /$d
done
mount -t tmpfs -o mode=755,size=64m lab-run /run
mount -t tmpfs -o mode=1777,size=512m lab-tmp /tmp
mount -t overlay overlay -o lowerdir=$H/sysclass:/sys/class /sys/class
for f in meminfo swaps cpuinfo modules; do [ ! -e /proc/$f ] || mount --bind $H/proc/$f /proc/$f; done
mount -t overlay overlay -o lowerdir={ld}/procsys,upperdir=$H/procsys/upper,workdir=$H/procsys/work /proc/sys
mkdir -p /run/sshd /run/labnode /run/lock
chmod 755 /run/sshd
# the tools' fork server (labnode/forkserver.py), up before anyone can log in
[ ! -x /opt/labnode/bin/labnode ] || env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PYTHONPATH=/opt/labnode \
  /usr/bin/python3 -m labnode.forkserver --start
# -r: connections are served by forks of the listener, not re-executed sshds (an exec and an OpenSSL start
# less per connection on a machine that runs every host's sshd; clients see no difference)
/usr/sbin/sshd -r -f $H/sshd_config -E $H/sshd.log
echo up > $H/ready
# pid 1 of the host: keeps its namespaces alive and reaps orphans (bash waits for any child)
exec /bin/bash -c 'printf systemd > /proc/$$/comm; trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'
"""


def prepare_host(ld, i, osname, net, cpus, mem, profile, scale, template_uid):
    name = "lab-%d" % i
    addr = "%s.%d" % (net, 10 + i)
    hd = host_dir(ld, name)
    for d in OVERLAY_DIRS:
        os.makedirs(os.path.join(hd, "work", d), exist_ok=True)
    subprocess.run(["cp", "-a", os.path.join(ld, "template", osname) + "/.", os.path.join(hd, "upper")], check=True)
    up = os.path.join(hd, "upper")
    etc = os.path.join(up, "etc")
    with open(os.path.join(etc, "hostname"), "w") as f:
        f.write(name + "\n")
    with open(os.path.join(etc, "hosts"), "w") as f:
        f.write("127.0.0.1 localhost\n%s %s\n\n::1 ip6-localhost ip6-loopback\n" % (addr, name))
    mid = uuid.uuid4().hex
    with open(os.path.join(etc, "machine-id"), "w") as f:
        f.write(mid + "\n")
    if os.path.lexists("/var/lib/dbus/machine-id"):
        os.makedirs(os.path.join(up, "var", "lib", "dbus"), exist_ok=True)
        with open(os.path.join(up, "var", "lib", "dbus", "machine-id"), "w") as f:
            f.write(mid + "\n")
    info = {"name": name, "address": addr, "os": osname, "family": OSES[osname]["family"],
            "user": OSES[osname]["user"], "cpus": cpus, "memoryMB": mem, "profile": profile,
            "scale": scale, "labDir": ld, "index": i}
    save_json(os.path.join(etc, "labnode", "host.json"), info)
    # /sys/class/dmi/id/product_uuid (EC2 style: starts with ec2)
    dmi = os.path.join(hd, "sysclass", "dmi", "id")
    os.makedirs(dmi, exist_ok=True)
    pu = "ec2" + str(uuid.uuid4())[3:]
    for fname, val in (("product_uuid", pu.upper()), ("sys_vendor", "Amazon EC2"),
                       ("product_name", "t3.medium"), ("board_asset_tag", "i-0%016x" % uuid.uuid4().int)):
        p = os.path.join(dmi, fname)
        with open(p, "w") as f:
            f.write(val[:19] if fname == "board_asset_tag" else val)
            f.write("\n")
        os.chmod(p, 0o400 if fname == "product_uuid" else 0o444)
    # fake /proc files (swapoff/swapon rewrite them in place)
    from labnode import os_kernel
    procd = os.path.join(hd, "proc")
    os.makedirs(procd, exist_ok=True)
    kern = load_json(os.path.join(up, "var", "lib", "labnode", "kernel.json"), {})
    for fname, text in (("meminfo", os_kernel.render_meminfo(mem, kern)),
                        ("swaps", os_kernel.render_swaps(kern)),
                        ("cpuinfo", os_kernel.render_cpuinfo(cpus)),
                        ("modules", os_kernel.render_modules(kern))):
        with open(os.path.join(procd, fname), "w") as f:
            f.write(text)
        os.chmod(os.path.join(procd, fname), 0o444)
    # /proc/sys: overlay of the lab's copy; this host's hostname
    for d in ("upper/kernel", "work"):
        os.makedirs(os.path.join(hd, "procsys", d), exist_ok=True)
    with open(os.path.join(hd, "procsys", "upper", "kernel", "hostname"), "w") as f:
        f.write(name + "\n")
    with open(os.path.join(hd, "sshd_config"), "w") as f:
        f.write(SSHD_CONFIG.format(name=name, addr=addr, hd=hd))
    with open(os.path.join(hd, "boot.sh"), "w") as f:
        f.write(BOOT_SH.format(hd=hd, name=name, ld=ld))
    return {"name": name, "address": addr, "port": 22, "user": OSES[osname]["user"], "os": osname,
            "keyPath": os.path.join(ld, "id_ed25519"), "cpus": cpus, "memoryMB": mem}


def boot_host(ld, name):
    hd = host_dir(ld, name)
    log = open(os.path.join(hd, "boot.log"), "ab")
    p = subprocess.Popen(["unshare", "--mount", "--uts", "--pid", "--fork", "--propagation", "private", "--",
                          "/bin/sh",
                      os.path.join(hd, "boot.sh")], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     start_new_session=True, close_fds=True, cwd="/")
    log.close()
    return p


def wait_ready(ld, hosts, procs, timeout=180.0):
    """The hosts that did not come up, each with why. Generous: on a loaded machine (CI beside other builds) a
    boot can take far longer than its usual second; coming up is a precondition, not a timing."""
    pending = {h["name"]: h for h in hosts}
    t0 = time.time()
    deadline = t0 + timeout
    while pending and time.time() < deadline:
        for name in list(pending):
            if os.path.exists(os.path.join(host_dir(ld, name), "ready")) and port_open(pending[name]["address"]):
                del pending[name]
            elif procs[name].poll() is not None:
                # its boot script failed: no point waiting
                return [(n, "its boot script exited with %d after %.1fs" % (procs[n].returncode, time.time() - t0)
                         if procs[n].poll() is not None else "still booting") for n in sorted(pending)]
        if pending:
            time.sleep(0.05)
    return [(n, "not up after %.0fs" % timeout) for n in sorted(pending)]


# ------------------------------------------------------------------ commands
def int_list(text):
    try:
        vals = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("expected N or N1,N2,... got %r" % text)
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError("values must be positive: %r" % text)
    return vals


def per_host(vals, i):
    """Value for host i (1-based) from a per-host list whose last value repeats."""
    return vals[min(i, len(vals)) - 1]


def cmd_up(args):
    need_root()
    ld, net = lab_dir(), lab_net()
    for s in SHADOWED:
        if ld == s or ld.startswith(s + "/"):
            die("LAB_DIR=%s is under %s, which every host replaces with its own view; use e.g. /srv/..." % (ld, s), 2)
    if not 1 <= args.hosts <= 100:
        die("--hosts must be between 1 and 100", 2)
    oses = args.os.split(",")
    if any(o not in OSES for o in oses):
        die("--os must be one of %s (or a comma-separated list, one per host, the last repeats)"
            % ", ".join(OSES), 2)
    alive = lab_alive(ld)
    if alive or inventory(ld) is not None:
        if alive:
            die("a lab is already up in %s (%d hosts: %s...); run `scripts/lab down` first (or use another "
                "LAB_DIR/LAB_NET)" % (ld, len(alive), alive[0]), 1)
        sys.stderr.write("lab: removing the remains of a dead lab in %s\n" % ld)
        teardown(ld)
    t0 = time.time()
    addrs = ["%s.%d" % (net, 10 + i) for i in range(1, args.hosts + 1)]
    busy = [a for a in addrs if port_open(a, 22, 0.2)]
    if busy:
        die("port 22 is already taken on %s (another lab with this LAB_NET, or the distribution's sshd "
            "listening on all addresses — `scripts/deps` stops it)" % ", ".join(busy[:5]), 1)
    os.makedirs(os.path.join(ld, "hosts"), exist_ok=True)
    os.chmod(ld, 0o755)
    key = os.path.join(ld, "id_ed25519")
    keygens = [subprocess.Popen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab@bootstrap",
                                 "-f", key], stdin=subprocess.DEVNULL)]
    # Host keys of the three types an EC2 image makes at first boot (sshd offers them all; known_hosts
    # below holds only the ed25519 one, as a plain `ssh` login records it).
    rsa_cache = os.path.abspath(os.environ.get("LAB_KEY_CACHE", "/srv/bootstrap-lab-keys"))
    os.makedirs(rsa_cache, mode=0o700, exist_ok=True)
    rsa_made = []
    for i in range(1, args.hosts + 1):
        hd = host_dir(ld, "lab-%d" % i)
        os.makedirs(hd, exist_ok=True)
        for t in ("ed25519", "ecdsa"):
            keygens.append(subprocess.Popen(["ssh-keygen", "-q", "-t", t, "-N", "", "-C", "root@lab-%d" % i,
                                             "-f", os.path.join(hd, "ssh_host_%s_key" % t)],
                                            stdin=subprocess.DEVNULL))
        # RSA keys cost ~0.3 s of CPU each: made once per host index and kept in LAB_KEY_CACHE (each into a
        # directory of its own that is renamed into place, so concurrent labs never see half a pair).
        if not os.path.isfile(os.path.join(rsa_cache, "rsa-%d" % i, "key.pub")):
            tmp = os.path.join(rsa_cache, ".rsa-%d.%d" % (i, os.getpid()))
            os.makedirs(tmp, mode=0o700, exist_ok=True)
            keygens.append(subprocess.Popen(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C",
                                             "root@lab-%d" % i, "-f", os.path.join(tmp, "key")],
                                            stdin=subprocess.DEVNULL))
            rsa_made.append((tmp, os.path.join(rsa_cache, "rsa-%d" % i)))
    for p in keygens:
        if p.wait() != 0:
            die("ssh-keygen failed", 1)
    for tmp, final in rsa_made:
        try:
            os.rename(tmp, final)
        except OSError:  # another lab made it first
            shutil.rmtree(tmp, ignore_errors=True)
    for i in range(1, args.hosts + 1):
        hd = host_dir(ld, "lab-%d" % i)
        for suffix, mode in (("", 0o600), (".pub", 0o644)):
            dest = os.path.join(hd, "ssh_host_rsa_key" + suffix)
            shutil.copyfile(os.path.join(rsa_cache, "rsa-%d" % i, "key" + suffix), dest)
            os.chmod(dest, mode)
    pub = read_text(key + ".pub")
    scale = float(os.environ.get("LAB_SCALE", "0.05"))
    uid = None
    for o in sorted(set(oses)):
        uid = build_template(ld, o, pub, args.profile)
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
        hosts = list(ex.map(lambda i: prepare_host(ld, i, per_host(oses, i), net, per_host(args.cpus, i),
                                                   per_host(args.memory, i), args.profile,
                                                   scale, uid), range(1, args.hosts + 1)))
    known = []
    for h in hosts:
        hk = read_text(os.path.join(host_dir(ld, h["name"]), "ssh_host_ed25519_key.pub")).split()
        known.append("%s %s %s\n" % (h["address"], hk[0], hk[1]))
    with open(os.path.join(ld, "known_hosts"), "w") as f:
        f.writelines(known)
    inv = {"hosts": hosts, "knownHosts": os.path.join(ld, "known_hosts"), "keyPath": key,
           "profile": args.profile, "os": args.os, "net": net, "labDir": ld}
    procs = {h["name"]: boot_host(ld, h["name"]) for h in hosts}
    missing = wait_ready(ld, hosts, procs)
    if missing:
        for n, why in missing[:3]:
            sys.stderr.write("--- %s: %s\n" % (n, why))
            sys.stderr.write("--- %s boot.log:\n%s" % (n, read_text(os.path.join(host_dir(ld, n), "boot.log"))))
            sys.stderr.write("--- %s sshd.log:\n%s" % (n, read_text(os.path.join(host_dir(ld, n), "sshd.log"))))
        teardown(ld)
        die("%d hosts did not come up (%s...); lab torn down" % (len(missing), missing[0][0]), 1)
    save_json(os.path.join(ld, "inventory.json"), inv)
    print("lab: %d %s hosts up in %.1fs (%s.11-%s.%d), profile %s, LAB_DIR=%s"
          % (len(hosts), args.os, time.time() - t0, net, net, 10 + len(hosts), args.profile, ld))
    print("lab: inventory %s/inventory.json, key %s, known_hosts %s/known_hosts" % (ld, key, ld))


def teardown(ld):
    """Kill every process in a host's mount namespace and the load balancer, unmount leftovers, remove LAB_DIR."""
    lb_stop(ld)
    hosts_root = os.path.join(ld, "hosts")
    nsset = set()
    if os.path.isdir(hosts_root):
        for n in os.listdir(hosts_root):
            ns = host_ns(ld, n)
            if ns:
                nsset.add(ns)
            pid = read_int(os.path.join(hosts_root, n, "holder.pid"))
            if pid and pid_alive(pid) and mnt_ns(pid) is not None:
                nsset.add(mnt_ns(pid)) if mnt_ns(pid) != mnt_ns(os.getpid()) else None
    nsset.discard(mnt_ns(os.getpid()))
    deadline = time.time() + 10
    while nsset:
        pids = [p for p in pids_in_ns(nsset) if p != os.getpid()]
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.time() > deadline:
            die("could not kill %d processes of the lab: %s" % (len(pids), pids[:10]), 1)
        time.sleep(0.05)
    # mounts in our own namespace that mention LAB_DIR (none in normal operation)
    for _ in range(3):
        mounts = [line.split()[1] for line in read_text("/proc/self/mounts").splitlines()
                  if ld in line and len(line.split()) > 1]
        if not mounts:
            break
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m.replace("\\040", " ")], stderr=subprocess.DEVNULL)
    if os.path.exists(ld):
        shutil.rmtree(ld)


def cmd_down(args):
    need_root()
    ld = lab_dir()
    if not os.path.exists(ld):
        print("lab: nothing to do (%s does not exist)" % ld)
        return
    n = len(lab_alive(ld))
    teardown(ld)
    print("lab: down (%d hosts), %s removed" % (n, ld))


def cmd_status(args):
    ld = lab_dir()
    inv = inventory(ld)
    if inv is None:
        print("lab: no lab in %s" % ld)
        return 3
    if args.json:
        rows = []
        for h in inv["hosts"]:
            rows.append(dict(h, running=holder_pid(ld, h["name"]) is not None,
                             sshd=sshd_pid(ld, h["name"]) is not None))
        print(json.dumps({"labDir": ld, "profile": inv.get("profile"), "hosts": rows}, indent=1))
        return 0
    print("LAB_DIR=%s  os=%s  profile=%s  clock=%+gs" % (ld, inv.get("os"), inv.get("profile"), clock_offset(ld)))
    print("%-8s %-15s %-10s %-19s %-8s %-6s %s" % ("NAME", "ADDRESS", "USER", "OS", "HOST", "SSHD", "FAULTS"))
    down = 0
    for h in inv["hosts"]:
        run = holder_pid(ld, h["name"]) is not None
        sshd = sshd_pid(ld, h["name"]) is not None
        faults = load_json(faults_file(ld, h["name"]), []) or []
        down += 0 if (run and sshd) else 1
        print("%-8s %-15s %-10s %-19s %-8s %-6s %s" % (
            h["name"], h["address"], h["user"], h["os"], "running" if run else "DEAD", "up" if sshd else "DOWN",
            ",".join("%s:%s%s" % (f["mode"], f["tool"], "(" + f["match"] + ")" if f.get("match") else "")
                     for f in faults) or "-"))
    return 0 if down == 0 else 1


def find_host(ld, ref):
    inv = inventory(ld)
    if inv is None:
        die("no lab in %s (scripts/lab up first)" % ld, 1)
    for h in inv["hosts"]:
        if ref in (h["name"], h["address"]) or ref == h["name"].split("-")[-1]:
            return inv, h
    die("no host %r in the lab (see scripts/lab status)" % ref, 2)


def ssh_argv(ld, inv, h):
    return ["ssh", "-i", inv["keyPath"], "-o", "UserKnownHostsFile=" + inv["knownHosts"],
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR", "-p", str(h["port"]), "%s@%s" % (h["user"], h["address"])]


def cmd_ssh(args):
    ld = lab_dir()
    inv, h = find_host(ld, args.host)
    argv = ssh_argv(ld, inv, h)
    if args.cmd:
        argv += ["--"] + args.cmd
    os.execvp(argv[0], argv)


def cmd_exec(args):
    need_root()
    ld = lab_dir()
    _, h = find_host(ld, args.host)
    pid = holder_pid(ld, h["name"])
    if pid is None:
        die("host %s is not running" % h["name"], 1)
    cmd = args.cmd or ["/bin/bash"]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "USER": "root", "LANG": "C.UTF-8", "TERM": os.environ.get("TERM", "dumb")}
    os.chdir("/")
    os.execvpe("nsenter", ["nsenter", "-t", str(pid), "-m", "-u", "-p", "--"] + cmd, env)


def faults_file(ld, name):
    d = os.path.join(host_dir(ld, name), "faults")
    if not os.path.isdir(d) and os.path.isdir(host_dir(ld, name)):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o777)
    return os.path.join(d, "faults.json")


def cmd_fault(args):
    need_root()
    ld = lab_dir()
    _, h = find_host(ld, args.host)
    name = h["name"]
    mode = args.mode
    if mode == "clear":
        with flock(faults_file(ld, name) + ".lock"):
            save_json(faults_file(ld, name), [])
        print("lab: %s faults cleared" % name)
        return
    if mode == "sshd-down":
        pid = holder_pid(ld, name)
        if pid is None:
            die("host %s is not running" % name, 1)
        ns = host_ns(ld, name)
        killed = 0
        for p in pids_in_ns({ns}):
            try:
                exe = os.readlink("/proc/%d/exe" % p)
            except OSError:
                continue
            if exe.endswith("/sshd") or os.path.basename(exe).startswith("sshd"):
                try:
                    os.kill(p, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        while port_open(h["address"], 22, 0.2) and time.time() < deadline:
            time.sleep(0.05)
        print("lab: %s sshd down (%d sshd processes killed)" % (name, killed))
        return
    if mode == "sshd-up":
        pid = holder_pid(ld, name)
        if pid is None:
            die("host %s is not running" % name, 1)
        if sshd_pid(ld, name):
            print("lab: %s sshd already up" % name)
            return
        hd = host_dir(ld, name)
        subprocess.run(["nsenter", "-t", str(pid), "-m", "-u", "-p", "--", "/usr/sbin/sshd", "-r", "-f",
                        os.path.join(hd, "sshd_config"), "-E", os.path.join(hd, "sshd.log")], check=True)
        deadline = time.time() + 5
        while not port_open(h["address"], 22, 0.2) and time.time() < deadline:
            time.sleep(0.05)
        print("lab: %s sshd up" % name)
        return
    if mode not in ("fail-once", "fail-always", "hang"):
        die("fault mode must be fail-once, fail-always, hang, clear, sshd-down or sshd-up", 2)
    if not args.tool:
        die("usage: scripts/lab fault HOST %s TOOL [MATCH]" % mode, 2)
    entry = {"mode": mode, "tool": args.tool, "match": args.match or ""}
    if args.code is not None:
        entry["code"] = args.code
    with flock(faults_file(ld, name) + ".lock"):
        faults = load_json(faults_file(ld, name), []) or []
        faults.append(entry)
        save_json(faults_file(ld, name), faults, mode=0o666)
    os.chmod(faults_file(ld, name) + ".lock", 0o666)
    print("lab: %s fault %s on %s%s" % (name, mode, args.tool, " matching %r" % args.match if args.match else ""))


DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text):
    text = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    neg = text.startswith("-")
    body = text[1:] if neg else text
    if not body or not re.fullmatch(r"(\d+(?:\.\d+)?[smhd])+", body):
        die("bad duration %r (e.g. 90s, 30m, 3h, 1d2h)" % text, 2)
    total = sum(float(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in DURATION.findall(body))
    return -total if neg else total


def clock_offset(ld):
    try:
        return float(read_text(os.path.join(ld, "clock"), "0").strip() or 0)
    except ValueError:
        return 0.0


def cmd_clock(args):
    ld = lab_dir()
    if not os.path.isdir(ld):
        die("no lab in %s" % ld, 1)
    path = os.path.join(ld, "clock")
    if args.action == "advance":
        if not args.duration:
            die("usage: scripts/lab clock advance DURATION", 2)
        off = clock_offset(ld) + parse_duration(args.duration)
    elif args.action == "reset":
        off = 0.0
    else:
        print("%g" % clock_offset(ld))
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%g\n" % off)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)
    print("lab: clock offset %+gs (lab time %s UTC)" % (off, time.strftime("%Y-%m-%d %H:%M:%S",
                                                                            time.gmtime(time.time() + off))))


def cmd_destroy_host(args):
    """Wipe a host: every process of it killed, its disk state (upper dirs) gone, then booted again as the fresh
    machine `up` made (same name, address, SSH host keys and login key)."""
    need_root()
    ld = lab_dir()
    inv, h = find_host(ld, args.host)
    name = h["name"]
    hd = host_dir(ld, name)
    ns = host_ns(ld, name)
    if ns and ns != mnt_ns(os.getpid()):
        deadline = time.time() + 10
        while True:
            pids = [p for p in pids_in_ns({ns}) if p != os.getpid()]
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.time() > deadline:
                die("could not kill %d processes of %s" % (len(pids), name), 1)
            time.sleep(0.05)
    for entry in os.listdir(hd):
        if entry.startswith("ssh_host_"):
            continue
        p = os.path.join(hd, entry)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    i = int(name.rsplit("-", 1)[1])
    prepare_host(ld, i, h["os"], inv["net"], h["cpus"], h["memoryMB"], inv.get("profile", "fast"),
                 float(os.environ.get("LAB_SCALE", "0.05")), None)
    procs = {name: boot_host(ld, name)}
    missing = wait_ready(ld, [h], procs)
    if missing:
        die("%s did not come back: %s" % (name, missing[0][1]), 1)
    print("lab: %s destroyed and booted again as a fresh machine (%s)" % (name, h["address"]))


def cmd_reboot(args):
    """Reboot a host: its processes die, runtime state resets from its files, enabled services start."""
    need_root()
    ld = lab_dir()
    _, h = find_host(ld, args.host)
    name = h["name"]
    pid = holder_pid(ld, name)
    if pid is None:
        die("host %s is not running" % name, 1)
    rc = subprocess.run(["nsenter", "-t", str(pid), "-m", "-u", "-p", "--", "/usr/bin/python3", "-c",
                         "import sys; sys.path.insert(0, '/opt/labnode'); from labnode import os_facts; "
                         "os_facts.simulate_boot()"]).returncode
    if rc != 0:
        die("reboot of %s failed" % name, 1)
    print("lab: %s rebooted" % name)


LB_OCTET = 250       # the load balancer's address in LAB_NET (hosts are .11-.110)
LB_PORT = 6443


def lb_serve(listen, backends):
    """A layer-4 load balancer, as an NLB or HAProxy in TCP mode in front of the control planes: each connection
    goes to the first backend that accepts one, in order (a host whose API server is down refuses the connect and
    is skipped: the health check is the connect itself); bytes pass both ways untouched, so TLS ends at the API
    servers, whose certificates name the endpoint."""
    import threading

    def pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s, how in ((b, socket.SHUT_WR), (a, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass

    def handle(c):
        up = None
        for host, port in backends:
            try:
                up = socket.create_connection((host, port), timeout=1)
                break
            except OSError:
                continue
        if up is None:
            c.close()
            return
        up.settimeout(None)
        t = threading.Thread(target=pump, args=(up, c), daemon=True)
        t.start()
        pump(c, up)
        t.join()
        c.close()
        up.close()

    host, port = listen.rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(1024)
    print("lab lb: %s -> %s" % (listen, " ".join("%s:%d" % b for b in backends)), flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def lb_stop(ld):
    pid = read_int(os.path.join(ld, "lb.pid"))
    if pid and pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if os.path.exists(os.path.join(ld, "lb.pid")):
        os.unlink(os.path.join(ld, "lb.pid"))


def cmd_lb(args):
    """`lb up`: the load balancer on LAB_NET.250:6443 in front of every host's :6443 (a control-plane endpoint
    that survives any one control plane); `lb down`; `lb status`."""
    need_root()
    ld = lab_dir()
    inv = inventory(ld)
    if inv is None:
        die("no lab in %s (scripts/lab up first)" % ld, 1)
    addr = "%s.%d:%d" % (inv["net"], LB_OCTET, LB_PORT)
    pid = read_int(os.path.join(ld, "lb.pid"))
    running = bool(pid and pid_alive(pid))
    if args.action == "status":
        print("lab lb: %s %s" % (addr, "running (pid %d)" % pid if running else "not running"))
        return 0 if running else 1
    if args.action == "down":
        lb_stop(ld)
        inv.pop("loadBalancer", None)
        save_json(os.path.join(ld, "inventory.json"), inv)
        print("lab lb: down")
        return 0
    if not running:
        backends = ["%s:%d" % (h["address"], LB_PORT) for h in inv["hosts"]]
        log = open(os.path.join(ld, "lb.log"), "ab")
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "lb-serve", addr] + backends,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        with open(os.path.join(ld, "lb.pid"), "w") as f:
            f.write("%d\n" % p.pid)
        deadline = time.time() + 10
        while not port_open(addr.rsplit(":", 1)[0], LB_PORT):
            if p.poll() is not None or time.time() > deadline:
                lb_stop(ld)
                die("the load balancer did not start (see %s/lb.log)" % ld, 1)
            time.sleep(0.05)
        inv["loadBalancer"] = {"address": addr.rsplit(":", 1)[0], "port": LB_PORT}
        save_json(os.path.join(ld, "inventory.json"), inv)
    print("lab lb: %s in front of every host's :%d" % (addr, LB_PORT))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="scripts/lab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="create hosts")
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--os", default="ubuntu-22.04", help="|".join(sorted(OSES)) + ", or a per-host list OS1,OS2,...")
    p.add_argument("--profile", default="fast", choices=["fast", "realistic"])
    p.add_argument("--cpus", type=int_list, default=[2], help="N, or N1,N2,... per host (the last repeats)")
    p.add_argument("--memory", type=int_list, default=[4096], help="MB, or MB1,MB2,... per host")
    p.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="remove every trace of the lab").set_defaults(fn=cmd_down)
    p = sub.add_parser("status", help="list hosts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("ssh", help="ssh into a host as its login user")
    p.add_argument("host")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_ssh)
    p = sub.add_parser("exec", help="run a command in a host's namespaces as root (no ssh)")
    p.add_argument("host")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_exec)
    p = sub.add_parser("fault", help="fail-once|fail-always|hang TOOL [MATCH] | clear | sshd-down | sshd-up")
    p.add_argument("host")
    p.add_argument("mode")
    p.add_argument("tool", nargs="?")
    p.add_argument("match", nargs="?")
    p.add_argument("--code", type=int, default=None, help="exit code of an injected failure (default 1)")
    p.set_defaults(fn=cmd_fault)
    p = sub.add_parser("destroy-host", help="wipe a host: processes and disk state gone, booted again fresh")
    p.add_argument("host")
    p.set_defaults(fn=cmd_destroy_host)
    p = sub.add_parser("clock", help="advance DURATION | show | reset")
    p.add_argument("action", choices=["advance", "show", "reset"])
    p.add_argument("duration", nargs="?")
    p.set_defaults(fn=cmd_clock)
    p = sub.add_parser("reboot", help="reboot a host")
    p.add_argument("host")
    p.set_defaults(fn=cmd_reboot)
    p = sub.add_parser("lb", help="up | down | status: a TCP load balancer on LAB_NET.250:6443 before every host")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(fn=cmd_lb)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lb-serve"]:
        # the load balancer's own process (started by `lb up`)
        lb_serve(argv[1], [(b.rsplit(":", 1)[0], int(b.rsplit(":", 1)[1])) for b in argv[2:]])
        return 0
    if argv[:1] == ["fault"] and len(argv) >= 3:
        # MATCH may start with '-' (e.g. --upload-certs): parse by position, not by argparse
        rest = argv[1:]
        code = None
        if "--code" in rest:
            i = rest.index("--code")
            try:
                code = int(rest[i + 1])
            except (IndexError, ValueError):
                die("--code needs a number", 2)
            del rest[i:i + 2]
        if rest and rest[-1] == "--":
            rest = rest[:-1]
        rest = [x for i, x in enumerate(rest) if not (x == "--" and i >= 2)]
        ns = argparse.Namespace(command="fault", host=rest[0], mode=rest[1],
                                tool=rest[2] if len(rest) > 2 else None,
                                match=" ".join(rest[3:]) if len(rest) > 3 else None, code=code)
        return cmd_fault(ns) or 0
    args = ap.parse_args(argv)
    if args.command in ("ssh", "exec") and args.cmd and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
