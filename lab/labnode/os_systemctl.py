"""systemctl: enable/disable/start/stop/restart/is-active/is-enabled/status/daemon-reload/show/mask.

Lab services (labnode.SERVICES) run under a Restart=always supervisor (labnode.supervise); a service can
start only when its package is installed and its unit file exists, like the real thing."""
import contextlib
import os
import sys
import time

from labnode import SERVICE_PACKAGES, SERVICES, common

UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system",
             "/usr/lib/systemd/system"]
# systemd RestartSec of the real units, divided by 10 in the lab
RESTART_SEC = {"kubelet": 1.0, "containerd": 0.5}


def unit_name(u):
    return u if "." in u else u + ".service"


def base(u):
    return u[:-len(".service")] if u.endswith(".service") else u


def unit_file(name):
    for d in UNIT_DIRS:
        p = os.path.join(d, unit_name(name))
        if os.path.exists(p):
            return p
    return None


def unit_exists(name):
    if unit_file(name) is None:
        return False
    pkg = SERVICE_PACKAGES.get(name)
    return pkg is None or common.package_version(pkg) is not None


def _masked(name):
    p = os.path.join("/etc/systemd/system", unit_name(name))
    return os.path.islink(p) and os.readlink(p) == "/dev/null"


def start(name, quiet=False):
    """Start a unit. Returns 0 or an exit code after printing systemctl's message."""
    if not unit_exists(name):
        if not quiet:
            sys.stderr.write("Failed to start %s: Unit %s not found.\n" % (unit_name(name), unit_name(name)))
        return 5
    if _masked(name):
        if not quiet:
            sys.stderr.write("Failed to start %s: Unit %s is masked.\n" % (unit_name(name), unit_name(name)))
        return 1
    with common.state(common.SERVICES_JSON, {"enabled": [], "started": []}) as svc:
        if name not in svc["started"]:
            svc["started"].append(name)
    if name in SERVICES and not common.daemon_running(name):
        common.delay("service-start")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(common.RUN_DIR, name + ".main.pid"))  # a killed supervisor's leftover
        common.start_daemon(name, [sys.executable, "-m", "labnode.supervise", name,
                                   str(RESTART_SEC.get(name, 1.0)), "--"] + SERVICES[name])
        # like Type=notify: wait until the main process is up (it renames itself to the service's name) or
        # has failed (a bad config: it started and died, the unit crash-loops). How long its supervisor takes to
        # get there depends on the machine's load, so no shorter limit than the start timeout.
        deadline = time.time() + 3.0
        main_pid_file = os.path.join(common.RUN_DIR, name + ".main.pid")
        while time.time() < deadline:
            pid = common.service_main_pid(name)
            if pid is not None:
                try:
                    with open("/proc/%d/comm" % pid) as f:
                        if f.read().strip() == name:
                            break
                except OSError:
                    pass
            elif os.path.exists(main_pid_file) or not common.daemon_running(name):
                break  # the main process started and died already (crash loop), or its supervisor is gone
            time.sleep(0.02)
    return 0


def stop(name):
    with common.state(common.SERVICES_JSON, {"enabled": [], "started": []}) as svc:
        if name in svc["started"]:
            svc["started"].remove(name)
    common.stop_daemon(name)
    try:
        os.unlink(os.path.join(common.RUN_DIR, name + ".main.pid"))
    except FileNotFoundError:
        pass
    return 0


def state_of(name):
    if name in SERVICES:
        return common.service_state(name)
    return "active" if name in common.services_state().get("started", []) else "inactive"


def enabled_of(name):
    if _masked(name):
        return "masked"
    if unit_file(name) is None or not unit_exists(name):
        return None
    return "enabled" if common.service_enabled(name) else "disabled"


def need_root(verb, units):
    if common.is_root():
        return
    what = unit_name(units[0]) if units else ""
    if verb in ("enable", "disable", "mask", "unmask", "daemon-reload"):
        common.fail("Failed to %s unit: Access denied" % verb if verb != "daemon-reload"
                    else "Failed to reload daemon: Access denied", 1)
    common.fail("Failed to %s %s: Access denied\nSee system logs and 'systemctl status %s' for details."
                % (verb, what, what), 1)


