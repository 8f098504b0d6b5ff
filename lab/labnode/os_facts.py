"""nproc, hostname, reboot, shutdown, and the host's boot sequence."""
import os
import signal
import subprocess
import sys
import time

from labnode import SERVICES, common


def nproc(argv):
    n = int(common.host_info().get("cpus") or os.cpu_count() or 1)
    ignore = 0
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--all":
            pass
        elif a.startswith("--ignore="):
            ignore = int(a.split("=", 1)[1])
        elif a == "--ignore" and i + 1 < len(argv):
            ignore = int(argv[i + 1])
            i += 1
        elif a in ("--help", "--version"):
            common.out("nproc (GNU coreutils) 8.32\n")
            return 0
        else:
            common.fail("nproc: extra operand '%s'\nTry 'nproc --help' for more information." % a, 1)
        i += 1
    common.out("%d\n" % max(1, n - ignore))
    return 0


def _protected_pids():
    """The host's pid 1 (namespace holder) and its sshd listener survive a simulated reboot (they are the
    'machine'); pids are those of the host's own pid namespace."""
    keep = {os.getpid(), 1}
    try:
        with open(os.path.join(common.host_lab_dir(), "sshd.pid")) as fh:
            keep.add(int(fh.read().strip()))
    except (OSError, ValueError):
        pass
    return keep


def kill_host_processes():
    me = os.readlink("/proc/self/ns/mnt")
    keep = _protected_pids()
    for _ in range(20):
        victims = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) in keep:
                continue
            try:
                if os.readlink("/proc/%s/ns/mnt" % d) == me:
                    victims.append(int(d))
            except OSError:
                pass
        if not victims:
            return
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def simulate_boot():
    """Reset runtime state as a reboot does, then start enabled services."""
    from labnode import forkserver, os_kernel, os_systemctl
    kill_host_processes()
    for f in os.listdir(common.RUN_DIR) if os.path.isdir(common.RUN_DIR) else []:
        if f.endswith(".pid"):
            os.unlink(os.path.join(common.RUN_DIR, f))
    with common.state(common.KERNEL_JSON, os_kernel.boot_state()) as kern:
        new = os_kernel.boot(kern)
        kern.clear()
        kern.update(new)
        snapshot = dict(kern)
    os_kernel.refresh_proc(snapshot)
    with common.state(common.SERVICES_JSON, {"enabled": [], "started": []}) as svc:
        svc["started"] = []
    forkserver.start()  # killed with everything else; back before the services (they use the tools)
    for name in list(common.services_state().get("enabled", [])):
        if name in SERVICES:
            os_systemctl.start(name, quiet=True)


def reboot(tool, argv):
    if not common.is_root():
        common.fail("Failed to set wall message, ignoring: Interactive authentication required.\n"
                    "Call to Reboot failed: Interactive authentication required.", 1)
    if tool == "shutdown" and not any(a in ("-r", "--reboot") for a in argv):
        # a halted lab host would be gone for good; model only the reboot
        common.fail("shutdown: this lab only supports `shutdown -r` (use scripts/lab fault HOST sshd-down)", 1)
    subprocess.Popen([sys.executable, "-c", "import time, sys; sys.path.insert(0, '/opt/labnode'); "
                      "time.sleep(0.5); from labnode import os_facts; os_facts.simulate_boot()"],
                     start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, close_fds=True, env=dict(os.environ, PYTHONPATH="/opt/labnode"))
    return 0


def hostname(argv):
    """hostname [-s|-f|-i|-I|NAME]: -i/-I give the host's lab address (the real tool would list the machine's)."""
    import socket
    name = os.uname().nodename
    for a in argv:
        if a in ("-I", "--all-ip-addresses"):
            common.out(common.host_address() + " \n")
            return 0
        if a in ("-i", "--ip-address"):
            common.out(common.host_address() + "\n")
            return 0
        if a in ("-s", "--short"):
            common.out(name.split(".")[0] + "\n")
            return 0
        if a in ("-f", "--fqdn", "--long", "-A", "--all-fqdns"):
            common.out(name + "\n")
            return 0
        if a in ("-d", "--domain"):
            common.out("\n")
            return 0
        if a.startswith("-"):
            common.fail("hostname: invalid option -- '%s'\nTry 'hostname --help' for more information." % a.lstrip("-"), 1)
    if argv:
        if not common.is_root():
            common.fail("hostname: you must be root to change the host name", 1)
        try:
            socket.sethostname(argv[0])
        except OSError as e:
            common.fail("hostname: %s" % e.strerror, 1)
        return 0
    common.out(name + "\n")
    return 0


DATE_REAL = "/opt/labnode/bin/date.real"     # coreutils' date, copied at `lab up` (the wrapper shadows it)


def date(argv):
    """coreutils `date` on the lab clock: without a time of its own (-d/-f/-r) it prints the lab's now
    (`scripts/lab clock advance`); setting the clock (-s) is refused, the machine's clock is not the host's."""
    given = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            break
        if a.startswith("--"):
            name = a[2:].split("=", 1)[0]
            if len(name) >= 2 and "set".startswith(name):
                common.fail("date: cannot set date: Operation not permitted", 1)
            if len(name) >= 2 and any(x.startswith(name) for x in ("date", "file", "reference")):
                given = True
        elif a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                if ch == "I":
                    break
                if ch == "s":
                    common.fail("date: cannot set date: Operation not permitted", 1)
                if ch in "dfr":
                    given = True
                    break
        i += 1
    real = DATE_REAL if os.path.exists(DATE_REAL) else "/bin/date"
    args = ["date"] + ([] if given else ["-d", "@%.9f" % common.now()]) + list(argv)
    sys.stdout.flush()
    os.execv(real, args)


def main(tool, argv):
    if tool == "date":
        return date(argv)
    if tool == "hostname":
        return hostname(argv)
    if tool == "nproc":
        return nproc(argv)
    return reboot(tool, argv)
