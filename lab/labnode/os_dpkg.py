"""dpkg-query (-W [-f FORMAT], -s, -l) and dpkg (-l, -s, --print-architecture, --configure -a, --audit) over
the lab's package database plus the base image's real dpkg status (read only).

Installs go through dpkg's journal as on a real host: apt-get writes what it unpacks to /var/lib/dpkg/updates
before the long part of an install and clears it once every package is set up. A run killed in between leaves
the host "interrupted": apt-get refuses to install or remove until `dpkg --configure -a` sets up what was
unpacked. The frontend lock (/var/lib/dpkg/lock-frontend) is a POSIX record lock, so a busy lock names its
holder's pid as apt does."""
import contextlib
import errno
import fcntl
import fnmatch
import os
import re
import struct
import sys

from labnode import common

_base = None
_base_key = None
DPKG_STATUS = "/var/lib/dpkg/status"
# what a fresh EC2 image does not have, even when the machine under the lab does (its kubectl from the Google
# Cloud SDK repository, say): the lab's package manager installs these (their binaries are hidden likewise)
NOT_IN_IMAGE = {"kubeadm", "kubelet", "kubectl", "cri-tools", "kubernetes-cni", "containerd", "containerd.io",
                "runc", "docker.io", "docker-ce", "docker-ce-cli", "helm"}


