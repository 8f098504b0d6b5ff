"""apt-get / apt / apt-mark / apt-cache for Debian-family hosts.

A Kubernetes package is only installable after a pkgs.k8s.io repository for its minor has been configured
(sources.list.d entry signed-by a keyring holding the dearmored Release.key) and `apt-get update` ran."""
import contextlib
import fnmatch
import glob
import json
import os
import re
import sys
import time

from labnode import SERVICE_PACKAGES, assets, common, os_dpkg, os_pkgdb
K8S_URI = re.compile(r"^https?://pkgs\.k8s\.io/core:/stable:/v(\d+\.\d+)/deb/?$")


def header():
    common.out("Reading package lists...\nBuilding dependency tree...\nReading state information...\n")


def die(msg, code=100):
    sys.stdout.flush()
    common.fail(msg, code)


def not_root():
    die("E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n"
        "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?")


# ------------------------------------------------------------------ sources
def parse_sources(main_list="/etc/apt/sources.list", parts_dir="/etc/apt/sources.list.d"):
    """[{uri, suite, components, signed_by, file}] from sources.list(.d), one-line and deb822 formats."""
    entries = []
    files = [main_list] + sorted(glob.glob(os.path.join(parts_dir, "*.list")))
    for path in files:
        try:
            lines = open(path).read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for raw in lines:
            line = raw.split("#", 1)[0].strip()
            if not line.startswith("deb ") and not line.startswith("deb\t"):
                continue
            rest = line[3:].strip()
            opts = {}
            if rest.startswith("["):
                end = rest.find("]")
                if end < 0:
                    die("E: Malformed entry 1 in list file %s (Component)\nE: The list of sources could not be read."
                        % path)
                for o in rest[1:end].split():
                    if "=" in o:
                        k, v = o.split("=", 1)
                        opts[k] = v
                rest = rest[end + 1:].strip()
            parts = rest.split()
            if len(parts) < 2:
                die("E: Malformed entry 1 in list file %s (Suite)\nE: The list of sources could not be read." % path)
            entries.append({"uri": parts[0], "suite": parts[1], "components": parts[2:],
                            "signed_by": opts.get("signed-by"), "file": path})
    for path in sorted(glob.glob(os.path.join(parts_dir, "*.sources"))):
        try:
            text = open(path).read()
        except (OSError, UnicodeDecodeError):
            continue
        for block in re.split(r"\n\s*\n", text):
            fields = {}
            for raw in block.splitlines():
                if raw.startswith("#") or ":" not in raw:
                    continue
                k, v = raw.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    entries.append({"uri": uri, "suite": suite, "components": fields.get("components", "").split(),
                                    "signed_by": fields.get("signed-by"), "file": path})
    return entries


def key_ok(path):
    """A keyring apt accepts that holds the Kubernetes key: binary (.gpg) or armored (.asc)."""
    try:
        data = open(path, "rb").read()
    except OSError:
        return False
    want = assets.k8s_key_binary()
    if path.endswith(".asc"):
        return assets.dearmor(data) == want
    return data == want


def trusted_without_signed_by():
    for p in glob.glob("/etc/apt/trusted.gpg.d/*.gpg") + glob.glob("/etc/apt/trusted.gpg.d/*.asc"):
        if key_ok(p):
            return True
    return False


# ------------------------------------------------------------------ a private configuration
# `-o Dir::Etc::SourceList=F -o Dir::Etc::SourceParts=D -o Dir::State::Lists=L`: apt reads other sources and keeps
# their package lists in L, leaving the host's configuration and lists alone (a read-only look at a repository).
def apt_options(argv):
    """apt's `-o Key=Value` settings, keys lower-cased (apt's configuration keys are case-insensitive)."""
    opts = {}
    for i, a in enumerate(argv):
        opt = argv[i + 1] if a == "-o" and i + 1 < len(argv) else a[2:] if a.startswith("-o") and a != "-o" else None
        if opt and "=" in opt:
            k, v = opt.split("=", 1)
            opts[k.strip().lower()] = v
    return opts


def private_lists(argv):
    """The lists directory of `-o Dir::State::Lists=L`, or None (the host's own)."""
    d = apt_options(argv).get("dir::state::lists")
    return d.rstrip("/") if d and d.rstrip("/") != "/var/lib/apt/lists" else None


