"""dnf / yum / rpm (query) for Amazon Linux hosts.

Kubernetes packages come from a /etc/yum.repos.d/*.repo whose baseurl is
https://pkgs.k8s.io/core:/stable:/v1.M/rpm/ and whose gpgkey is that repository's repomd.xml.key; the
official repo file excludes the Kubernetes packages, so installing them needs --disableexcludes=kubernetes.
No `makecache` step is needed (dnf refreshes metadata itself). Services are not started on install."""
import configparser
import os
import fnmatch
import glob
import re
import sys

from labnode import assets, common, os_pkgdb

K8S_BASEURL = re.compile(r"^https?://pkgs\.k8s\.io/core:/stable:/v(\d+\.\d+)/rpm/?$")
K8S_GPGKEY = re.compile(r"^https?://pkgs\.k8s\.io/core:/stable:/v(\d+\.\d+)/rpm/repodata/repomd\.xml\.key$")


def repos():
    """[{id, baseurl, gpgkey, enabled, gpgcheck, exclude}] from /etc/yum.repos.d/*.repo."""
    out = []
    for path in sorted(glob.glob("/etc/yum.repos.d/*.repo")):
        cp = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            cp.read(path)
        except configparser.Error as e:
            common.fail("Error: Parsing file '%s' failed: %s" % (path, str(e).splitlines()[0]), 1)
        for sec in cp.sections():
            s = cp[sec]
            out.append({"id": sec, "name": s.get("name", sec), "baseurl": s.get("baseurl", "").strip(),
                        "gpgkey": s.get("gpgkey", "").strip(), "enabled": s.get("enabled", "1").strip() in ("1", "true", "yes"),
                        "gpgcheck": s.get("gpgcheck", "1").strip() in ("1", "true", "yes"),
                        "exclude": s.get("exclude", "").replace(",", " ").split(), "file": path})
    return out


def command_line_repos(argv):
    """The repositories `--repofrompath=ID,URL` adds for one command, with their `--setopt=ID.KEY=VALUE`
    (gpgcheck as dnf.conf says: on)."""
    out = []
    for a in argv:
        if a.startswith("--repofrompath="):
            rid, _, url = a.split("=", 1)[1].partition(",")
            out.append({"id": rid, "name": rid, "baseurl": url.strip(), "gpgkey": "", "enabled": True, "gpgcheck": True,
                        "exclude": [], "file": None})
    for a in argv:
        if a.startswith("--setopt=") and "." in a.split("=", 2)[1]:
            key, _, value = a[len("--setopt="):].partition("=")
            rid, _, opt = key.rpartition(".")
            for r in out:
                if r["id"] == rid and opt in ("gpgkey", "baseurl"):
                    r[opt] = value.strip()
                elif r["id"] == rid and opt == "gpgcheck":
                    r["gpgcheck"] = value.strip() in ("1", "true", "yes")
    return out


