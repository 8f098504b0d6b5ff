"""Shared helpers of the simulated node toolchain (LabNode).

Runs inside a lab host (its own mount + UTS namespace, overlay views of /etc /usr /var /opt /home /root,
private /run and /tmp) with Debian's /usr/bin/python3: stdlib + PyYAML only.

Per-host simulated machine state lives under HOST_STATE (the /var overlay makes it per host):
  kernel.json    {"modules": [...], "sysctl": {key: value}, "swap": bool, "swapDevices": [...]}
  packages.json  {"installed": {name: version}, "held": [name], "lists": {repo-id: [..]}}
  services.json  {"enabled": [name], "started": [name]}
The host's identity is /etc/labnode/host.json written by `scripts/lab up`:
  {"name","address","os","family","cpus","memoryMB","profile","scale","labDir","user"}
"""
import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HOST_STATE = "/var/lib/labnode"
HOST_JSON = "/etc/labnode/host.json"
RUN_DIR = "/run/labnode"
LOG_DIR = "/var/log/labnode"

KERNEL_JSON = os.path.join(HOST_STATE, "kernel.json")
PACKAGES_JSON = os.path.join(HOST_STATE, "packages.json")
SERVICES_JSON = os.path.join(HOST_STATE, "services.json")

# Real-life durations in seconds of slow operations (profile "realistic"); multiplied by the host's
# scale (LAB_SCALE at `up`, default 0.05). Profile "fast" never sleeps. Where each figure comes from: lab/README.md.
DELAYS = {
    "pkg-transaction": 4.0,     # per apt-get/dnf call that changes packages (reading lists, resolving, triggers)
    "pkg-package": 2.0,         # per package installed or changed in it (download, unpack, configure)
    "apt-update": 6.0,          # per index update (apt-get update; dnf reading a repository it has not cached)
    "image-pull": 4.0,          # per image per node (pause: a quarter of it)
    "init": 60.0,
    "join": 30.0,
    "helm-install": 20.0,
    "service-start": 2.0,
}


def charge_packages(n):
    """What a package transaction changing `n` packages costs (`pkg-transaction` plus `pkg-package` each)."""
    if n > 0:
        delay("pkg-transaction")
        delay("pkg-package", factor=n)


# ---------------------------------------------------------------- files
def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except ValueError:
        return default


