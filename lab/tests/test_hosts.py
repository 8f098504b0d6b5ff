"""The lab's hosts: up/down/status, isolation, identity, faults, clock, profiles."""
import os
import re
import subprocess
import time

import pytest

from conftest import new_lab


def test_ssh_with_inventory_key_and_strict_known_hosts(lab):
    l = lab(3)
    inv = l.inventory
    assert [h["name"] for h in inv["hosts"]] == ["lab-1", "lab-2", "lab-3"]
    assert [h["address"] for h in inv["hosts"]] == ["%s.%d" % (l.net, 10 + i) for i in (1, 2, 3)]
    assert all(h["user"] == "ubuntu" and h["port"] == 22 for h in inv["hosts"])
    lines = open(inv["knownHosts"]).read().splitlines()
    assert len(lines) == 3 and all(re.match(r"^127\.\d+\.\d+\.\d+ ssh-ed25519 \S+$", x) for x in lines)
    for h in inv["hosts"]:
        r = l.ssh(h["name"], "hostname")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == h["name"]
    # StrictHostKeyChecking=yes really checks: host 1's key under host 2's address is refused
    bad = os.path.join(l.dir, "bad_known_hosts")
    with open(bad, "w") as f:
        f.write("%s %s\n" % (inv["hosts"][1]["address"], " ".join(lines[0].split()[1:])))
    r = l.ssh("lab-2", "true", known_hosts=bad)
    assert r.returncode == 255
    assert "host key" in r.stderr.lower() or "HOST IDENTIFICATION" in r.stderr


def test_hosts_offer_ed25519_ecdsa_and_rsa_keys_and_known_hosts_holds_ed25519(lab):
    # As an EC2 image: sshd has a key of each type. known_hosts holds only the ed25519 one, and OpenSSH with
    # strict checking connects all the same (it asks for the key types it knows first).
    l = lab(3)
    known = {line.split()[0]: line.split()[2] for line in open(l.inventory["knownHosts"]).read().splitlines()}
    seen = set()
    for h in l.hosts:
        r = subprocess.run(["ssh-keyscan", "-t", "ed25519,ecdsa,rsa", h["address"]], capture_output=True,
                           text=True, timeout=30)
        keys = {f[1]: f[2] for f in (x.split() for x in r.stdout.splitlines() if not x.startswith("#")) if len(f) == 3}
        assert sorted(keys) == ["ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"], r.stdout + r.stderr
        assert keys["ssh-ed25519"] == known[h["address"]]
        seen |= set(keys.values())
        assert l.ssh(h["name"], "true").returncode == 0
    assert len(seen) == 9


def test_identity_is_distinct_per_host(lab):
    l = lab(3)
    seen = {"hostname": set(), "machine-id": set(), "uuid": set()}
    for h in l.hosts:
        r = l.ssh(h["name"], "hostname; cat /etc/machine-id; sudo -n cat /sys/class/dmi/id/product_uuid; "
                             ". /etc/os-release; echo $ID $VERSION_ID; cat /var/lib/dbus/machine-id 2>/dev/null || "
                             "cat /etc/machine-id", check=True)
        name, mid, uuid, osr, dbus_mid = r.stdout.split("\n")[:5]
        assert dbus_mid == mid
        assert osr == "ubuntu 22.04"
        assert l.ssh(h["name"], "hostname -I; hostname -s", check=True).stdout.split() == [h["address"], h["name"]]
        assert re.fullmatch(r"[0-9a-f]{32}", mid)
        assert re.fullmatch(r"EC2[0-9A-F-]{33}", uuid), uuid
        seen["hostname"].add(name)
        seen["machine-id"].add(mid)
        seen["uuid"].add(uuid)
    assert all(len(v) == 3 for v in seen.values()), seen


def test_login_user_has_passwordless_sudo_and_root_is_refused(lab):
    l = lab(3)
    r = l.ssh("lab-1", "id -un; sudo -n id -u; getent shadow ubuntu >/dev/null 2>&1 || sudo -n getent shadow ubuntu",
              check=True)
    out = r.stdout.split()
    assert out[0] == "ubuntu" and out[1] == "0"
    assert out[2].split(":")[1] == "*"
    # root has the same key in authorized_keys: only PermitRootLogin refuses it
    assert "ssh-ed25519" in l.exec("lab-1", "cat /root/.ssh/authorized_keys", check=True).stdout
    r = l.ssh("lab-1", "true", user="root")
    assert r.returncode == 255 and "Permission denied" in r.stderr