def catalogue(disable_excludes, enable, disable, extra=()):
    """{name: {version: repo-id}} and the list of metadata errors."""
    cats, errors = [], []
    excluded = set()
    for r in repos() + list(extra):
        # --disablerepo='*' --enablerepo=ID (what --repo=ID means): ID only
        on = r["id"] in enable or (r["enabled"] and not any(fnmatch.fnmatchcase(r["id"], p) for p in disable))
        if not on:
            continue
        if r["id"].startswith("amazonlinux") or "amazonlinux" in r["baseurl"] or "al2023" in r.get("baseurl", "") \
                or r["id"] in ("amazonlinux", "kernel-livepatch"):
            cats.append((r["id"], os_pkgdb.os_catalogue()))
            continue
        m = K8S_BASEURL.match(r["baseurl"])
        if not m:
            host = re.sub(r"^[a-z]+://([^/]+).*$", r"\1", r["baseurl"] or "(no baseurl)")
            errors.append("Errors during downloading metadata for repository '%s':\n  - Curl error (6): Couldn't "
                          "resolve host name for %s [Could not resolve host: %s]\nError: Failed to download metadata "
                          "for repo '%s': Cannot download repomd.xml: Cannot download repodata/repomd.xml: All "
                          "mirrors were tried" % (r["id"], r["baseurl"], host, r["id"]))
            continue
        minor = m.group(1)
        if minor not in assets.K8S_PATCHES:
            errors.append("Errors during downloading metadata for repository '%s':\n  - Status code: 403 for %s"
                          "repodata/repomd.xml (IP: 34.107.204.206)\nError: Failed to download metadata for repo "
                          "'%s': Cannot download repomd.xml: Cannot download repodata/repomd.xml: All mirrors were "
                          "tried" % (r["id"], r["baseurl"].rstrip("/") + "/", r["id"]))
            continue
        if r["gpgcheck"]:
            km = K8S_GPGKEY.match(r["gpgkey"])
            if not km or km.group(1) not in assets.K8S_PATCHES:
                errors.append("Curl error (22): The requested URL returned error: 404 for %s\nError: Failed to "
                              "retrieve GPG key for repo '%s'" % (r["gpgkey"] or "(no gpgkey)", r["id"]))
                continue
        cat = os_pkgdb.k8s_catalogue(minor)
        if not disable_excludes.intersection({"all", r["id"]}):
            for pat in r["exclude"]:
                for n in list(cat):
                    if fnmatch.fnmatch(n, pat):
                        excluded.add(n)
                        del cat[n]
        cats.append((r["id"], cat))
    return os_pkgdb.merge(cats), errors, excluded


def list_packages(avail, installed, patterns, duplicates):
    """`dnf list [--showduplicates] [PATTERN...]` as dnf prints it: the installed packages (their repository with an
    `@`), then the available ones (the newest of each, or every version with --showduplicates); exit 1 when
    nothing matches."""
    def wanted(n):
        return not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns)

    def evr(n, v):
        # the OS repository's versions carry their release already (1.7.23-1.amzn2023.0.1)
        return v + "-" + os_pkgdb.RPM_RELEASE if n in os_pkgdb.K8S_PKGS else v

    rows_installed = [(n + ".x86_64", evr(n, v), "@kubernetes" if n in os_pkgdb.K8S_PKGS else "@amazonlinux")
                      for n, v in sorted(installed.items()) if wanted(n)]
    rows_available = []
    for n in sorted(avail):
        if not wanted(n):
            continue
        versions = sorted(avail[n], key=os_pkgdb.version_key)
        if not duplicates:
            versions = [v for v in versions[-1:] if installed.get(n) != v]
        rows_available += [(n + ".x86_64", evr(n, v), avail[n][v]) for v in versions]
    if not rows_installed and not rows_available:
        sys.stderr.write("Error: No matching Packages to list\n")
        return 1
    for title, rows in (("Installed Packages", rows_installed), ("Available Packages", rows_available)):
        if rows:
            common.out(title + "\n" + "".join("%-39s %-30s %s\n" % r for r in rows))
    return 0


def parse_spec(spec, avail):
    """kubelet / kubelet-1.34.1 / kubelet-1.34.1-150500.1.1 / kubelet-1.34.1-150500.1.1.x86_64 -> (name, ver)."""
    if spec in avail:
        return spec, None
    s = re.sub(r"\.(x86_64|noarch|aarch64)$", "", spec)
    s = re.sub(r"-\*$|\*$", "", s)  # kubeadm-'1.34.1-*' as in the upgrade guide
    m = re.match(r"^(.+?)-(\d[\w.~^+]*)(?:-(\d[\w.~^+]*))?$", s)
    if m and m.group(1) in avail:
        return m.group(1), m.group(2)
    return spec, None