def save_json(path, obj, mode=0o644, compact=False):
    """Atomic write: temp file in the same directory + fsync + rename. `compact`: one line, written by json's C
    encoder (several times faster than the indented form; for big files written often, the API server's store),
    and returned (what the API server replicates to the other etcd members)."""
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        text = None
        with os.fdopen(fd, "w") as f:
            if compact:
                text = json.dumps(obj, separators=(",", ":"), sort_keys=True)
                f.write(text)
            else:
                json.dump(obj, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
        return text
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_file(path, text, mode=0o644):
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


@contextlib.contextmanager
def flock(path, blocking=True):
    """Exclusive advisory lock on `path` (created). Yields True, or False if non-blocking and busy."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                yield False
                return
            raise
        yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def state(path, default):
    """Read-modify-write a JSON state file under a lock: `with state(P, {}) as s: s[...] = ...`."""
    with flock(path + ".lock"):
        obj = load_json(path, None)
        if obj is None:
            obj = default
        yield obj
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        save_json(path, obj, mode=mode)


# ---------------------------------------------------------------- process
def fail(msg, code=1):
    if msg:
        sys.stderr.write(msg if msg.endswith("\n") else msg + "\n")
    sys.stderr.flush()
    sys.exit(code)


def out(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def set_process_name(name):
    """Make `pgrep -x NAME` / `pidof`-style checks and `ps -e` see NAME instead of python3 (prctl comm)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def is_root():
    return os.geteuid() == 0


# ---------------------------------------------------------------- host identity
_host_cache = None


def host_info():
    global _host_cache
    if _host_cache is None:
        _host_cache = load_json(HOST_JSON, {}) or {}
    return _host_cache


def host_name():
    return host_info().get("name") or os.uname().nodename


def host_address():
    return host_info().get("address", "127.0.0.1")


def host_os():
    return host_info().get("os", "ubuntu-22.04")


def os_family():
    """'deb' (ubuntu-*, debian-*) or 'rpm' (amazon-linux-*)."""
    return "rpm" if host_os().startswith("amazon") else "deb"


def lab_dir():
    return host_info().get("labDir") or os.environ.get("LAB_DIR", "/srv/bootstrap-lab")


def host_lab_dir():
    """This host's directory in LAB_DIR (shared with the real machine: faults live there)."""
    return os.path.join(lab_dir(), "hosts", host_name())


def forkserver_preload():
    """Run by the host's fork server before it forks: what never changes while the host runs (its identity,
    written at `up`; whether /proc/sys is the lab's overlay, mounted at boot) is then read once, not per call."""
    host_info()
    proc_sys_mirror()


# ---------------------------------------------------------------- clock
def clock_offset():
    try:
        with open(os.path.join(lab_dir(), "clock")) as f:
            return float(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0.0


def now():
    """Lab time: real time plus the lab clock offset (`scripts/lab clock advance 3h`)."""
    return time.time() + clock_offset()


# ---------------------------------------------------------------- profile
def profile():
    return host_info().get("profile", "fast")


def delay(kind, factor=1.0):
    """Sleep as long as `kind` takes in real life, scaled; nothing in the fast profile."""
    if profile() != "realistic":
        return 0.0
    scale = float(host_info().get("scale", os.environ.get("LAB_SCALE", 0.05)))
    secs = DELAYS.get(kind, 1.0) * scale * factor
    if secs > 0:
        time.sleep(secs)
        # The benchmark adds these up to know the critical path of a run.
        with contextlib.suppress(OSError):
            os.makedirs("/var/log/labnode", exist_ok=True)
            with open("/var/log/labnode/delays.log", "a") as f:
                f.write("%.3f %s %.3f\n" % (time.time(), kind, secs))
    return secs


# ---------------------------------------------------------------- faults
def faults_path():
    """LAB_DIR/hosts/<name>/faults/faults.json: shared with `scripts/lab fault` on the real machine; the
    directory is world-writable so that a tool run by the login user can consume a fail-once entry."""
    return os.path.join(host_lab_dir(), "faults", "faults.json")


def check_faults(tool, argv):
    """Apply injected faults (`scripts/lab fault HOST fail-once|fail-always|hang TOOL [MATCH]`).

    Entries: {"mode": ..., "tool": ..., "match": substring of the joined argv or ""}. The dispatcher calls
    this for every tool before running it; fail-once entries delete themselves after firing."""
    path = faults_path()
    if not os.path.exists(path):
        return
    cmdline = " ".join([tool] + list(argv))
    hit = None
    with state(path, []) as faults:
        for i, f in enumerate(faults):
            if f.get("tool") not in (tool, "*"):
                continue
            if f.get("match") and f["match"] not in cmdline:
                continue
            hit = f
            if f.get("mode") == "fail-once":
                del faults[i]
            break
    if hit is None:
        return
    if hit.get("mode") == "hang":
        while True:
            time.sleep(3600)
    fail("%s: injected fault (lab %s): %s" % (tool, hit.get("mode"), cmdline), int(hit.get("code", 1)))


# ---------------------------------------------------------------- daemons
def _pid_file(name):
    return os.path.join(RUN_DIR, name + ".pid")


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
        if st in ("Z", "X"):
            return False
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
        return False
    # must live in this host's mount namespace (pid files are per host, pids are not); a non-root caller
    # cannot read another user's namespace link: then the per-host pid file is trusted
    try:
        return os.readlink("/proc/%d/ns/mnt" % pid) == os.readlink("/proc/self/ns/mnt")
    except PermissionError:
        return True
    except (FileNotFoundError, ProcessLookupError):
        return False


def daemon_pid(name):
    try:
        with open(_pid_file(name)) as f:
            pid = int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def daemon_running(name):
    return daemon_pid(name) is not None


def start_daemon(name, argv, env=None):
    """Start `argv` detached (own session) inside this host's namespaces; returns its pid.

    Stdout/stderr go to /var/log/labnode/<name>.log, the pid to /run/labnode/<name>.pid. A running
    daemon of that name is left alone (returns its pid)."""
    pid = daemon_pid(name)
    if pid:
        return pid
    os.makedirs(RUN_DIR, exist_ok=True)
    os.makedirs(LOG_DIR, exist_ok=True)
    log = open(os.path.join(LOG_DIR, name + ".log"), "ab")
    e = dict(os.environ)
    e.setdefault("PYTHONPATH", "/opt/labnode")
    if env:
        e.update(env)
    # In a process forked from the host's fork server the modules are loaded: fork instead of exec (same result)
    fs = sys.modules.get("labnode.forkserver")
    pid = fs.spawn(argv, env=e, stdout=log.fileno(), new_session=True, cwd="/") if fs is not None else None
    if pid is None:
        pid = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=e,
                               start_new_session=True, close_fds=True, cwd="/").pid
    log.close()
    with open(_pid_file(name) + ".tmp", "w") as f:  # atomically: other tools poll it
        f.write("%d\n" % pid)
    os.rename(_pid_file(name) + ".tmp", _pid_file(name))
    return pid


def stop_daemon(name, timeout=5.0):
    """SIGTERM, then SIGKILL after `timeout`; removes the pid file. True if something was stopped."""
    pid = daemon_pid(name)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_pid_file(name))
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline and _pid_alive(pid):
        time.sleep(0.02)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return True


