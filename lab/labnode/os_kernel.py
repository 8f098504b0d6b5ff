"""modprobe, lsmod, sysctl, swapoff, swapon — fully simulated (hosts share the real kernel and network:
nothing here may touch it). State: /var/lib/labnode/kernel.json; /proc/swaps and /proc/meminfo inside a
host are bind-mounted lab files that swapoff/swapon rewrite."""
import glob
import os
import re

from labnode import common
from labnode.common import fail, out

SWAP_KB = 2097148

BASE_MODULES = ["ena", "nvme", "nvme_core", "crc32_pclmul", "ip_tables", "x_tables", "autofs4", "aesni_intel",
                "psmouse", "serio_raw"]
# module -> (size, dependencies loaded with it)
KNOWN_MODULES = {
    "overlay": (151552, []),
    "br_netfilter": (32768, ["bridge"]),
    "bridge": (311296, ["stp", "llc"]),
    "stp": (12288, ["llc"]),
    "llc": (16384, []),
    "ip_vs": (192512, ["nf_conntrack"]),
    "ip_vs_rr": (12288, ["ip_vs"]),
    "ip_vs_wrr": (12288, ["ip_vs"]),
    "ip_vs_sh": (12288, ["ip_vs"]),
    "nf_conntrack": (180224, ["nf_defrag_ipv4", "nf_defrag_ipv6"]),
    "nf_defrag_ipv4": (12288, []),
    "nf_defrag_ipv6": (24576, []),
    "vxlan": (94208, ["ip6_udp_tunnel", "udp_tunnel"]),
    "ip6_udp_tunnel": (16384, []),
    "udp_tunnel": (28672, []),
    "iptable_nat": (12288, ["nf_nat", "ip_tables"]),
    "iptable_filter": (12288, ["ip_tables"]),
    "iptable_mangle": (12288, ["ip_tables"]),
    "ip6_tables": (32768, ["x_tables"]),
    "ip6table_filter": (12288, ["ip6_tables"]),
    "nf_nat": (61440, ["nf_conntrack"]),
    "xt_conntrack": (12288, ["nf_conntrack"]),
    "xt_MASQUERADE": (16384, ["nf_nat"]),
    "xt_mark": (12288, []),
    "xt_comment": (12288, []),
    "xt_addrtype": (12288, []),
    "nf_tables": (368640, []),
    "ipip": (20480, ["tunnel4"]),
    "tunnel4": (12288, []),
    "wireguard": (118784, []),
    "ena": (155648, []), "nvme": (61440, ["nvme_core"]), "nvme_core": (212992, []),
    "crc32_pclmul": (12288, []), "ip_tables": (32768, ["x_tables"]), "x_tables": (65536, []),
    "autofs4": (57344, []), "aesni_intel": (356352, []), "psmouse": (217088, []), "serio_raw": (20480, []),
}
ALIASES = {"br-netfilter": "br_netfilter", "ip-vs": "ip_vs"}

BASE_SYSCTL = {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.forwarding": "0",
    "net.ipv4.conf.default.forwarding": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv6.conf.default.forwarding": "0",
    "net.ipv4.conf.all.rp_filter": "2",
    "net.ipv4.conf.default.rp_filter": "2",
    "net.ipv4.ip_local_port_range": "32768\t60999",
    "net.ipv4.tcp_syncookies": "1",
    "net.core.somaxconn": "4096",
    "net.ipv4.ip_nonlocal_bind": "0",
    "net.ipv4.conf.all.route_localnet": "0",
    "net.netfilter.nf_conntrack_max": "131072",
    "vm.swappiness": "60",
    "vm.overcommit_memory": "0",
    "vm.panic_on_oom": "0",
    "vm.max_map_count": "65530",
    "kernel.panic": "0",
    "kernel.panic_on_oops": "1",
    "kernel.pid_max": "4194304",
    "kernel.keys.root_maxkeys": "1000000",
    "kernel.keys.root_maxbytes": "25000000",
    "fs.inotify.max_user_watches": "65536",
    "fs.inotify.max_user_instances": "128",
    "fs.file-max": "9223372036854775807",
}
BRIDGE_SYSCTL = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.bridge.bridge-nf-call-arptables": "1",
}
SYSCTL_DIRS = ["/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d"]


