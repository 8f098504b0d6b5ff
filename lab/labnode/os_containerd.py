"""containerd (the CLI: `config default`, `--version`), ctr, crictl (`pull`, `images`), and containerd-daemon
(the service's main process: loads /etc/containerd/config.toml once at start — edits need a restart, like the
real one). Images live in the host's image store (IMAGES_JSON): a pull of an image not there is charged
(`image-pull`, per image, the tiny pause image a quarter), kubeadm init/join pull what they need through it."""
import hashlib
import os
import socket
import sys
import time

from labnode import common

LOADED = os.path.join(common.RUN_DIR, "containerd.loaded.toml")
IMAGES_JSON = os.path.join(common.HOST_STATE, "images.json")
SOCK = "/run/containerd/containerd.sock"

DEFAULT_CONFIG = """disabled_plugins = []
imports = []
oom_score = 0
plugin_dir = ""
required_plugins = []
root = "/var/lib/containerd"
state = "/run/containerd"
temp = ""
version = 2

[cgroup]
  path = ""

[debug]
  address = ""
  format = ""
  gid = 0
  level = ""
  uid = 0

[grpc]
  address = "/run/containerd/containerd.sock"
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216
  tcp_address = ""
  tcp_tls_ca = ""
  tcp_tls_cert = ""
  tcp_tls_key = ""
  uid = 0

[metrics]
  address = ""
  grpc_histogram = false

[plugins]

  [plugins."io.containerd.gc.v1.scheduler"]
    deletion_threshold = 0
    mutation_threshold = 100
    pause_threshold = 0.02
    schedule_delay = "0s"
    startup_delay = "100ms"

  [plugins."io.containerd.grpc.v1.cri"]
    cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]
    device_ownership_from_security_context = false
    disable_apparmor = false
    disable_cgroup = false
    disable_hugetlb_controller = true
    disable_proc_mount = false
    disable_tcp_service = true
    drain_exec_sync_io_timeout = "0s"
    enable_cdi = false
    enable_selinux = false
    enable_tls_streaming = false
    enable_unprivileged_icmp = false
    enable_unprivileged_ports = false
    ignore_image_defined_volumes = false
    image_pull_progress_timeout = "5m0s"
    max_concurrent_downloads = 3
    max_container_log_line_size = 16384
    netns_mounts_under_state_dir = false
    restrict_oom_score_adj = false
    sandbox_image = "registry.k8s.io/pause:3.8"
    selinux_category_range = 1024
    stats_collect_period = 10
    stream_idle_timeout = "4h0m0s"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    systemd_cgroup = false
    tolerate_missing_hugetlb_controller = true
    unset_seccomp_profile = ""

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
      conf_dir = "/etc/cni/net.d"
      conf_template = ""
      ip_pref = ""
      max_conf_num = 1
      setup_serially = false

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      disable_snapshot_annotations = true
      discard_unpacked_layers = false
      ignore_blockio_not_enabled_errors = false
      ignore_rdt_not_enabled_errors = false
      no_pivot = false
      snapshotter = "overlayfs"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          base_runtime_spec = ""
          cni_conf_dir = ""
          cni_max_conf_num = 0
          container_annotations = []
          pod_annotations = []
          privileged_without_host_devices = false
          privileged_without_host_devices_all_devices_allowed = false
          runtime_engine = ""
          runtime_path = ""
          runtime_root = ""
          runtime_type = "io.containerd.runc.v2"
          sandbox_mode = "podsandbox"
          snapshotter = ""

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            BinaryName = ""
            CriuImagePath = ""
            CriuPath = ""
            CriuWorkPath = ""
            IoGid = 0
            IoUid = 0
            NoNewKeyring = false
            NoPivotRoot = false
            Root = ""
            ShimCgroup = ""
            SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".image_decryption]
      key_model = "node"

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""

  [plugins."io.containerd.internal.v1.opt"]
    path = "/opt/containerd"

  [plugins."io.containerd.internal.v1.restart"]
    interval = "10s"

  [plugins."io.containerd.runtime.v1.linux"]
    no_shim = false
    runtime = "runc"
    runtime_root = ""
    shim = "containerd-shim"
    shim_debug = false

  [plugins."io.containerd.runtime.v2.task"]
    platforms = ["linux/amd64"]
    sched_core = false

  [plugins."io.containerd.snapshotter.v1.overlayfs"]
    mount_options = []
    root_path = ""
    sync_remove = false
    upperdir_label = false

[proxy_plugins]

[stream_processors]

[timeouts]
  "io.containerd.timeout.bolt.open" = "0s"
  "io.containerd.timeout.shim.cleanup" = "5s"
  "io.containerd.timeout.shim.load" = "5s"
  "io.containerd.timeout.shim.shutdown" = "3s"
  "io.containerd.timeout.task.state" = "2s"

[ttrpc]
  address = ""
  gid = 0
  uid = 0
"""


def version():
    v = common.package_version("containerd") or "1.7.24"
    return v.split("-")[0].split("~")[0]


