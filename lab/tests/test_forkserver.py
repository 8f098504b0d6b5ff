"""The hosts' fork server (labnode/forkserver.py) and the tools' thin client (labnode/client.c): tool calls go
through the server, behave exactly as `python3 -m labnode TOOL` run directly, carry the caller's credentials,
environment, directory and stdio, forward signals, and fall back to the direct path when there is no server."""
import os
import re
import shlex
import time

import pytest

from conftest import ROOT

CLIENT = "/opt/labnode/bin/labnode"


def served(l, host="lab-1"):
    r = l.exec(host, "%s --forkserver-status" % CLIENT)
    assert r.returncode == 0, "no fork server in %s: %s" % (host, r.stderr)
    return int(r.stdout.strip())


def test_lab_has_the_client_and_a_server_per_host(lab):
    l = lab(2)
    import sys
    sys.path.insert(0, os.path.join(ROOT, "lab"))
    import labctl
    # CI's machine builds bootstrap with the Swift toolchain, so its clang is there: the client must be built
    assert labctl.c_compiler() is not None, "no C compiler found (the Swift toolchain's clang, or cc)"
    for h in l.hosts:
        r = l.exec(h["name"], "test -x %s && cat /usr/bin/sysctl && ps -eo args" % CLIENT, check=True)
        assert "exec %s sysctl" % CLIENT in r.stdout
        assert "/usr/bin/python3 -m labnode.forkserver" in r.stdout
        assert served(l, h["name"]) >= 0


def test_tool_calls_go_through_the_server(lab):
    l = lab(2)
    before = served(l)
    r = l.ssh("lab-1", "sysctl -n net.ipv4.ip_forward; hostname; nproc; sudo -n swapon --show >/dev/null", check=True)
    assert r.stdout.split() == ["0", "lab-1", "2"]
    assert served(l) - before >= 4  # the status query itself is not counted
    # LABNODE_DIRECT=1 bypasses it (the same tools, one interpreter each)
    before = served(l)
    r = l.ssh("lab-1", "LABNODE_DIRECT=1 sysctl -n net.ipv4.ip_forward; LABNODE_DIRECT=1 hostname", check=True)
    assert r.stdout.split() == ["0", "lab-1"]
    assert served(l) == before


# Each runs twice, through the server and directly; outputs, exit codes and the journal must be the same.
SAME = [
    "sysctl -n net.ipv4.ip_forward",
    "sysctl -n no.such.key",                                    # exit 255, stderr
    "sudo -n sysctl -n no.such.key",                            # as root: journaled
    "systemctl is-active containerd",                           # exit 3
    "systemctl enable containerd",                              # as the login user: Access denied
    "hostname other-name",                                      # as the login user: must be root
    "sudo -n hostname",
    "printf 'a\\nb\\n' | gpg --dearmor; echo rc=$?",
    "curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key | gpg --dearmor | od -An -tx1 | head -2",
    "cd /etc && dpkg-query -W -f='${Package} ${Version}\\n' no-such-pkg openssl; echo rc=$?",
    "printf 'apiVersion: v1\\nclusters:\\n- cluster: {server: \"https://127.0.0.1:7\"}\\n  name: c\\ncontexts:\\n"
    "- context: {cluster: c, user: u}\\n  name: x\\ncurrent-context: x\\nusers:\\n- name: u\\n  user: {}\\n' "
    "> /tmp/kc; KUBECONFIG=/tmp/kc kubectl get nodes 2>&1; echo rc=$?; rm -f /tmp/kc",  # the environment
    "cd /tmp && curl -fsSLO https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key && ls -l Release.key | "
    "cut -d' ' -f1,3,5; rm -f Release.key",                    # cwd and umask: a file owned by the caller
    "umask 077; cd /tmp && curl -fsSL -o k.gpg https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key && "
    "stat -c %a k.gpg; rm -f k.gpg",
    "apt-get install -y nothing 2>&1 | tail -2; echo rc=${PIPESTATUS[0]}",
    "nproc --bogus",
    "swapon --show=NAME --noheadings; echo rc=$?",
    "id -u; sudo -n id -u",
]


def test_same_behaviour_as_the_direct_path(lab):
    l = lab(2)
    l.exec("lab-1", "apt-get update -qq && curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key | "
                    "gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg && echo 'deb [signed-by="
                    "/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /' > "
                    "/etc/apt/sources.list.d/kubernetes.list && apt-get update -qq && apt-get install -y -qq kubectl "
                    ">/dev/null", check=True)
    outs, journals = {}, {}
    for mode, env in (("server", ""), ("direct", "export LABNODE_DIRECT=1; ")):
        l.exec("lab-1", "rm -f /var/log/labnode/commands.log", check=True)
        outs[mode] = [(cmd,) + tuple(_run(l, env + cmd)) for cmd in SAME]
        journals[mode] = l.exec("lab-1", "cat /var/log/labnode/commands.log", check=True).stdout
    for a, b in zip(outs["server"], outs["direct"]):
        assert a == b, "through the server vs directly differ for %r:\n%r\n%r" % (a[0], a[1:], b[1:])
    assert journals["server"] == journals["direct"]
    assert "255 sysctl -n no.such.key" in journals["server"]


def _run(l, cmd):
    r = l.ssh("lab-1", "bash -c %s" % shlex.quote(cmd))
    return r.returncode, r.stdout, r.stderr


def _no_tool_left(l, host, pattern):
    deadline = time.time() + 10
    while time.time() < deadline and pattern in l.exec(host, "ps -eo args", check=True).stdout:
        time.sleep(0.1)
    return pattern not in l.exec(host, "ps -eo args", check=True).stdout