def private_update(argv):
    """`apt-get update` into a lists directory of its own: the sources of Dir::Etc::SourceList/SourceParts,
    checked like the host's, the result kept in that directory."""
    opts = apt_options(argv)
    lists_dir = private_lists(argv)
    if not os.path.isdir(os.path.join(lists_dir, "partial")):
        die("E: List directory %s/partial is missing. - Acquire (2: No such file or directory)" % lists_dir)
    if not os.access(lists_dir, os.W_OK):
        die("E: Could not open lock file %s/lock - open (13: Permission denied)\nE: Unable to lock directory %s/"
            % (lists_dir, lists_dir))
    common.delay("apt-update")
    entries = parse_sources(opts.get("dir::etc::sourcelist", "/etc/apt/sources.list"),
                            opts.get("dir::etc::sourceparts", "/etc/apt/sources.list.d"))
    lists, errors = {}, []
    for n, e in enumerate(entries, 1):
        m = K8S_URI.match(e["uri"].rstrip("/") + "/")
        uri = e["uri"]
        if not m or e["suite"] != "/" or m.group(1) not in assets.K8S_PATCHES:
            common.out("Err:%d %s %s InRelease\n  404  Not Found [IP: 34.107.204.206 443]\n" % (n, uri, e["suite"]))
            errors.append("E: The repository '%s %s Release' does not have a Release file." % (uri, e["suite"]))
            continue
        signed = e["signed_by"]
        if not (key_ok(signed) if signed else trusted_without_signed_by()):
            common.out("Err:%d %s  InRelease\n  The following signatures couldn't be verified because the public key "
                       "is not available: NO_PUBKEY %s\n" % (n, uri, assets.K8S_KEY_ID))
            errors.append("E: The repository '%s  InRelease' is not signed." % uri)
            continue
        common.out("Get:%d %s  InRelease [1189 B]\nGet:%d %s  Packages [4865 B]\n" % (n, uri, n, uri))
        lists["k8s-" + m.group(1)] = {"uri": uri}
    common.out("Reading package lists...\n")
    with open(os.path.join(lists_dir, "labnode-lists.json"), "w") as f:
        json.dump(lists, f)
    if errors:
        sys.stderr.write("\n".join(errors) + "\n")
        return 100
    return 0


def with_private_lists(argv, db):
    """The package database as apt sees it with `-o Dir::State::Lists=L`: L's lists instead of the host's."""
    d = private_lists(argv)
    if not d:
        return db
    try:
        with open(os.path.join(d, "labnode-lists.json")) as f:
            lists = json.load(f)
    except (OSError, ValueError):
        lists = {}
    return dict(db, lists=lists)


def update(argv):
    if private_lists(argv):
        return private_update(argv)
    if not common.is_root():
        die("Reading package lists...\nE: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)\n"
            "E: Unable to lock directory /var/lib/apt/lists/")
    common.delay("apt-update")
    lists = {"os": True}
    errors, warnings, n = [], [], 0
    for e in parse_sources():
        m = K8S_URI.match(e["uri"].rstrip("/") + "/")
        n += 1
        if not m:
            host = re.sub(r"^[a-z]+://([^/]+).*$", r"\1", e["uri"])
            if host.startswith("pkgs.k8s.io") or host in ("apt.kubernetes.io", "packages.cloud.google.com"):
                common.out("Err:%d %s %s InRelease\n  404  Not Found [IP: 34.107.204.206 443]\n" % (n, e["uri"], e["suite"]))
                errors.append("E: The repository '%s %s Release' does not have a Release file." % (e["uri"], e["suite"]))
                continue
            common.out("Hit:%d %s %s InRelease\n" % (n, e["uri"], e["suite"]))
            continue
        minor = m.group(1)
        uri = e["uri"]
        if e["suite"] != "/":
            common.out("Ign:%d %s %s InRelease\nErr:%d %s %s Release\n  404  Not Found\n"
                       % (n, uri, e["suite"], n, uri, e["suite"]))
            errors.append("E: The repository '%s %s Release' does not have a Release file." % (uri, e["suite"]))
            continue
        if minor not in assets.K8S_PATCHES:
            common.out("Err:%d %s  InRelease\n  403  Forbidden [IP: 34.107.204.206 443]\n" % (n, uri))
            errors.append("E: Failed to fetch %sInRelease  403  Forbidden [IP: 34.107.204.206 443]\n"
                          "E: The repository '%s  InRelease' is not signed." % (uri if uri.endswith("/") else uri + "/", uri))
            continue
        signed = e["signed_by"]
        ok = key_ok(signed) if signed else trusted_without_signed_by()
        if not ok:
            common.out("Get:%d %s  InRelease [1186 B]\nErr:%d %s  InRelease\n  The following signatures couldn't be "
                       "verified because the public key is not available: NO_PUBKEY %s\n"
                       % (n, uri, n, uri, assets.K8S_KEY_ID))
            if signed and os.path.exists(signed):
                warnings.append("W: The key(s) in the keyring %s are ignored as the file has an unsupported "
                                "filetype." % signed)
            warnings.append("W: GPG error: %s  InRelease: The following signatures couldn't be verified because "
                            "the public key is not available: NO_PUBKEY %s" % (uri, assets.K8S_KEY_ID))
            errors.append("E: The repository '%s  InRelease' is not signed." % uri)
            continue
        common.out("Get:%d %s  InRelease [1189 B]\nGet:%d %s  Packages [4865 B]\n" % (n, uri, n, uri))
        lists["k8s-" + minor] = {"uri": uri}
    common.out("Fetched 6054 B in 1s (5032 B/s)\nReading package lists...\n")
    with common.state(common.PACKAGES_JSON, {"installed": {}, "held": []}) as db:
        db["lists"] = lists
    for w in warnings:
        sys.stderr.write(w + "\n")
    if errors:
        sys.stderr.write("\n".join(errors) + "\nN: Updating from such a repository can't be done securely, and is "
                         "therefore disabled by default.\nN: See apt-secure(8) manpage for repository creation and "
                         "user configuration details.\n")
        return 100
    return 0