def daemon(argv):
    """Main process of containerd.service."""
    cfg = "/etc/containerd/config.toml"
    for i, a in enumerate(argv):
        if a in ("-c", "--config") and i + 1 < len(argv):
            cfg = argv[i + 1]
    text = ""
    if os.path.exists(cfg):
        with open(cfg) as f:
            text = f.read()
        try:
            import tomllib
            parsed = tomllib.loads(text)
        except ImportError:
            parsed = {"version": 2}
        except ValueError as e:
            sys.stderr.write('containerd: failed to load TOML from %s: %s\n' % (cfg, e))
            return 1
        if parsed.get("version", 1) not in (1, 2, 3):
            sys.stderr.write("containerd: unsupported config version `%s`\n" % parsed.get("version"))
            return 1
    os.makedirs(common.RUN_DIR, exist_ok=True)
    common.write_file(LOADED, text)
    os.makedirs(os.path.dirname(SOCK), exist_ok=True)
    try:
        os.unlink(SOCK)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(SOCK)
    s.listen(16)
    sys.stdout.write('time="%s" level=info msg="containerd successfully booted" version=%s\n'
                     % (time.strftime("%Y-%m-%dT%H:%M:%S"), version()))
    sys.stdout.flush()
    s.settimeout(1.0)
    while True:
        try:
            c, _ = s.accept()
            c.close()
        except socket.timeout:
            pass
        except OSError:
            time.sleep(1)


def images():
    """The images in the host's store (the k8s.io namespace, where the kubelet finds them)."""
    return list((common.load_json(IMAGES_JSON, {}) or {}).get("images", []))


def pull(refs):
    """Pulls each of `refs` not in the store yet, charging `image-pull` for each, and records it as it lands
    (a pull killed half-way keeps the images it finished). Needs the running service. Returns what it fetched."""
    if not common.service_active("containerd"):
        raise OSError('failed to connect: dial unix %s: connect: no such file or directory' % SOCK)
    fetched = []
    for ref in refs:
        if ref in images():
            continue
        common.delay("image-pull", 0.25 if "/pause:" in ref else 1.0)
        with common.state(IMAGES_JSON, {"images": []}) as db:
            if ref not in db.setdefault("images", []):
                db["images"].append(ref)
        fetched.append(ref)
    return fetched


def crictl(argv):
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-r", "--runtime-endpoint", "-i", "--image-endpoint", "--timeout", "-t"):
            i += 2
            continue
        if a.startswith("--runtime-endpoint=") or a.startswith("--image-endpoint="):
            i += 1
            continue
        args.append(a)
        i += 1
    if args[:1] in (["--version"], ["-v"]):
        common.out("crictl version v1.34.0\n")
        return 0
    if not common.is_root():
        common.fail('time="%s" level=fatal msg="validate service connection: validate CRI v1 image API for endpoint '
                    '\\"unix://%s\\": rpc error: code = Unavailable desc = connection error: desc = \\"transport: '
                    'Error while dialing: dial unix %s: connect: permission denied\\""'
                    % (time.strftime("%Y-%m-%dT%H:%M:%S"), SOCK, SOCK), 1)
    if args[:1] == ["pull"] and len(args) == 2:
        ref = args[1] if "/" in args[1] else "docker.io/library/" + args[1]
        if ":" not in ref.rsplit("/", 1)[1]:
            ref += ":latest"
        try:
            pull([ref])
        except OSError as e:
            common.fail('time="%s" level=fatal msg="validate service connection: %s"'
                        % (time.strftime("%Y-%m-%dT%H:%M:%S"), e), 1)
        common.out("Image is up to date for sha256:%s\n" % hashlib.sha256(ref.encode()).hexdigest())
        return 0
    if args[:1] == ["images"]:
        quiet = "-q" in args[1:] or "--quiet" in args[1:]
        if not quiet:
            common.out("%-45s %-15s %-15s %s\n" % ("IMAGE", "TAG", "IMAGE ID", "SIZE"))
        for ref in sorted(images()):
            name, tag = ref.rsplit(":", 1)
            iid = hashlib.sha256(ref.encode()).hexdigest()[:13]
            common.out((iid + "\n") if quiet else "%-45s %-15s %-15s %s\n" % (name, tag, iid, "-"))
        return 0
    common.fail("crictl: this lab's crictl only supports `pull IMAGE`, `images` and `--version`", 1)


def main(tool, argv):
    if tool == "containerd-daemon":
        return daemon(argv)
    if tool == "crictl":
        return crictl(argv)
    if tool == "ctr":
        if argv[:1] == ["version"]:
            common.out("Client:\n  Version:  %s\n\nServer:\n" % version())
            if not common.service_active("containerd"):
                common.fail('ctr: failed to dial "/run/containerd/containerd.sock": connection error: desc = '
                            '"transport: error while dialing: dial unix /run/containerd/containerd.sock: '
                            'connect: no such file or directory"', 1)
            common.out("  Version:  %s\n" % version())
            return 0
        common.fail("ctr: this lab's ctr only supports `ctr version`", 1)
    if argv[:1] in (["--version"], ["-v"]):
        common.out("containerd containerd.io %s\n" % version())
        return 0
    if argv[:2] == ["config", "default"]:
        common.out(DEFAULT_CONFIG)
        return 0
    if argv[:2] == ["config", "dump"]:
        try:
            with open(LOADED) as f:
                common.out(f.read() or DEFAULT_CONFIG)
        except FileNotFoundError:
            common.out(DEFAULT_CONFIG)
        return 0
    if not argv:
        # running the daemon by hand: same as the service's main process
        return daemon(argv)
    common.fail('containerd: unknown command "%s"' % argv[0], 1)


def loaded_config():
    """The config text the running daemon loaded, or None if it is not running."""
    if not common.service_active("containerd"):
        return None
    try:
        with open(LOADED) as f:
            return f.read()
    except FileNotFoundError:
        return None