def test_signals_reach_the_tool_and_a_killed_client_takes_its_tool_along(lab):
    l = lab(2)
    l.labctl("fault", "lab-2", "hang", "nproc", check=True)
    try:
        # TERM to the client: forwarded, the tool dies of it, the caller sees the same signal
        r = l.ssh("lab-2", "timeout -s TERM 1 nproc; echo rc=$?", timeout=30)
        assert r.stdout.strip() == "rc=124", r.stdout + r.stderr
        assert _no_tool_left(l, "lab-2", "labnode nproc")
        # the tool shows the command line it would have had (ps, pgrep -f)
        l.ssh("lab-2", "setsid nproc </dev/null >/dev/null 2>&1 &", check=True)
        deadline = time.time() + 10
        args = ""
        while time.time() < deadline:
            args = l.exec("lab-2", "ps -eo pid,args", check=True).stdout
            if re.search(r"/usr/bin/python3 -m labnode nproc$", args, re.M):
                break
            time.sleep(0.1)
        assert re.search(r"^\s*\d+ /usr/bin/python3 -m labnode nproc$", args, re.M), args
        assert re.search(r"^\s*\d+ %s nproc$" % CLIENT, args, re.M), args
        # kill -9 of the client: the server kills the tool
        l.exec("lab-2", "pkill -KILL -f '^%s nproc'" % CLIENT, check=True)
        assert _no_tool_left(l, "lab-2", "labnode nproc")
    finally:
        l.labctl("fault", "lab-2", "clear", check=True)
    assert l.ssh("lab-2", "nproc", check=True).stdout.strip() == "2"


def test_without_a_server_tools_still_work_and_reboot_brings_it_back(lab):
    l = lab(1, key="forkserver-reboot")
    l.exec("lab-1", "kill $(cat /run/labnode/forkserver.pid)", check=True)
    deadline = time.time() + 10
    while time.time() < deadline and l.exec("lab-1", "%s --forkserver-status" % CLIENT).returncode == 0:
        time.sleep(0.1)
    assert l.exec("lab-1", "%s --forkserver-status" % CLIENT).returncode != 0
    r = l.ssh("lab-1", "sysctl -n net.ipv4.ip_forward; sudo -n apt-get update -qq && "
                       "sudo -n apt-get install -y -qq containerd >/dev/null && systemctl is-active containerd",
              check=True)
    assert r.stdout.split() == ["0", "active"]
    l.labctl("reboot", "lab-1", check=True)
    assert served(l) >= 0
    r = l.ssh("lab-1", "systemctl is-active containerd; pgrep -x containerd >/dev/null && echo running", check=True)
    assert r.stdout.split() == ["active", "running"]


def test_services_are_forked_with_their_own_command_lines(lab):
    l = lab(1, key="forkserver-services")
    l.ssh("lab-1", "sudo -n apt-get update -qq && sudo -n apt-get install -y -qq containerd >/dev/null", check=True)
    args = l.exec("lab-1", "ps -eo comm,args", check=True).stdout
    assert re.search(r"^lab-systemd +/usr/bin/python3 -m labnode.supervise containerd 0.5 -- /usr/bin/python3 -m "
                     r"labnode containerd-daemon$", args, re.M), args
    assert re.search(r"^containerd +/usr/bin/python3 -m labnode containerd-daemon$", args, re.M), args
    # a crash of the main process is seen by its supervisor, which starts a new one
    pid = l.exec("lab-1", "cat /run/labnode/containerd.main.pid", check=True).stdout.strip()
    l.exec("lab-1", "kill -9 %s" % pid, check=True)
    deadline = time.time() + 10
    new = pid
    while time.time() < deadline and new == pid:
        time.sleep(0.1)
        new = l.exec("lab-1", "cat /run/labnode/containerd.main.pid").stdout.strip()
    assert new != pid
    r = l.ssh("lab-1", "sudo -n systemctl restart containerd && systemctl is-active containerd", check=True)
    assert r.stdout.strip() == "active"


# A supervisor is started and stopped at once, again and again, at random moments of its start-up: the way
# `systemctl restart` catches a crash-looping service in the middle of starting its next process. Its service is
# itself long-lived (a nested supervisor of `sleep`), so a stop that gets lost leaves it running and the stop
# waits. Before the fix about half of these stops hung until the SIGKILL.
STOP_DURING_START = r"""
import contextlib, os, random, signal, sys, time
sys.path.insert(0, "/opt/labnode")
from labnode import forkserver
forkserver.preload()  # as in a supervisor forked from the fork server: its service is forked, not exec'd
for i in range(150):
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        sys.argv = ["supervise", "stoptest-%d" % i, "0.1", "--", "/usr/bin/python3", "-m", "labnode.supervise",
                    "stoptest-inner-%d" % i, "1", "--", "/bin/sleep", "600"]
        from labnode import supervise
        try:
            supervise.main()
        finally:
            os._exit(0)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # from this side too, so that the group exists when the stop is sent
    time.sleep(random.uniform(0, 0.006))
    t = time.time()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)  # what a stop sends (common.stop_daemon)
    while time.time() < t + 2 and not os.waitpid(pid, os.WNOHANG)[0]:
        time.sleep(0.005)
    if time.time() >= t + 2:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("stop %d hung" % i)
        sys.exit(1)
print("ok")
"""


def test_a_stop_during_a_service_start_is_never_lost(lab):
    l = lab(1, key="forkserver-services")
    l.exec("lab-1", "cat > /tmp/stop_during_start.py <<'PY'\n%s\nPY" % STOP_DURING_START, check=True)
    r = l.exec("lab-1", "/usr/bin/python3 /tmp/stop_during_start.py", timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