EXTRA_SYSCTL = {
    "fs.protected_fifos": "1", "fs.protected_hardlinks": "1", "fs.protected_regular": "2",
    "fs.protected_symlinks": "1", "kernel.kptr_restrict": "1", "kernel.yama.ptrace_scope": "1",
    "kernel.printk": "4\t4\t1\t7", "kernel.sysrq": "176", "vm.mmap_min_addr": "65536",
    "kernel.core_uses_pid": "1", "net.ipv4.conf.default.accept_source_route": "0",
    "net.ipv4.conf.all.accept_source_route": "0", "net.ipv4.conf.default.promote_secondaries": "1",
    "net.ipv4.conf.all.promote_secondaries": "1", "net.ipv4.ping_group_range": "0\t2147483647",
    "net.core.default_qdisc": "fq_codel", "fs.suid_dumpable": "2", "kernel.unprivileged_bpf_disabled": "2",
    "net.core.bpf_jit_harden": "0", "kernel.pid_max": "4194304", "net.ipv6.conf.all.disable_ipv6": "0",
    "net.ipv6.conf.default.disable_ipv6": "0", "net.ipv6.conf.lo.disable_ipv6": "0",
    "kernel.dmesg_restrict": "1", "kernel.kexec_load_disabled": "0", "user.max_user_namespaces": "63366",
}


def _real_sysctl_keys():
    """Keys named by the base image's sysctl files that the real kernel has (read only, at `lab up`)."""
    keys = {}
    for d in ("/usr/lib/sysctl.d", "/lib/sysctl.d", "/etc/sysctl.d"):
        for p in glob.glob(os.path.join(d, "*.conf")):
            for k, _, _ in _parse_conf(p):
                k = _norm_key(k.lstrip("-"))
                if "*" in k:
                    continue
                try:
                    with open(_proc_path(k)) as f:
                        keys[k] = "\t".join(f.read().split())
                except OSError:
                    pass
    return keys


def boot_state(swap_devices=None, swap=True):
    sysctl = {}
    sysctl.update(_real_sysctl_keys())
    sysctl.update(EXTRA_SYSCTL)
    sysctl.update(BASE_SYSCTL)
    st = {"modules": list(BASE_MODULES), "sysctl": sysctl, "swap": bool(swap),
          "swapDevices": list(swap_devices or ["/swap.img"]), "baseSysctl": dict(sysctl)}
    return st


def _kver():
    return os.uname().release


def _in_host():
    return os.path.exists(common.HOST_JSON)