# ------------------------------------------------------------------ catalogue
def available(db):
    lists = db.get("lists", {})
    cats = []
    if lists.get("os"):
        cats.append(("os", os_pkgdb.os_catalogue()))
    for k, v in sorted(lists.items()):
        if k.startswith("k8s-"):
            cats.append((v.get("uri", k), os_pkgdb.k8s_catalogue(k[4:])))
    return os_pkgdb.merge(cats)


def candidate(avail, name):
    vs = avail.get(name)
    if not vs:
        return None
    return max(vs, key=os_pkgdb.version_key)


# ------------------------------------------------------------------ install / remove
def parse_opts(argv):
    opts = {"yes": False, "quiet": 0, "allow_held": False, "allow_down": False, "no_recommends": False,
            "reinstall": False}
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-y", "--yes", "--assume-yes"):
            opts["yes"] = True
        elif a == "-q" or a == "--quiet":
            opts["quiet"] += 1
        elif a in ("-qq",) or a.startswith("-q="):
            opts["quiet"] = 2
        elif re.fullmatch(r"-[yq]+", a):
            opts["yes"] = opts["yes"] or "y" in a
            opts["quiet"] += a.count("q")
        elif a == "--allow-change-held-packages":
            opts["allow_held"] = True
        elif a == "--allow-downgrades":
            opts["allow_down"] = True
        elif a == "--no-install-recommends":
            opts["no_recommends"] = True
        elif a == "--reinstall":
            opts["reinstall"] = True
        elif a == "-o":
            i += 1
        elif a.startswith("-o"):
            pass
        elif a.startswith("-"):
            pass
        else:
            args.append(a)
        i += 1
    if opts["quiet"] >= 2:
        opts["yes"] = True
    return opts, args


def lock_timeout(argv):
    """Seconds from `-o DPkg::Lock::Timeout=N` (apt's configuration keys are case-insensitive); 0 by default."""
    secs = 0
    for i, a in enumerate(argv):
        opt = argv[i + 1] if a == "-o" and i + 1 < len(argv) else a[2:] if a.startswith("-o") else None
        if opt and "=" in opt:
            k, v = opt.split("=", 1)
            if k.strip().lower() == "dpkg::lock::timeout":
                try:
                    secs = int(v)
                except ValueError:
                    secs = 0
    return secs