# ---------------------------------------------------------------- machine state queries
def kernel_state():
    return load_json(KERNEL_JSON, {"modules": [], "sysctl": {}, "swap": False}) or {}


def module_loaded(name):
    return name.replace("-", "_") in kernel_state().get("modules", [])


_mirror = None


def proc_sys_mirror():
    """True inside a lab host whose /proc/sys is the lab's overlay (a copy of the real tree taken at `up`):
    then its files are the simulated values. Never true on the real machine."""
    global _mirror
    if _mirror is None:
        _mirror = False
        if os.path.exists(HOST_JSON):
            try:
                with open("/proc/self/mountinfo") as f:
                    for line in f:
                        left, _, right = line.partition(" - ")
                        if left.split()[4] == "/proc/sys" and right.split()[0] == "overlay":
                            _mirror = True
            except (OSError, IndexError):
                pass
    return _mirror


def sysctl_value(key):
    """Current value (string, fields tab-separated) of a sysctl key, None if the key does not exist
    (e.g. bridge keys before br_netfilter is loaded)."""
    key = key.strip().replace("/", ".").strip(".")
    if proc_sys_mirror():
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as f:
                return "\t".join(f.read().split())
        except OSError:
            return None
    v = kernel_state().get("sysctl", {}).get(key)
    return None if v is None else str(v)


def swap_on():
    return bool(kernel_state().get("swap"))


def packages_state():
    return load_json(PACKAGES_JSON, {"installed": {}, "held": []}) or {"installed": {}, "held": []}


def package_version(name):
    return packages_state().get("installed", {}).get(name)


def services_state():
    return load_json(SERVICES_JSON, {"enabled": [], "started": []}) or {"enabled": [], "started": []}


def service_enabled(name):
    return name in services_state().get("enabled", [])


def service_main_pid(name):
    """Pid of the service's main process (under its lab-systemd supervisor), None if not running."""
    try:
        with open(os.path.join(RUN_DIR, name + ".main.pid")) as f:
            pid = int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def service_state(name):
    """systemd ActiveState of a lab service: 'active' (main process running), 'activating' (started,
    crash-looping: Restart=always between two attempts) or 'inactive'."""
    if not daemon_running(name):
        return "inactive"
    return "active" if service_main_pid(name) else "activating"


def service_active(name):
    return service_state(name) == "active"


def containerd_healthy():
    """(ok, reason): package installed, service active, SystemdCgroup = true under the runc options."""
    if package_version("containerd") is None:
        return False, "containerd is not installed"
    if not service_active("containerd"):
        return False, "containerd service is not running"
    # what counts is the config the running daemon loaded at its start (edits need a restart)
    loaded = os.path.join(RUN_DIR, "containerd.loaded.toml")
    try:
        with open(loaded) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if not text.strip():
        if not os.path.exists("/etc/containerd/config.toml"):
            return False, "/etc/containerd/config.toml not found (containerd uses the cgroupfs driver)"
        return False, "containerd was started before /etc/containerd/config.toml was written; restart it"
    if not systemd_cgroup_enabled(text):
        on_disk = ""
        with contextlib.suppress(OSError):
            with open("/etc/containerd/config.toml") as f:
                on_disk = f.read()
        if systemd_cgroup_enabled(on_disk):
            return False, "containerd is running with an old config (SystemdCgroup = false); restart containerd"
        return False, "containerd is not using the systemd cgroup driver (SystemdCgroup = false)"
    return True, "ok"


def systemd_cgroup_enabled(config_text):
    """True when the runc runtime options section sets SystemdCgroup = true (comments ignored)."""
    section = None
    for raw in config_text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        if section and section.endswith('runtimes.runc.options') and "=" in line:
            k, v = [x.strip() for x in line.split("=", 1)]
            if k == "SystemdCgroup":
                return v.lower() == "true"
    return False