def test_fresh_host_state_like_an_ec2_image(lab):
    l = lab(3)
    r = l.ssh("lab-2", "cat /proc/swaps; echo ---; grep SwapTotal /proc/meminfo; echo ---; lsmod; echo ---; "
                       "sysctl -n net.ipv4.ip_forward; echo ---; sysctl net.bridge.bridge-nf-call-iptables; echo rc=$?; "
                       "nproc; grep MemTotal /proc/meminfo; grep -c ^processor /proc/cpuinfo; "
                       "command -v kubeadm kubelet kubectl containerd helm; echo done", check=True)
    swaps, meminfo, lsmod, fwd, rest = r.stdout.split("---\n")
    assert "/swap.img" in swaps
    assert int(meminfo.split()[1]) > 0
    assert "br_netfilter" not in lsmod and "overlay" not in lsmod
    assert fwd.strip() == "0"
    assert "rc=255" in rest and "cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables" in r.stderr
    lines = rest.split("\n")
    assert lines[1] == "2"
    assert 3_500_000 < int(lines[2].split()[1]) <= 4096 * 1024
    assert lines[3] == "2"
    assert lines[4] == "done", "no container runtime or Kubernetes binary on a fresh host: %r" % lines
    r = l.ssh("lab-2", "grep -v '^#' /etc/fstab | grep -w swap", check=True)
    assert "/swap.img" in r.stdout


def test_writes_in_a_host_stay_in_the_host(lab):
    l = lab(3)
    probe = "lab-probe-%d" % os.getpid()
    l.ssh("lab-1", "sudo -n sh -c 'echo x > /etc/%s; echo x > /usr/local/bin/%s; echo x > /root/%s; "
                   "echo x > /var/tmp/%s; echo x > /opt/%s; echo x > /tmp/%s'" % ((probe,) * 6), check=True)
    for p in ("/etc/", "/usr/local/bin/", "/root/", "/var/tmp/", "/opt/", "/tmp/"):
        assert not os.path.exists(p + probe), p + probe
        r = l.ssh("lab-2", "sudo -n test -e %s%s && echo present || echo absent" % (p, probe), check=True)
        assert r.stdout.strip() == "absent"
        r = l.ssh("lab-1", "sudo -n test -e %s%s && echo present || echo absent" % (p, probe), check=True)
        assert r.stdout.strip() == "present"
    # the swap off / module load of one host does not change another host nor the real machine
    real_fwd = open("/proc/sys/net/ipv4/ip_forward").read()
    l.ssh("lab-1", "sudo -n sysctl -w net.ipv4.ip_forward=1 && sudo -n swapoff -a", check=True)
    assert l.ssh("lab-1", "sysctl -n net.ipv4.ip_forward", check=True).stdout.strip() == "1"
    assert l.ssh("lab-2", "sysctl -n net.ipv4.ip_forward", check=True).stdout.strip() == "0"
    assert "/swap.img" in l.ssh("lab-2", "cat /proc/swaps", check=True).stdout
    assert open("/proc/sys/net/ipv4/ip_forward").read() == real_fwd
    # restore for the other tests of this module
    l.ssh("lab-1", "sudo -n sysctl -w net.ipv4.ip_forward=0 && sudo -n swapon -a", check=True)