@contextlib.contextmanager
def frontend_lock(argv):
    """The dpkg frontend lock as apt takes it: busy → apt names the holder and gives up, or with
    -o DPkg::Lock::Timeout=N keeps trying for N seconds ("Waiting for cache lock: …"). Then apt refuses to go on
    while dpkg was interrupted (a journal in /var/lib/dpkg/updates)."""
    with os_dpkg.frontend_lock() as holder:
        deadline = time.time() + lock_timeout(argv)
        waited = 0
        while holder() is not None and time.time() < deadline:
            pid, name = holder()
            sys.stderr.write("Waiting for cache lock: Could not get lock %s. It is held by process %d (%s)... %ds\n"
                             % (os_dpkg.FRONTEND_LOCK, pid, name, waited))
            sys.stderr.flush()
            time.sleep(1)
            waited += 1
        busy = holder()
        if busy is not None:
            die("E: Could not get lock %s. It is held by process %d (%s)\n"
                "N: Be aware that removing the lock file is not a solution and may break your system.\n"
                "E: Unable to acquire the dpkg frontend lock (%s), is another process using it?"
                % (os_dpkg.FRONTEND_LOCK, busy[0], busy[1], os_dpkg.FRONTEND_LOCK))
        if os_dpkg.interrupted():
            die("E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem. ")
        yield


def install(argv, upgrade_all=False):
    opts, names = parse_opts(argv)
    if not common.is_root():
        not_root()
    with frontend_lock(argv):
        return _install(opts, names, upgrade_all)


def _install(opts, names, upgrade_all):
    db = common.packages_state()
    installed = db.get("installed", {})
    held = set(db.get("held", []))
    avail = available(db)
    header()
    want = {}
    errors = []
    if upgrade_all:
        kept = []
        for n, v in installed.items():
            c = candidate(avail, n)
            if c and os_pkgdb.version_key(c) > os_pkgdb.version_key(v):
                if n in held:
                    kept.append(n)
                else:
                    want[n] = c
        if kept:
            common.out("The following packages have been kept back:\n  %s\n" % " ".join(sorted(kept)))
    for spec in names:
        name, _, ver = spec.partition("=")
        if name.endswith("-") or name.endswith("+"):
            name = name[:-1]
        if name not in avail:
            if name in installed or dpkg_real_installed(name):
                want[name] = installed.get(name) or dpkg_real_installed(name)
                continue
            errors.append("E: Unable to locate package %s" % name)
            continue
        if ver:
            if "*" in ver or "?" in ver:
                # apt matches version globs (the kubeadm upgrade guide uses kubeadm='1.34.x-*')
                hits = [v for v in avail[name] if fnmatch.fnmatchcase(v, ver)]
                if not hits:
                    errors.append("E: Version '%s' for '%s' was not found" % (ver, name))
                    continue
                ver = max(hits, key=os_pkgdb.version_key)
                common.out("Selected version '%s' (%s) for '%s'\n" % (ver, avail[name][ver], name))
            if ver not in avail[name]:
                errors.append("E: Version '%s' for '%s' was not found" % (ver, name))
                continue
            want[name] = ver
        else:
            want[name] = installed.get(name) if installed.get(name) and not upgrade_all and \
                installed.get(name) in avail[name] else candidate(avail, name)
    if errors:
        die("\n".join(errors))
    # dependencies
    extra = {}
    for n in list(want):
        for d in os_pkgdb.DEPENDS.get(n, []):
            if d not in want and d not in installed and d in avail:
                extra[d] = candidate(avail, d)
            elif d not in want and d not in installed and not dpkg_real_installed(d):
                die("Some packages could not be installed. This may mean that you have\nrequested an impossible "
                    "situation or if you are using the unstable\ndistribution that some required packages have not "
                    "yet been created\nor been moved out of Incoming.\n\nThe following packages have unmet "
                    "dependencies:\n %s : Depends: %s but it is not installable\nE: Unable to correct problems, you "
                    "have held broken packages." % (n, d))
    changes = {n: v for n, v in want.items() if installed.get(n) != v or opts["reinstall"]}
    already = [n for n in want if n not in changes]
    for n in already:
        common.out("%s is already the newest version (%s).\n" % (n, want[n]))
    held_changed = [n for n in changes if n in held and n in installed]
    downgrades = [n for n in changes if n in installed and
                  os_pkgdb.version_key(changes[n]) < os_pkgdb.version_key(installed[n])]
    if held_changed:
        common.out("The following held packages will be changed:\n  %s\n" % " ".join(sorted(held_changed)))
        if not opts["allow_held"]:
            die("E: Held packages were changed and -y was used without --allow-change-held-packages." if opts["yes"]
                else "E: Held packages were changed and -y was used without --allow-change-held-packages.")
    if downgrades:
        common.out("The following packages will be DOWNGRADED:\n  %s\n" % " ".join(sorted(downgrades)))
        if not opts["allow_down"] and opts["yes"]:
            die("E: Packages were downgraded and -y was used without --allow-downgrades.")
    all_changes = dict(changes)
    all_changes.update(extra)
    if not all_changes:
        common.out("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n")
        return 0
    new = [n for n in all_changes if n not in installed]
    if extra:
        common.out("The following additional packages will be installed:\n  %s\n" % " ".join(sorted(extra)))
    if new:
        common.out("The following NEW packages will be installed:\n  %s\n" % " ".join(sorted(new)))
    common.out("%d upgraded, %d newly installed, 0 to remove and 0 not upgraded.\n"
               % (len(all_changes) - len(new), len(new)))
    if (extra or downgrades) and not opts["yes"]:
        common.out("Do you want to continue? [Y/n] Abort.\n")
        return 1
    order = sorted(extra) + [n for n in names_order(changes)]
    # dpkg's journal says what is being unpacked: killed from here on (SIGKILL, SIGPIPE once the caller is gone),
    # the host is left "interrupted" until `dpkg --configure -a`, as a real one is
    os_dpkg.begin([(n, all_changes[n]) for n in order])
    common.charge_packages(len(all_changes))
    for n in order:
        common.out("Unpacking %s (%s) ...\n" % (n, all_changes[n]))
    os_dpkg.configure_pending(upgraded=[n for n in order if n in installed])
    return 0