def status(names):
    rc = 0
    for n in names:
        st = state_of(n)
        en = enabled_of(n)
        if en is None and st == "inactive":
            sys.stderr.write("Unit %s could not be found.\n" % unit_name(n))
            rc = 4
            continue
        pid = common.service_main_pid(n) if n in SERVICES else None
        sub = {"active": "running", "activating": "auto-restart", "inactive": "dead"}[st]
        common.out("● %s - %s\n     Loaded: loaded (%s; %s; vendor preset: enabled)\n     Active: %s (%s)\n"
                   % (unit_name(n), n, unit_file(n) or "/dev/null", en or "disabled", st, sub))
        if pid:
            common.out("   Main PID: %d (%s)\n" % (pid, n))
        if st != "active":
            rc = 3
    return rc


def journalctl(argv):
    """journalctl -u UNIT [-n N] [--no-pager] [-b] [-f is not supported]: the lab service's log."""
    units, lines = [], None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-u", "--unit") and i + 1 < len(argv):
            units.append(base(argv[i + 1]))
            i += 1
        elif a.startswith("--unit="):
            units.append(base(a.split("=", 1)[1]))
        elif a.startswith("-u") and len(a) > 2:
            units.append(base(a[2:]))
        elif a in ("-n", "--lines") and i + 1 < len(argv):
            lines = int(argv[i + 1])
            i += 1
        elif a.startswith("--lines="):
            lines = int(a.split("=", 1)[1])
        elif a in ("-f", "--follow"):
            common.fail("journalctl: --follow is not supported in this lab", 1)
        i += 1
    if not units:
        common.out("-- No entries --\n")
        return 0
    out = []
    for u in units:
        try:
            with open(os.path.join(common.LOG_DIR, u + ".log"), errors="replace") as f:
                out += ["%s %s[%s]: %s" % (time.strftime("%b %d %H:%M:%S"), u, common.service_main_pid(u) or "-",
                                           line.rstrip("\n")) for line in f]
        except FileNotFoundError:
            pass
    if lines is not None:
        out = out[-lines:] if lines > 0 else []
    common.out("\n".join(out) + "\n" if out else "-- No entries --\n")
    return 0