def main(tool, argv):
    if tool == "rpm":
        return rpm(argv)
    yes = False
    disable_excludes, enable, disable = set(), set(), set()
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-y", "--assumeyes"):
            yes = True
        elif a.startswith("--disableexcludes="):
            disable_excludes.update(a.split("=", 1)[1].split(","))
        elif a == "--disableexcludes" and i + 1 < len(argv):
            disable_excludes.update(argv[i + 1].split(","))
            i += 1
        elif a.startswith("--enablerepo="):
            enable.update(a.split("=", 1)[1].split(","))
        elif a.startswith("--disablerepo="):
            disable.update(a.split("=", 1)[1].split(","))
        elif a.startswith("--repo=") or a.startswith("--repoid="):
            # only these: --disablerepo='*' --enablerepo=ID
            disable.add("*")
            enable.update(a.split("=", 1)[1].split(","))
        elif a in ("-q", "--quiet", "--showduplicates", "--setopt", "-C", "--cacheonly", "--nogpgcheck",
                   "--refresh", "--best", "--allowerasing"):
            if a == "--setopt":
                i += 1
        elif a.startswith("-"):
            pass
        else:
            args.append(a)
        i += 1
    if not args:
        common.fail("usage: dnf [options] COMMAND\n\nNo command given.", 1)
    verb, names = args[0], args[1:]
    if verb in ("install", "remove", "erase", "upgrade", "update", "makecache", "downgrade", "reinstall") \
            and not common.is_root():
        common.fail("Error: This command has to be run with superuser privileges (under the root user on most "
                    "systems).", 1)
    avail, errors, excluded = catalogue(disable_excludes, enable, disable, command_line_repos(argv))
    if errors:
        common.fail("\n".join(errors), 1)
    db = common.packages_state()
    installed = db.get("installed", {})
    if verb in ("makecache", "install", "upgrade", "update", "downgrade", "reinstall"):
        read_new_metadata()
    if verb == "makecache":
        common.out("Metadata cache created.\n")
        return 0
    if verb == "list":
        which = names[0] if names and names[0] in ("installed", "available", "all") else "all"
        patterns = names[1:] if names and names[0] in ("installed", "available", "all") else names
        return list_packages(avail if which != "installed" else {}, installed if which != "available" else {},
                             patterns, duplicates="--showduplicates" in argv)
    if verb in ("install", "upgrade", "update", "downgrade", "reinstall"):
        want, missing = {}, []
        for spec in names:
            n, v = parse_spec(spec, avail)
            if n not in avail:
                missing.append(spec)
                continue
            if v:
                if v not in avail[n]:
                    missing.append(spec)
                    continue
                want[n] = v
            else:
                want[n] = max(avail[n], key=os_pkgdb.version_key)
        if missing:
            common.out("Last metadata expiration check: 0:00:01 ago.\n")
            for m in missing:
                sys.stderr.write("No match for argument: %s\n" % m)
            sys.stderr.write("Error: Unable to find a match: %s\n" % " ".join(missing))
            return 1
        for n in list(want):
            for d in os_pkgdb.DEPENDS.get(n, []):
                if d not in want and d not in installed:
                    if d not in avail:
                        common.fail("Error: \n Problem: cannot install the best candidate for the job\n  - nothing "
                                    "provides %s needed by %s-%s" % (d, n, want[n]), 1)
                    want[d] = max(avail[d], key=os_pkgdb.version_key)
        changes = {n: v for n, v in want.items() if installed.get(n) != v}
        if not changes:
            for n in want:
                common.out("Package %s-%s is already installed.\n" % (n, want[n]))
            common.out("Dependencies resolved.\nNothing to do.\nComplete!\n")
            return 0
        common.out("Dependencies resolved.\n" + "".join(" %-20s x86_64 %-28s %s\n" % (n, v, avail[n][v])
                                                       for n, v in sorted(changes.items())))
        if not yes:
            common.out("Is this ok [y/N]: Operation aborted.\n")
            return 1
        common.charge_packages(len(changes))
        with common.state(common.PACKAGES_JSON, {"installed": {}, "held": []}) as db2:
            for n, v in sorted(changes.items()):
                common.out("  Installing       : %s-%s.x86_64\n" % (n, v))
                os_pkgdb.install_files(n, v)
                db2.setdefault("installed", {})[n] = v
        common.out("Installed:\n  %s\n\nComplete!\n" % "  ".join("%s-%s.x86_64" % kv for kv in sorted(changes.items())))
        return 0
    if verb in ("remove", "erase"):
        targets = [n for n in names if n in installed]
        if not targets:
            common.out("No match for argument: %s\nNo packages marked for removal.\nDependencies resolved.\n"
                       "Nothing to do.\nComplete!\n" % " ".join(names))
            return 0
        if not yes:
            common.out("Is this ok [y/N]: Operation aborted.\n")
            return 1
        from labnode import SERVICE_PACKAGES, os_systemctl
        for n in targets:
            for svc, pkg in SERVICE_PACKAGES.items():
                if pkg == n:
                    os_systemctl.stop(svc)
        with common.state(common.PACKAGES_JSON, {"installed": {}, "held": []}) as db2:
            for n in targets:
                os_pkgdb.remove_files(n)
                db2["installed"].pop(n, None)
        common.out("Removed:\n  %s\n\nComplete!\n" % "  ".join(targets))
        return 0
    if verb == "repolist":
        common.out("repo id                         repo name\n")
        for r in repos():
            if r["enabled"]:
                common.out("%-31s %s\n" % (r["id"], r["name"]))
        return 0
    if verb in ("clean", "check-update"):
        return 0
    common.fail("No such command: %s. Please use /usr/bin/dnf --help" % verb, 1)