def names_order(changes):
    return sorted(changes, key=lambda n: (n in ("kubeadm",), n))


def dpkg_real_installed(name):
    """Version of a package installed on the base image (the real machine's dpkg database)."""
    from labnode import os_dpkg
    return os_dpkg.base_packages().get(name, {}).get("Version")


def remove(argv, purge=False):
    opts, names = parse_opts(argv)
    if not common.is_root():
        not_root()
    with frontend_lock(argv):
        return _remove(opts, names)


def _remove(opts, names):
    db = common.packages_state()
    installed = db.get("installed", {})
    held = set(db.get("held", []))
    header()
    targets = [n for n in names if n in installed]
    for n in names:
        if n not in installed:
            if n in available(db) or dpkg_real_installed(n) is None:
                common.out("Package '%s' is not installed, so not removed\n" % n)
    hc = [n for n in targets if n in held]
    if hc:
        common.out("The following held packages will be changed:\n  %s\n" % " ".join(hc))
        if not opts["allow_held"]:
            die("E: Held packages were changed and -y was used without --allow-change-held-packages.")
    if not targets:
        common.out("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n")
        return 0
    if not opts["yes"]:
        common.out("The following packages will be REMOVED:\n  %s\nDo you want to continue? [Y/n] Abort.\n"
                   % " ".join(targets))
        return 1
    from labnode import os_systemctl
    for n in targets:
        for svc, pkg in SERVICE_PACKAGES.items():
            if pkg == n:
                os_systemctl.stop(svc)
    with common.state(common.PACKAGES_JSON, {"installed": {}, "held": []}) as db2:
        for n in targets:
            common.out("Removing %s (%s) ...\n" % (n, db2["installed"].get(n)))
            os_pkgdb.remove_files(n)
            db2["installed"].pop(n, None)
            if n in db2.get("held", []):
                db2["held"].remove(n)
    return 0


# ------------------------------------------------------------------ apt-mark / apt-cache
def apt_mark(argv):
    args = [a for a in argv if not a.startswith("-")]
    if not args:
        die("E: No command given", 100)
    verb, names = args[0], args[1:]
    db = common.packages_state()
    if verb in ("showhold", "showheld"):
        for n in sorted(db.get("held", [])):
            common.out(n + "\n")
        return 0
    if verb not in ("hold", "unhold", "auto", "manual", "showauto", "showmanual"):
        die("E: Invalid operation %s" % verb, 100)
    if verb in ("showauto", "showmanual"):
        return 0
    if not names:
        die("E: No packages found", 100)
    if not common.is_root():
        die("E: Could not create temporary file for /var/lib/apt/extended_states - mkstemp (13: Permission denied)\n"
            "E: Failed to write temporary StateFile /var/lib/apt/extended_states", 100)
    avail = available(db)
    for n in names:
        if n not in avail and n not in db.get("installed", {}) and not dpkg_real_installed(n):
            die("E: Unable to locate package %s" % n if False else
                "E: Can't select installed nor candidate version from package '%s' as it has neither of them" % n, 100)
    with common.state(common.PACKAGES_JSON, {"installed": {}, "held": []}) as db2:
        held = db2.setdefault("held", [])
        for n in names:
            if verb == "hold":
                if n in held:
                    common.out("%s was already set on hold.\n" % n)
                else:
                    held.append(n)
                    common.out("%s set on hold.\n" % n)
            elif verb == "unhold":
                if n in held:
                    held.remove(n)
                    common.out("Canceled hold on %s.\n" % n)
                else:
                    common.out("%s was already not on hold.\n" % n)
    return 0