def test_status_and_second_up_refused(lab):
    l = lab(3)
    r = l.labctl("status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(re.findall(r"^lab-\d+ .* running +up ", r.stdout, re.M)) == 3
    r = l.labctl("up", "--hosts", "2")
    assert r.returncode == 1
    assert "already up" in r.stderr
    r = l.labctl("ssh", "lab-2", "hostname; id -un")
    assert r.returncode == 0 and r.stdout == "lab-2\nubuntu\n"
    r = l.labctl("exec", "lab-2", "id", "-un")
    assert r.returncode == 0 and r.stdout == "root\n"
    assert l.ssh("lab-3", "true").returncode == 0


def test_down_leaves_nothing_behind():
    l = new_lab(2)
    holders = l.holder_pids()
    nss = l.namespaces()
    assert len(holders) == 2 and len(nss) == 2
    # a detached daemon inside a host, started over ssh, must die with the lab too
    l.ssh("lab-1", "sudo -n sh -c 'setsid sleep 3000 </dev/null >/dev/null 2>&1 &'", check=True)
    l.ssh("lab-2", "sudo -n apt-get update -qq >/dev/null && sudo -n apt-get install -y -qq containerd >/dev/null",
          check=True)
    assert l.ssh("lab-2", "systemctl is-active containerd").stdout.strip() == "active"
    r = l.down()
    assert r.returncode == 0, r.stderr
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                ns = os.readlink("/proc/%s/ns/mnt" % pid)
            except OSError:
                continue
            assert ns not in nss, "process %s still in a host namespace" % pid
    assert l.dir not in open("/proc/mounts").read()
    assert not os.path.exists(l.dir)
    for h in ("11", "12"):
        with pytest.raises(OSError):
            import socket
            socket.create_connection(("%s.%s" % (l.net, h), 22), timeout=0.5).close()


def test_other_operating_systems(lab):
    for osname, user, family in (("debian-12", "admin", "deb"), ("amazon-linux-2023", "ec2-user", "rpm"),
                                 ("ubuntu-24.04", "ubuntu", "deb")):
        l = lab(1, osname)
        r = l.ssh("lab-1", "id -un; . /etc/os-release; echo $ID-$VERSION_ID; command -v apt-get dnf || true",
                  check=True)
        lines = r.stdout.split()
        assert lines[0] == user
        assert lines[1] == {"debian-12": "debian-12", "amazon-linux-2023": "amzn-2023",
                            "ubuntu-24.04": "ubuntu-24.04"}[osname]
        if family == "rpm":
            assert lines[2:] == ["/usr/bin/dnf"]
        else:
            assert lines[2:] == ["/usr/bin/apt-get"]
        assert l.ssh("lab-1", "sudo -n true").returncode == 0


def test_faults_fail_once_always_hang_and_clear(lab):
    l = lab(3)
    l.labctl("fault", "lab-3", "fail-once", "sysctl", "ip_forward", check=True)
    r = l.ssh("lab-3", "sysctl -n net.ipv4.ip_forward")
    assert r.returncode == 1 and "injected fault" in r.stderr
    assert l.ssh("lab-3", "sysctl -n net.ipv4.ip_forward").stdout.strip() == "0"
    # the match restricts the fault to matching command lines
    l.labctl("fault", "lab-3", "fail-always", "apt-get", "install", "--code", "100", check=True)
    assert l.ssh("lab-3", "sudo -n apt-get update >/dev/null").returncode == 0
    for _ in range(2):
        assert l.ssh("lab-3", "sudo -n apt-get install -y containerd").returncode == 100
    assert "fail-always:apt-get(install)" in l.labctl("status").stdout
    l.labctl("fault", "lab-3", "hang", "nproc", check=True)
    with pytest.raises(subprocess.TimeoutExpired):
        l.ssh("lab-3", "nproc", timeout=3)
    l.labctl("fault", "lab-3", "clear", check=True)
    assert l.ssh("lab-3", "nproc").stdout.strip() == "2"
    assert l.ssh("lab-3", "sudo -n apt-get install -y containerd >/dev/null").returncode == 0
    l.exec("lab-3", "pkill -f 'labnode nproc' || true")


def test_fault_sshd_down_and_up_keeps_other_processes(lab):
    l = lab(3)
    l.ssh("lab-1", "sudo -n sh -c 'setsid sleep 4000 </dev/null >/dev/null 2>&1 &'", check=True)
    r = l.labctl("fault", "lab-1", "sshd-down")
    assert r.returncode == 0, r.stderr
    r = l.ssh("lab-1", "true", timeout=20)
    assert r.returncode == 255 and "refused" in r.stderr.lower()
    assert "DOWN" in l.labctl("status").stdout
    assert "sleep 4000" in l.exec("lab-1", "ps -eo args", check=True).stdout
    assert l.ssh("lab-2", "true").returncode == 0
    l.labctl("fault", "lab-1", "sshd-up", check=True)
    assert l.ssh("lab-1", "hostname", check=True).stdout.strip() == "lab-1"
    l.exec("lab-1", "pkill -f 'sleep 4000' || true")


def test_clock_advance_moves_lab_time(lab):
    l = lab(3)
    code = "import sys, time; sys.path.insert(0, '/opt/labnode'); from labnode import common; " \
           "print(round(common.now() - time.time()))"
    before = int(l.ssh("lab-1", "/usr/bin/python3 -c \"%s\"" % code, check=True).stdout)
    l.labctl("clock", "advance", "3h", check=True)
    l.labctl("clock", "advance", "1h30m", check=True)
    after = int(l.ssh("lab-1", "/usr/bin/python3 -c \"%s\"" % code, check=True).stdout)
    assert after - before == 4 * 3600 + 1800
    assert l.labctl("clock", "advance", "3x").returncode == 2
    l.labctl("clock", "reset", check=True)


def test_realistic_profile_sleeps_scaled():
    os.environ["LAB_SCALE"] = "0.1"
    try:
        l = new_lab(1, profile="realistic")
    finally:
        del os.environ["LAB_SCALE"]
    try:
        t0 = time.time()
        l.ssh("lab-1", "sudo -n apt-get update >/dev/null", check=True)
        took = time.time() - t0
        assert took >= 0.6, took  # apt-update: 6 s real life x 0.1
        t0 = time.time()
        # a second apt-get while the first holds the dpkg lock fails like apt (no waiting)
        r = l.ssh("lab-1", "sudo -n apt-get install -y containerd >/dev/null & sleep 0.3; "
                           "sudo -n apt-get install -y socat; rc=$?; wait; exit $rc")
        assert time.time() - t0 >= 0.8  # containerd and runc: (4 s a transaction + 2 s x 2 packages) x 0.1
        assert r.returncode == 100 and "Could not get lock /var/lib/dpkg/lock-frontend" in r.stderr
        assert l.ssh("lab-1", "systemctl is-active containerd").stdout.strip() == "active"
    finally:
        l.down()


def test_reboot_restores_boot_state_from_files(lab):
    l = lab(1, key="reboot")
    l.ssh("lab-1", "sudo -n modprobe br_netfilter && sudo -n swapoff -a && sudo -n sysctl -w net.ipv4.ip_forward=1",
          check=True)
    l.labctl("reboot", "lab-1", check=True)
    r = l.ssh("lab-1", "lsmod; cat /proc/swaps; sysctl -n net.ipv4.ip_forward; cat /proc/sys/net/ipv4/ip_forward; "
                       "test -e /proc/sys/net/bridge || echo no-bridge", check=True)
    assert "br_netfilter" not in r.stdout and "/swap.img" in r.stdout
    assert r.stdout.strip().endswith("0\n0\nno-bridge")
    # persisted configuration survives the reboot, and fstab decides swap
    l.ssh("lab-1", "echo br_netfilter | sudo -n tee /etc/modules-load.d/k8s.conf && "
                   "echo net.ipv4.ip_forward=1 | sudo -n tee /etc/sysctl.d/k8s.conf && "
                   "sudo -n sed -i '/ swap / s/^\\(.*\\)$/#\\1/g' /etc/fstab", check=True)
    l.labctl("reboot", "lab-1", check=True)
    r = l.ssh("lab-1", "lsmod; cat /proc/swaps; sysctl -n net.ipv4.ip_forward; "
                       "sysctl -n net.bridge.bridge-nf-call-iptables", check=True)
    assert "br_netfilter" in r.stdout and "/swap.img" not in r.stdout
    assert r.stdout.strip().split("\n")[-2:] == ["1", "1"]
    # `sudo reboot` inside the host: the session is cut, runtime state resets, enabled services come back
    l.ssh("lab-1", "sudo -n apt-get update -qq && sudo -n apt-get install -y -qq containerd >/dev/null && "
                   "sudo -n sysctl -w net.ipv4.ip_forward=0 >/dev/null && sudo -n modprobe -r br_netfilter", check=True)
    assert l.ssh("lab-1", "reboot").returncode != 0
    r = l.ssh("lab-1", "sudo -n reboot; sleep 30; echo survived", timeout=60)
    assert r.returncode == 255 and "survived" not in r.stdout
    deadline = time.time() + 20
    while time.time() < deadline:
        r = l.ssh("lab-1", "lsmod; sysctl -n net.ipv4.ip_forward; systemctl is-active containerd")
        if r.returncode == 0 and "br_netfilter" in r.stdout:
            break
        time.sleep(0.5)
    assert "br_netfilter" in r.stdout and r.stdout.strip().split("\n")[-2:] == ["1", "active"], r.stdout


def test_up_50_hosts_takes_seconds():
    l = new_lab(50)
    try:
        print("\nlab up of 50 hosts: %.2fs" % l.up_seconds)
        assert l.up_seconds < 30, l.up_output
        assert len(l.hosts) == 50
        r = l.ssh("lab-50", "hostname", check=True)
        assert r.stdout.strip() == "lab-50"
        t0 = time.time()
        r = l.down()
        assert r.returncode == 0
        print("lab down of 50 hosts: %.2fs" % (time.time() - t0))
        assert not os.path.exists(l.dir)
    finally:
        if os.path.exists(l.dir):
            l.down()


def test_mixed_os_lab(lab):
    l = lab(3, "ubuntu-24.04,amazon-linux-2023")
    assert [(h["os"], h["user"]) for h in l.hosts] == [("ubuntu-24.04", "ubuntu"), ("amazon-linux-2023", "ec2-user"),
                                                       ("amazon-linux-2023", "ec2-user")]
    r = l.ssh("lab-1", ". /etc/os-release; echo $ID; command -v apt-get dnf", check=False)
    assert r.stdout.split() == ["ubuntu", "/usr/bin/apt-get"]
    r = l.ssh("lab-3", ". /etc/os-release; echo $ID; command -v apt-get dnf", check=False)
    assert r.stdout.split() == ["amzn", "/usr/bin/dnf"]