METADATA_JSON = os.path.join(common.HOST_STATE, "dnf-metadata.json")
OS_REPOS = ("amazonlinux.repo",)     # the image's own repository (labctl writes it), its metadata cached


def read_new_metadata():
    """dnf downloads the metadata of a repository it has no cache of (a repository file added or changed since
    it last read it): one index update per call that needs any (`apt-update`). The OS's own repositories come
    with the image's cache."""
    files = sorted(f for f in glob.glob("/etc/yum.repos.d/*.repo") if os.path.basename(f) not in OS_REPOS)
    stamps = {}
    for f in files:
        try:
            stamps[f] = os.stat(f).st_mtime
        except OSError:
            pass
    with common.state(METADATA_JSON, {}) as cached:
        if any(cached.get(f) != m for f, m in stamps.items()):
            common.delay("apt-update")
            cached.clear()
            cached.update(stamps)


def rpm(argv):
    if not argv or argv[0] not in ("-q", "-qa", "--query", "-qi"):
        common.fail("rpm: this lab's rpm only supports queries (-q, -qa)", 1)
    qf = None
    names = []
    i = 1
    all_ = argv[0] == "-qa"
    while i < len(argv):
        a = argv[i]
        if a in ("--qf", "--queryformat"):
            qf = argv[i + 1]
            i += 1
        elif a.startswith("--qf=") or a.startswith("--queryformat="):
            qf = a.split("=", 1)[1]
        elif a in ("-a", "--all"):
            all_ = True
        elif not a.startswith("-"):
            names.append(a)
        i += 1
    installed = common.packages_state().get("installed", {})
    base = {"bash": "5.2.15", "openssh-server": "8.7p1", "sudo": "1.9.15", "systemd": "252.23", "curl": "8.5.0",
            "gnupg2": "2.3.7", "iptables-nft": "1.8.8", "iproute": "5.10.0", "tar": "1.34", "python3": "3.9.16"}
    rows = dict(base)
    rows.update(installed)
    rc = 0
    for n in (sorted(rows) if all_ else names):
        v = rows.get(n)
        if v is None:
            common.out("package %s is not installed\n" % n)
            rc = 1
            continue
        rel = os_pkgdb.RPM_RELEASE if n in installed and n in os_pkgdb.K8S_PKGS else "1.amzn2023"
        if qf:
            common.out(qf.replace("%{NAME}", n).replace("%{VERSION}", v).replace("%{RELEASE}", rel)
                       .replace("%{ARCH}", "x86_64").replace("\\n", "\n"))
        else:
            common.out("%s-%s-%s.x86_64\n" % (n, v, rel))
    return rc