def apt_cache(argv):
    args = [a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] != "-o")]
    if not args:
        die("E: No command given", 100)
    verb, names = args[0], args[1:]
    db = with_private_lists(argv, common.packages_state())
    avail = available(db)
    installed = db.get("installed", {})
    if verb == "madison":
        for n in names:
            for v in sorted(avail.get(n, {}), key=os_pkgdb.version_key, reverse=True):
                origin = avail[n][v]
                # a flat repository: the URI without its trailing slash, two spaces, "Packages"
                src = "%s  Packages" % origin.rstrip("/") if origin != "os" else "http://archive.ubuntu.com/ubuntu main amd64 Packages"
                common.out("%10s | %s | %s\n" % (n, v, src))
            if n not in avail:
                sys.stderr.write("N: Unable to locate package %s\n" % n)
        return 0
    if verb == "policy":
        for n in names:
            if n not in avail and n not in installed:
                continue
            common.out("%s:\n  Installed: %s\n  Candidate: %s\n  Version table:\n"
                       % (n, installed.get(n, "(none)"), candidate(avail, n) or "(none)"))
            for v in sorted(avail.get(n, {}), key=os_pkgdb.version_key, reverse=True):
                common.out(" %s %s 500\n        500 %s Packages\n" % ("***" if installed.get(n) == v else "   ", v,
                                                                    avail[n][v]))
        return 0
    if verb in ("show", "showpkg"):
        rc = 0
        for n in names:
            if n not in avail:
                sys.stderr.write("N: Unable to locate package %s\nE: No packages found\n" % n)
                rc = 100
                continue
            common.out("Package: %s\nVersion: %s\n\n" % (n, candidate(avail, n)))
        return rc
    if verb == "search":
        pat = names[0] if names else ""
        for n in sorted(avail):
            if pat in n:
                common.out("%s - %s\n" % (n, n))
        return 0
    die("E: Invalid operation %s" % verb, 100)


def main(tool, argv):
    if tool == "apt-mark":
        return apt_mark(argv)
    if tool == "apt-cache":
        return apt_cache(argv)
    if tool == "apt":
        sys.stderr.write("\nWARNING: apt does not have a stable CLI interface. Use with caution in scripts.\n\n")
    args = [a for a in argv if not a.startswith("-")]
    # skip option values of -o
    clean, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if not a.startswith("-"):
            clean.append(a)
    args = clean
    if not args:
        common.out("apt 2.4.13 (amd64)\nUsage: apt-get [options] command\n")
        return 1 if tool == "apt-get" else 1
    verb = args[0]
    rest = [a for a in argv if a != verb]
    q = sum(a.count("q") for a in argv if re.fullmatch(r"-[yq]+", a)) + sum(1 for a in argv if a == "--quiet")
    if q >= 2 or any(a in ("-q=2", "--quiet=2") for a in argv):
        sys.stdout = open(os.devnull, "w")  # -qq: errors only
    if verb == "update":
        return update(rest)
    if verb == "install":
        return install(rest)
    if verb in ("upgrade", "dist-upgrade", "full-upgrade"):
        return install(rest, upgrade_all=True)
    if verb in ("remove", "purge", "autoremove"):
        if verb == "autoremove":
            if not common.is_root():
                not_root()
            header()
            common.out("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n")
            return 0
        return remove(rest, purge=verb == "purge")
    if verb in ("clean", "autoclean"):
        return 0
    if verb in ("policy", "madison", "show", "search") and tool == "apt":
        return apt_cache(argv)
    if verb == "list" and tool == "apt":
        db = common.packages_state()
        for n, v in sorted(db.get("installed", {}).items()):
            common.out("%s/now %s amd64 [installed]\n" % (n, v))
        return 0
    die("E: Invalid operation %s" % verb, 100)