# ------------------------------------------------------------------ /proc renderers
def render_meminfo(mem_mb, kern):
    total = int(mem_mb) * 1024 - 220000 if int(mem_mb) > 1024 else int(mem_mb) * 1024 * 9 // 10
    free = int(total * 0.78)
    avail = int(total * 0.9)
    swap = SWAP_KB * len(kern.get("swapDevices", ["x"])) if kern.get("swap") else 0
    rows = [("MemTotal", total), ("MemFree", free), ("MemAvailable", avail), ("Buffers", 30512),
            ("Cached", int(total * 0.08)), ("SwapCached", 0), ("Active", int(total * 0.06)),
            ("Inactive", int(total * 0.07)), ("SwapTotal", swap), ("SwapFree", swap), ("Dirty", 120),
            ("Writeback", 0), ("AnonPages", 101232), ("Mapped", 84120), ("Shmem", 1084),
            ("Slab", 61548), ("CommitLimit", total // 2 + swap), ("Committed_AS", 612000),
            ("VmallocTotal", 34359738367), ("HugePages_Total", 0), ("HugePages_Free", 0),
            ("Hugepagesize", 2048), ("DirectMap4k", 116736)]
    lines = []
    for k, v in rows:
        if k.startswith("HugePages_"):
            lines.append("%-15s %8d\n" % (k + ":", v))
        else:
            lines.append("%-15s %8d kB\n" % (k + ":", v))
    return "".join(lines)


def render_swaps(kern):
    text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    if kern.get("swap"):
        for dev in kern.get("swapDevices", []):
            text += "%-40s%-16s%-16d%-16d%d\n" % (dev, "file", SWAP_KB, 0, -2)
    return text


def render_cpuinfo(cpus):
    blocks = []
    for i in range(int(cpus)):
        blocks.append("processor\t: %d\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
                      "model name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\nstepping\t: 7\n"
                      "cpu MHz\t\t: 2499.998\ncache size\t: 36608 KB\nphysical id\t: 0\nsiblings\t: %d\n"
                      "core id\t\t: %d\ncpu cores\t: %d\napicid\t\t: %d\nflags\t\t: fpu vme de pse tsc msr "
                      "pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall "
                      "nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid aperfmperf "
                      "pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c "
                      "rdrand hypervisor lahf_lm abm 3dnowprefetch avx2 avx512f\nbogomips\t: 4999.99\n"
                      "address sizes\t: 46 bits physical, 48 bits virtual\n\n"
                      % (i, int(cpus), i // 2, max(1, int(cpus) // 2), i))
    return "".join(blocks)


def render_modules(kern):
    rows = []
    for m in reversed(kern.get("modules", [])):
        users = _users(kern, m)
        rows.append("%s %d %d %s Live 0x0000000000000000\n" % (m, KNOWN_MODULES.get(m, (16384, []))[0], len(users),
                                                              ",".join(users) + "," if users else "-"))
    return "".join(rows)


def refresh_proc(kern):
    """Rewrite the host's /proc/swaps, /proc/meminfo and /proc/modules (bind-mounted lab files) in place."""
    if not _in_host():
        return
    info = common.host_info()
    for path, text in (("/proc/swaps", render_swaps(kern)),
                       ("/proc/meminfo", render_meminfo(info.get("memoryMB", 4096), kern)),
                       ("/proc/modules", render_modules(kern))):
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError:
            pass


# ------------------------------------------------------------------ modprobe / lsmod
def _load(kern, mod, seen=None):
    seen = seen or set()
    if mod in seen:
        return
    seen.add(mod)
    for dep in KNOWN_MODULES[mod][1]:
        _load(kern, dep, seen)
    if mod not in kern["modules"]:
        kern["modules"].append(mod)
    if mod == "br_netfilter":
        for k, v in BRIDGE_SYSCTL.items():
            if sc_get(kern, k) is None:
                sc_put(kern, k, v)


def _users(kern, mod):
    return [m for m in kern["modules"] if mod in KNOWN_MODULES.get(m, (0, []))[1]]


def modprobe(argv):
    remove = False
    names = []
    quiet = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-r", "--remove"):
            remove = True
        elif a in ("-q", "--quiet"):
            quiet = True
        elif a in ("-a", "--all", "-v", "--verbose", "-b", "--use-blacklist"):
            pass
        elif a in ("-n", "--dry-run", "--show"):
            pass
        elif a.startswith("-"):
            fail("modprobe: unrecognized option '%s'" % a, 1)
        else:
            names.append(a)
        i += 1
    if not names:
        fail("modprobe: ERROR: missing parameters. See -h.", 1)
    # like kmod: without -a/-r only the first name is a module, the rest are its parameters (which the
    # kernel ignores when unknown): `modprobe overlay br_netfilter` does NOT load br_netfilter.
    if not remove and "-a" not in argv and "--all" not in argv:
        names = names[:1]
    if not common.is_root():
        fail("modprobe: ERROR: could not insert '%s': Operation not permitted" % names[0].replace("-", "_"), 1)
    with common.state(common.KERNEL_JSON, boot_state()) as kern:
        for n in names:
            mod = ALIASES.get(n, n.replace("-", "_"))
            if mod not in KNOWN_MODULES:
                if quiet:
                    return 1
                fail("modprobe: FATAL: Module %s not found in directory /lib/modules/%s" % (n, _kver()), 1)
            if remove:
                if mod not in kern["modules"]:
                    continue
                users = _users(kern, mod)
                if users:
                    fail("modprobe: FATAL: Module %s is in use." % mod, 1)
                kern["modules"].remove(mod)
                if mod == "br_netfilter":
                    for k in BRIDGE_SYSCTL:
                        sc_del(kern, k)
            else:
                _load(kern, mod)
        snapshot = dict(kern)
    refresh_proc(snapshot)
    return 0


def lsmod(argv):
    kern = common.kernel_state()
    out("Module                  Size  Used by\n")
    for m in reversed(kern.get("modules", [])):
        users = _users(kern, m)
        out("%-19s %8d  %d %s\n" % (m, KNOWN_MODULES.get(m, (16384, []))[0], len(users), ",".join(users)))
    return 0


# ------------------------------------------------------------------ sysctl
def _proc_path(key):
    return "/proc/sys/" + key.replace(".", "/")


# The simulated values: kernel.json's "sysctl" map, mirrored into the host's /proc/sys overlay (a copy of the
# real tree taken at `lab up`) — inside a host the /proc/sys files are the truth, so `cat /proc/sys/...` and
# `echo 1 > /proc/sys/...` agree with sysctl.
def sc_get(kern, key):
    if common.proc_sys_mirror():
        try:
            with open(_proc_path(key)) as f:
                return "\t".join(f.read().split())
        except OSError:
            return None
    return kern["sysctl"].get(key)


def sc_put(kern, key, value):
    kern["sysctl"][key] = value
    if common.proc_sys_mirror():
        p = _proc_path(key)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(value + "\n")


def sc_del(kern, key):
    kern["sysctl"].pop(key, None)
    if common.proc_sys_mirror():
        try:
            os.unlink(_proc_path(key))
            os.rmdir(os.path.dirname(_proc_path(key)))
        except OSError:
            pass


def sc_keys(kern):
    if not common.proc_sys_mirror():
        return sorted(kern.get("sysctl", {}))
    keys = []
    for root, _, files in os.walk("/proc/sys"):
        for f in files:
            keys.append(os.path.relpath(os.path.join(root, f), "/proc/sys").replace("/", "."))
    return sorted(keys)


def _norm_key(key):
    key = key.strip()
    if "/" in key and "." not in key.split("/")[-1]:
        key = key.strip("/").replace("/", ".")
    return key


def _set(kern, key, value, quiet, errors, ignore_missing=False):
    key = _norm_key(key)
    value = " ".join(value.split())
    old = sc_get(kern, key)
    if old is None:
        if ignore_missing:
            return
        errors.append("sysctl: cannot stat %s: No such file or directory" % _proc_path(key))
        return
    if re.fullmatch(r"-?\d+", old.split("\t")[0]) and "\t" not in old and not re.fullmatch(r"-?\d+", value):
        errors.append("sysctl: setting key \"%s\": Invalid argument" % key)
        return
    if "\t" in old:
        value = "\t".join(value.split())
    sc_put(kern, key, value)
    if key == "net.ipv4.ip_forward":
        sc_put(kern, "net.ipv4.conf.all.forwarding", value)
        sc_put(kern, "net.ipv4.conf.default.forwarding", value)
    if not quiet:
        out("%s = %s\n" % (key, value))


def _parse_conf(path):
    items = []
    try:
        with open(path) as f:
            for raw in f:
                line = raw.strip()
                if not line or line[0] in "#;":
                    continue
                ignore = line.startswith("-")
                if ignore:
                    line = line[1:]
                if "=" not in line:
                    continue
                k, v = line.split("=", 1)
                items.append((k.strip(), v.strip(), ignore))
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        pass
    return items


def system_conf_files():
    """sysctl --system order: files by name across the dirs (earlier dir wins), then /etc/sysctl.conf."""
    chosen = {}
    for d in SYSCTL_DIRS:
        for p in glob.glob(os.path.join(d, "*.conf")):
            chosen.setdefault(os.path.basename(p), p)
    files = [chosen[n] for n in sorted(chosen)]
    if os.path.exists("/etc/sysctl.conf"):
        files.append("/etc/sysctl.conf")
    return files


def sysctl(argv):
    quiet = False
    values_only = False
    names_only = False
    write = False
    show_all = False
    system = False
    load_files = None
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-n", "--values"):
            values_only = True
        elif a in ("-N", "--names"):
            names_only = True
        elif a in ("-q", "--quiet"):
            quiet = True
        elif a in ("-w", "--write"):
            write = True
        elif a in ("-a", "-A", "-X", "--all"):
            show_all = True
        elif a == "--system":
            system = True
        elif a in ("-p", "--load") or a.startswith("--load=") or (a.startswith("-p") and len(a) > 2):
            load_files = load_files or []
            if a.startswith("--load="):
                load_files.append(a.split("=", 1)[1])
            elif len(a) > 2 and a.startswith("-p"):
                load_files.append(a[2:])
            elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                load_files.append(argv[i + 1])
                i += 1
            else:
                load_files.append("/etc/sysctl.conf")
        elif a in ("-e", "--ignore", "-b", "--binary"):
            pass
        elif re.fullmatch(r"-[nNqwaeb]+", a):
            argv = argv[:i] + ["-" + c for c in a[1:]] + argv[i + 1:]
            continue
        elif a.startswith("-"):
            fail("sysctl: unknown option -- '%s'\nUsage:\n sysctl [options] [variable[=value] ...]" % a.lstrip("-"), 255)
        else:
            args.append(a)
        i += 1
    errors = []
    if system or load_files is not None:
        if not common.is_root():
            fail("sysctl: permission denied on key \"net.ipv4.ip_forward\"", 255)
        with common.state(common.KERNEL_JSON, boot_state()) as kern:
            files = system_conf_files() if system else load_files
            for path in files:
                if system and not quiet:
                    out("* Applying %s ...\n" % path)
                if not system and not os.path.exists(path):
                    errors.append("sysctl: cannot open \"%s\": No such file or directory" % path)
                    continue
                for k, v, ignore in _parse_conf(path):
                    _set(kern, k, v, quiet, errors, ignore_missing=ignore)
        for e in errors:
            common.sys.stderr.write(e + "\n")
        return 255 if errors else 0
    if show_all:
        kern = common.kernel_state()
        for k in sc_keys(kern):
            v = sc_get(kern, k)
            if v is not None:
                out(_fmt(k, v, values_only, names_only))
        return 0
    if not args:
        fail("sysctl: no variables specified\nTry `sysctl --help' for more information.", 255)
    writes = [a for a in args if "=" in a]
    if writes and not common.is_root():
        k = _norm_key(writes[0].split("=", 1)[0])
        fail("sysctl: permission denied on key \"%s\"" % k, 255)
    rc = 0
    if writes:
        with common.state(common.KERNEL_JSON, boot_state()) as kern:
            for a in args:
                if "=" in a:
                    k, v = a.split("=", 1)
                    _set(kern, k, v, quiet or values_only, errors)
                else:
                    errors.append("sysctl: \"%s\" must be of the form name=value" % a) if write else None
    kern = common.kernel_state()
    for a in args:
        if "=" in a:
            continue
        if write:
            continue
        k = _norm_key(a)
        v = sc_get(kern, k)
        if v is None:
            errors.append("sysctl: cannot stat %s: No such file or directory" % _proc_path(k))
            continue
        out(_fmt(k, v, values_only, names_only))
    for e in errors:
        common.sys.stderr.write(e + "\n")
    if errors:
        rc = 255
    return rc


def _fmt(k, v, values_only, names_only):
    if values_only:
        return v + "\n"
    if names_only:
        return k + "\n"
    return "%s = %s\n" % (k, v)


# ------------------------------------------------------------------ swap
def fstab_swap_devices(path="/etc/fstab"):
    devs = []
    try:
        with open(path) as f:
            for raw in f:
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "swap":
                    devs.append(parts[0])
    except FileNotFoundError:
        pass
    return devs


def swapoff(argv):
    targets = [a for a in argv if not a.startswith("-")]
    all_ = any(a in ("-a", "--all") for a in argv) or any(re.fullmatch(r"-[av]+", a) and "a" in a for a in argv)
    if not all_ and not targets:
        fail("swapoff: bad usage\nTry 'swapoff --help' for more information.", 1)
    if not common.is_root():
        fail("swapoff: Not superuser.", 1)
    with common.state(common.KERNEL_JSON, boot_state()) as kern:
        if not all_:
            for t in targets:
                if not kern.get("swap") or t not in kern.get("swapDevices", []):
                    fail("swapoff: %s: swapoff failed: Invalid argument" % t, 4)
        kern["swap"] = False
        snapshot = dict(kern)
    refresh_proc(snapshot)
    return 0


def swapon(argv):
    show = not argv or any(a in ("--show", "-s", "--summary") or a.startswith("--show=") for a in argv)
    if show:
        kern = common.kernel_state()
        if kern.get("swap"):
            if "-s" in argv or "--summary" in argv:
                out(render_swaps(kern))
            elif "--noheadings" not in argv:
                out("NAME      TYPE SIZE USED PRIO\n")
                for d in kern.get("swapDevices", []):
                    out("%-9s file   2G   0B   -2\n" % d)
            else:
                for d in kern.get("swapDevices", []):
                    out("%-9s file   2G   0B   -2\n" % d)
        return 0
    if not common.is_root():
        fail("swapon: Not superuser.", 1)
    all_ = "-a" in argv or "--all" in argv
    targets = [a for a in argv if not a.startswith("-")]
    with common.state(common.KERNEL_JSON, boot_state()) as kern:
        devs = fstab_swap_devices() if all_ else targets
        if not all_:
            for t in targets:
                if not os.path.exists(t) and t not in kern.get("swapDevices", []):
                    fail("swapon: cannot open %s: No such file or directory" % t, 4)
        if devs:
            kern["swapDevices"] = sorted(set(kern.get("swapDevices", [])) | set(devs))
            kern["swap"] = True
        snapshot = dict(kern)
    refresh_proc(snapshot)
    return 0


def reset_proc_sys():
    """At boot: every /proc/sys value written since `up` (the overlay's upper files) returns to the copy."""
    if not common.proc_sys_mirror():
        return
    upper = os.path.join(common.host_lab_dir(), "procsys", "upper")
    lower = os.path.join(common.lab_dir(), "procsys")
    for root, dirs, files in os.walk(upper, topdown=False):
        rel = os.path.relpath(root, upper)
        for f in files:
            r = os.path.normpath(os.path.join(rel, f))
            if r == "kernel/hostname":
                continue
            src = os.path.join(lower, r)
            dst = os.path.join("/proc/sys", r)
            try:
                if os.path.isfile(src):
                    with open(src) as a, open(dst, "w") as b:
                        b.write(a.read())
                elif os.path.isfile(dst):
                    os.unlink(dst)
            except OSError:
                pass
        if rel != "." and not os.path.isdir(os.path.join(lower, rel)):
            try:
                os.rmdir(os.path.join("/proc/sys", rel))
            except OSError:
                pass


def boot(kern_old=None):
    """Kernel state after a (re)boot: modules from /etc/modules-load.d, sysctl from sysctl.d, swap per fstab."""
    devs = fstab_swap_devices()
    kern = boot_state(swap_devices=devs or (kern_old or {}).get("swapDevices"), swap=bool(devs))
    if kern_old:
        # same kernel: keep the key set it had at first boot (minus module-provided keys)
        base = {k: v for k, v in kern_old.get("baseSysctl", {}).items()}
        if base:
            kern["sysctl"] = dict(base)
    kern["baseSysctl"] = dict(kern["sysctl"])
    reset_proc_sys()
    for d in ("/etc/modules-load.d", "/run/modules-load.d", "/usr/lib/modules-load.d"):
        for p in sorted(glob.glob(os.path.join(d, "*.conf"))):
            try:
                with open(p) as f:
                    for raw in f:
                        m = raw.strip()
                        if m and m[0] not in "#;":
                            mod = ALIASES.get(m, m.replace("-", "_"))
                            if mod in KNOWN_MODULES:
                                _load(kern, mod)
            except OSError:
                pass
    errors = []
    for path in system_conf_files():
        for k, v, ignore in _parse_conf(path):
            _set(kern, k, v, True, errors, ignore_missing=True)
    return kern


def main(tool, argv):
    return {"modprobe": modprobe, "lsmod": lsmod, "sysctl": sysctl, "swapoff": swapoff,
            "swapon": swapon}[tool](argv)