def main(tool, argv):
    if tool == "journalctl":
        return journalctl(argv)
    flags, args = [], []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("-p", "--property", "-t", "--type", "--state", "-n", "--lines", "-o", "--output", "-H", "--host",
                 "-M", "--machine"):
            skip = True
            flags.append(a)
        elif a.startswith("-"):
            flags.append(a)
        else:
            args.append(a)
    quiet = "-q" in flags or "--quiet" in flags
    now = "--now" in flags
    if "--version" in flags:
        common.out({"ubuntu-22.04": "systemd 249 (249.11-0ubuntu3.12)\n", "ubuntu-24.04": "systemd 255 (255.4-1ubuntu8.4)\n",
                    "debian-12": "systemd 252 (252.31-1~deb12u1)\n"}.get(common.host_os(), "systemd 252 (252.23-2.amzn2023)\n"))
        return 0
    if not args:
        common.out("UNIT                        LOAD   ACTIVE SUB     DESCRIPTION\n")
        for n in sorted(set(common.services_state().get("started", []))):
            common.out("%-27s loaded %s %s %s\n" % (unit_name(n), state_of(n), "running", n))
        return 0
    verb, units = args[0], [base(u) for u in args[1:]]
    if verb == "daemon-reload":
        need_root(verb, units)
        with common.state(common.SERVICES_JSON, {"enabled": [], "started": []}) as svc:
            svc["reloadedAt"] = common.now()
        return 0
    if verb in ("is-active", "is-failed"):
        rc = 3
        for n in units:
            st = state_of(n)
            if not quiet:
                common.out(st + "\n")
            if st == "active":
                rc = 0 if verb == "is-active" else 1
        return rc if units else 1
    if verb == "is-enabled":
        rc = 1
        for n in units:
            en = enabled_of(n)
            if en is None:
                if not quiet:
                    sys.stderr.write("Failed to get unit file state for %s: No such file or directory\n"
                                     % unit_name(n))
                continue
            if not quiet:
                common.out(en + "\n")
            if en == "enabled":
                rc = 0
        return rc
    if verb == "status":
        return status(units)
    if verb == "show":
        for n in units:
            st = state_of(n)
            props = {"ActiveState": st, "SubState": {"active": "running", "activating": "auto-restart",
                                                       "inactive": "dead"}[st],
                     "UnitFileState": enabled_of(n) or "", "LoadState": "loaded" if unit_exists(n) else "not-found",
                     "MainPID": str(common.service_main_pid(n) or 0) if n in SERVICES else "0",
                     "Id": unit_name(n)}
            want = None
            for i, a in enumerate(argv):
                if a in ("-p", "--property") and i + 1 < len(argv):
                    want = (want or []) + argv[i + 1].split(",")
                elif a.startswith("--property="):
                    want = (want or []) + a.split("=", 1)[1].split(",")
            value_only = "--value" in flags
            for k in (want or sorted(props)):
                if k in props:
                    common.out((props[k] if value_only else "%s=%s" % (k, props[k])) + "\n")
        return 0
    if not units:
        common.fail("Too few arguments.", 1)
    if verb in ("start", "stop", "restart", "reload", "try-restart", "reload-or-restart", "enable", "disable",
                "mask", "unmask", "reset-failed", "kill"):
        need_root(verb, units)
    rc = 0
    for n in units:
        if verb in ("start",):
            rc = start(n) or rc
        elif verb == "stop":
            if not unit_exists(n) and state_of(n) == "inactive":
                sys.stderr.write("Failed to stop %s: Unit %s not loaded.\n" % (unit_name(n), unit_name(n)))
                rc = 5
                continue
            stop(n)
        elif verb in ("restart", "reload-or-restart", "reload"):
            if not unit_exists(n):
                sys.stderr.write("Failed to %s %s: Unit %s not found.\n" % (verb, unit_name(n), unit_name(n)))
                rc = 5
                continue
            stop(n)
            rc = start(n) or rc
        elif verb == "try-restart":
            if state_of(n) != "inactive":
                stop(n)
                rc = start(n) or rc
        elif verb in ("enable", "disable"):
            if not unit_exists(n):
                sys.stderr.write("Failed to %s unit: Unit file %s does not exist.\n" % (verb, unit_name(n)))
                rc = 1
                continue
            with common.state(common.SERVICES_JSON, {"enabled": [], "started": []}) as svc:
                if verb == "enable" and n not in svc["enabled"]:
                    svc["enabled"].append(n)
                    sys.stderr.write("Created symlink /etc/systemd/system/multi-user.target.wants/%s → %s.\n"
                                     % (unit_name(n), unit_file(n)))
                if verb == "disable" and n in svc["enabled"]:
                    svc["enabled"].remove(n)
                    sys.stderr.write("Removed \"/etc/systemd/system/multi-user.target.wants/%s\".\n" % unit_name(n))
            if now:
                rc = (start(n) if verb == "enable" else stop(n)) or rc
        elif verb == "mask":
            p = os.path.join("/etc/systemd/system", unit_name(n))
            if not os.path.lexists(p):
                os.makedirs("/etc/systemd/system", exist_ok=True)
                os.symlink("/dev/null", p)
        elif verb == "unmask":
            p = os.path.join("/etc/systemd/system", unit_name(n))
            if os.path.islink(p) and os.readlink(p) == "/dev/null":
                os.unlink(p)
        elif verb in ("reset-failed", "kill"):
            pass
        else:
            common.fail("Unknown command verb %s." % verb, 1)
    return rc
