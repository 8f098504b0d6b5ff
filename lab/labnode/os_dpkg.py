"""dpkg-query (-W [-f FORMAT], -s, -l) and dpkg (-l, -s, --print-architecture) over the lab's package
database plus the base image's real dpkg status (read only)."""
import fnmatch
import os
import re
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
    if argv[:1] == ["--version"]:
        common.out("Debian 'dpkg' package management program version 1.21.1 (amd64).\n")
        return 0
    common.fail("dpkg: error: this lab's dpkg only supports -l, -s and --print-architecture", 2)