def _status_key():
    try:
        st = os.stat(DPKG_STATUS)
        return (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def base_packages():
    """{name: fields} of the installed packages of the base image (/var/lib/dpkg/status). Parsed once per
    version of the file (the host's fork server parses it before it forks its first tool)."""
    global _base, _base_key
    key = _status_key()
    if _base is None or key != _base_key:
        _base, _base_key = {}, key
        try:
            text = open(DPKG_STATUS, encoding="utf-8", errors="replace").read()
        except OSError:
            text = ""
        for block in text.split("\n\n"):
            f = {}
            for line in block.splitlines():
                m = re.match(r"^([A-Za-z-]+):\s?(.*)$", line)
                if m:
                    f[m.group(1)] = m.group(2)
            if f.get("Package") and f.get("Status", "").endswith(" installed") and \
                    f["Package"] not in NOT_IN_IMAGE:
                _base[f["Package"]] = f
    return _base


FRONTEND_LOCK = "/var/lib/dpkg/lock-frontend"
UPDATES = "/var/lib/dpkg/updates"
JOURNAL = os.path.join(UPDATES, "0000")


def _process_name(pid):
    """What apt calls a lock holder: its program name (a lab tool's own name, not python3)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "unknown"
    if "labnode" in args and args.index("labnode") + 1 < len(args):
        return os.path.basename(args[args.index("labnode") + 1])
    return os.path.basename(args[0]) if args else "unknown"


@contextlib.contextmanager
def frontend_lock():
    """Yields `holder()`: None once this process holds the frontend lock (it is taken on the first call that
    finds it free), else (pid, program) of the process holding it."""
    os.makedirs(os.path.dirname(FRONTEND_LOCK), exist_ok=True)
    fd = os.open(FRONTEND_LOCK, os.O_RDWR | os.O_CREAT, 0o640)
    mine = [False]

    def holder():
        for _ in range(3):
            if mine[0]:
                return None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                mine[0] = True
                return None
            except OSError as e:
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
            fmt = "hhqqi4x"
            res = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(fmt, fcntl.F_WRLCK, 0, 0, 0, 0))
            kind, _, _, _, pid = struct.unpack(fmt, res)
            if kind != fcntl.F_UNLCK:
                return pid, _process_name(pid)
        return 0, "unknown"
    try:
        yield holder
    finally:
        os.close(fd)


def interrupted():
    try:
        return any(n.isdigit() for n in os.listdir(UPDATES))
    except OSError:
        return False


def begin(packages):
    """Journal `packages` [(name, version)] as unpacked-not-configured (apt-get calls this before unpacking)."""
    os.makedirs(UPDATES, exist_ok=True)
    with open(JOURNAL + ".new", "w") as f:
        for n, v in packages:
            f.write("Package: %s\nStatus: install ok unpacked\nVersion: %s\n\n" % (n, v))
    os.rename(JOURNAL + ".new", JOURNAL)


def pending():
    """[(name, version)] unpacked but not configured, from the journal."""
    out = []
    for name in sorted(n for n in os.listdir(UPDATES) if n.isdigit()) if os.path.isdir(UPDATES) else []:
        try:
            text = open(os.path.join(UPDATES, name)).read()
        except OSError:
            continue
        for block in text.split("\n\n"):
            f = dict(re.findall(r"^([A-Za-z-]+): (.*)$", block, re.M))
            if f.get("Package"):
                out.append((f["Package"], f.get("Version", "")))
    return out


def configure_pending(upgraded=()):
    """Sets up every journalled package (files, database, then Debian's start of a package's service) and
    clears the journal."""
    from labnode import SERVICE_PACKAGES, os_pkgdb, os_systemctl
    todo = pending()
    for n, v in todo:
        common.out("Setting up %s (%s) ...\n" % (n, v))
        os_pkgdb.install_files(n, v)
        with common.state(common.PACKAGES_JSON, {"installed": {}, "held": []}) as db:
            db.setdefault("installed", {})[n] = v
    for name in os.listdir(UPDATES) if os.path.isdir(UPDATES) else []:
        if name.isdigit():
            os.unlink(os.path.join(UPDATES, name))
    # Debian policy: a package's service is enabled and started when it is installed
    for n, _ in todo:
        for svc, pkg in SERVICE_PACKAGES.items():
            if pkg == n:
                with common.state(common.SERVICES_JSON, {"enabled": [], "started": []}) as st:
                    if svc not in st["enabled"]:
                        st["enabled"].append(svc)
                if n in upgraded:
                    os_systemctl.stop(svc)
                os_systemctl.start(svc, quiet=True)


def configure(argv):
    """`dpkg --configure -a` (or --pending): set up what an interrupted run unpacked."""
    if not any(a in ("-a", "--pending") for a in argv):
        common.fail("dpkg: error: --configure needs at least one package name argument\n\nType dpkg --help for "
                    "help about installing and deinstalling packages [*];\nUse 'apt' or 'aptitude' for user-friendly "
                    "package management;", 2)
    if not common.is_root():
        common.fail("dpkg: error: requested operation requires superuser privilege", 2)
    with frontend_lock() as holder:
        busy = holder()
        if busy is not None:
            common.fail("dpkg: error: dpkg frontend lock was locked by another process with pid %d\nNote: removing "
                        "the lock file is always wrong, can damage the locked area\nand the entire system. See "
                        "<https://wiki.debian.org/Teams/Dpkg/FAQ#db-lock>." % busy[0], 2)
        installed = common.packages_state().get("installed", {})
        configure_pending(upgraded=[n for n, _ in pending() if n in installed])
    return 0


def forkserver_preload():
    base_packages()


def records(names=None):
    """{name: record} of every known package, or only of `names` (plain names: no need to build ~600)."""
    db = common.packages_state()
    held = set(db.get("held", []))
    out = {}
    base = base_packages()
    for n in (base if names is None else [x for x in names if x in base]):
        f = base[n]
        out[n] = {"Package": n, "Version": f.get("Version", ""), "Architecture": f.get("Architecture", "amd64"),
                  "Status": ("hold" if n in held else "install") + " ok installed", "held": n in held}
    for n, v in db.get("installed", {}).items():
        out[n] = {"Package": n, "Version": v, "Architecture": "amd64",
                  "Status": ("hold" if n in held else "install") + " ok installed", "held": n in held}
    for n in held:
        if n not in out:
            out[n] = {"Package": n, "Version": "", "Architecture": "", "Status": "hold ok not-installed",
                      "held": True}
    return out


def matching(recs, pattern):
    """Sorted names matching a shell pattern (a plain name is looked up, not matched against every package)."""
    if not any(c in pattern for c in "*?["):
        return [pattern] if pattern in recs else []
    return sorted(n for n in recs if fnmatch.fnmatch(n, pattern))


def fmt(rec, f):
    def sub(m):
        key = m.group(1)
        width = m.group(2)
        if key == "db:Status-Abbrev":
            val = ("h" if rec["held"] else "i") + ("i " if rec["Status"].endswith(" installed") else "n ")
        elif key == "db:Status-Status":
            val = rec["Status"].split()[-1]
        elif key == "binary:Package":
            val = rec["Package"]
        else:
            val = rec.get(key, "")
        return val
    text = f.replace("\\n", "\n").replace("\\t", "\t")
    return re.sub(r"\$\{([A-Za-z:-]+)(?:;(-?\d+))?\}", sub, text)


def query(argv):
    mode, f, names = None, "${Package}\t${Version}\n", []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-W", "--show"):
            mode = "W"
        elif a in ("-s", "--status"):
            mode = "s"
        elif a in ("-l", "--list"):
            mode = "l"
        elif a in ("-f", "--showformat"):
            f = argv[i + 1]
            i += 1
        elif a.startswith("--showformat=") or a.startswith("-f="):
            f = a.split("=", 1)[1]
        elif a.startswith("-f") and len(a) > 2:
            f = a[2:]
        elif a.startswith("-"):
            common.fail("dpkg-query: error: unknown option %s\n\nType dpkg-query --help for help about querying "
                        "packages." % a, 2)
        else:
            names.append(a)
        i += 1
    if mode is None:
        common.fail("dpkg-query: error: need an action option\n\nType dpkg-query --help for help about querying "
                    "packages.", 2)
    literal = bool(names) and not any(c in n for n in names for c in "*?[")
    recs = records(names if literal and mode != "l" else None)
    rc = 0
    if mode == "W":
        pats = names or ["*"]
        for p in pats:
            hits = matching(recs, p)
            if not hits:
                sys.stderr.write("dpkg-query: no packages found matching %s\n" % p)
                rc = 1
            for n in hits:
                common.out(fmt(recs[n], f))
        return rc
    if mode == "s":
        if not names:
            common.fail("dpkg-query: error: --status needs at least one package name argument", 2)
        for n in names:
            r = recs.get(n)
            if not r or not r["Status"].endswith(" installed"):
                sys.stderr.write("dpkg-query: package '%s' is not installed and no information is available\n"
                                 "Use dpkg --info (= dpkg-deb --info) to examine archive files.\n" % n)
                rc = 1
                continue
            common.out("Package: %s\nStatus: %s\nArchitecture: %s\nVersion: %s\n\n"
                       % (n, r["Status"], r["Architecture"], r["Version"]))
        return rc
    common.out("Desired=Unknown/Install/Remove/Purge/Hold\n| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst"
               "/trig-aWait/Trig-pend\n|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)\n"
               "||/ Name           Version      Architecture Description\n"
               "+++-==============-============-============-=================================\n")
    pats = names or ["*"]
    for p in pats:
        hits = matching(recs, p)
        if not hits:
            sys.stderr.write("dpkg-query: no packages found matching %s\n" % p)
            rc = 1
        for n in hits:
            r = recs[n]
            common.out("%s  %-14s %-12s %-12s %s\n" % ("hi" if r["held"] else "ii", n, r["Version"],
                                                      r["Architecture"], n))
    return rc


def main(tool, argv):
    if tool == "dpkg-query":
        return query(argv)
    if argv[:1] == ["--print-architecture"]:
        common.out("amd64\n")
        return 0
    if argv[:1] in (["-l"], ["--list"], ["-s"], ["--status"]):
        return query(argv)
    if argv[:1] == ["--configure"]:
        return configure(argv[1:])
    if argv[:1] in (["--audit"], ["-C"]):
        todo = pending()
        if todo:
            common.out("The following packages have been unpacked but not yet configured.\nThey must be configured "
                       "using dpkg --configure or the configure\nmenu option in dselect for them to work:\n"
                       + "".join(" %s\n" % n for n, _ in todo))
            return 1
        return 0
    if argv[:1] == ["--version"]:
        common.out("Debian 'dpkg' package management program version 1.21.1 (amd64).\n")
        return 0
    common.fail("dpkg: error: this lab's dpkg only supports -l, -s, --print-architecture, --configure -a and --audit",
                2)
