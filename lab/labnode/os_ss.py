"""ss / netstat: the hosts share the machine's network namespace, so the real tools would show every other
host's listeners. These read /proc/net/tcp{,6} and show only the sockets this host could have: bound to its
own address, to a wildcard, or to 127.0.0.1/::1."""
import ipaddress
import os
import re
import socket
import struct

from labnode import common

STATES = {"01": "ESTAB", "02": "SYN-SENT", "03": "SYN-RECV", "04": "FIN-WAIT-1", "05": "FIN-WAIT-2",
          "06": "TIME-WAIT", "07": "UNCONN", "08": "CLOSE-WAIT", "09": "LAST-ACK", "0A": "LISTEN", "0B": "CLOSING"}


def _addr(hexaddr, v6):
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if v6:
        raw = b"".join(struct.pack("<I", w) for w in struct.unpack(">4I", raw))
        a = socket.inet_ntop(socket.AF_INET6, raw)
    else:
        a = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(ip, 16)))
    return a, int(port, 16)


def _mine(addr):
    if addr in ("0.0.0.0", "::", "127.0.0.1", "::1", common.host_address()):
        return True
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        return _mine(str(ip.ipv4_mapped))
    return False  # other loopback addresses are the other lab hosts; other addresses are the machine's


def sockets(v4=True, v6=True):
    out = []
    for path, is6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        if (is6 and not v6) or (not is6 and not v4):
            continue
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10:
                continue
            la, lp = _addr(f[1], is6)
            ra, rp = _addr(f[2], is6)
            if f[3] == "0A":
                if not _mine(la):
                    continue
            elif la not in (common.host_address(), "::ffff:" + common.host_address()):
                continue  # connections from 127.0.0.1 are the machine's (and every client's) own
            rxq, txq = f[4].split(":")
            out.append({"state": STATES.get(f[3], f[3]), "local": la, "lport": lp, "remote": ra, "rport": rp,
                        "recvq": int(rxq, 16), "sendq": int(txq, 16), "inode": f[9], "v6": is6})
    return out


def _owners():
    """socket inode -> [(comm, pid, fd)] for the processes this host can see (its own pid namespace)."""
    owners = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            comm = open("/proc/%s/comm" % d).read().strip()
            for fd in os.listdir("/proc/%s/fd" % d):
                try:
                    t = os.readlink("/proc/%s/fd/%s" % (d, fd))
                except OSError:
                    continue
                m = re.match(r"socket:\[(\d+)\]", t)
                if m:
                    owners.setdefault(m.group(1), []).append((comm, int(d), int(fd)))
        except OSError:
            continue
    return owners


def _fmt(addr, port, v6):
    if addr in ("0.0.0.0",):
        a = "0.0.0.0"
    elif addr == "::":
        a = "[::]" if port else "*"
    else:
        a = "[%s]" % addr if v6 else addr
    return "%s:%s" % (a, port if port else "*")


def parse_filter(words):
    """Supports `sport = :N`, `sport == :N`, `dport = :N`, with optional parentheses."""
    text = " ".join(words).replace("(", " ").replace(")", " ")
    conds = []
    for m in re.finditer(r"\b([sd]port)\s*(?:=|==|eq)\s*:?(\d+)", text):
        conds.append((m.group(1), int(m.group(2))))
    return conds


def ss(argv):
    listening = all_ = tcp = udp = numeric = procs = False
    header = True
    v4 = v6 = True
    words = []
    for a in argv:
        if a.startswith("--"):
            opt = a[2:]
            listening |= opt == "listening"
            all_ |= opt == "all"
            tcp |= opt == "tcp"
            udp |= opt == "udp"
            numeric |= opt == "numeric"
            procs |= opt == "processes"
            header &= opt != "no-header"
            if opt == "ipv4":
                v6 = False
            if opt == "ipv6":
                v4 = False
        elif a.startswith("-") and len(a) > 1:
            for c in a[1:]:
                listening |= c == "l"
                all_ |= c == "a"
                tcp |= c == "t"
                udp |= c == "u"
                numeric |= c == "n"
                procs |= c == "p"
                header &= c != "H"
                if c == "4":
                    v6 = False
                if c == "6":
                    v4 = False
        else:
            words.append(a)
    conds = parse_filter(words)
    rows = []
    if udp and not tcp:
        rows = []
    else:
        for s in sockets(v4, v6):
            if listening and s["state"] != "LISTEN":
                continue
            if not listening and not all_ and s["state"] == "LISTEN":
                continue
            ok = True
            for k, port in conds:
                if (k == "sport" and s["lport"] != port) or (k == "dport" and s["rport"] != port):
                    ok = False
            if ok:
                rows.append(s)
    owners = _owners() if procs else {}
    if header:
        common.out("%-6s %-6s %-6s %25s %20s%s\n" % ("State", "Recv-Q", "Send-Q", "Local Address:Port",
                                                    "Peer Address:Port", "Process" if procs else ""))
    for s in rows:
        proc = ""
        if procs and s["inode"] in owners:
            proc = "users:(%s)" % ",".join('("%s",pid=%d,fd=%d)' % o for o in owners[s["inode"]])
        common.out("%-6s %-6d %-6d %25s %20s %s\n" % (s["state"], s["recvq"], s["sendq"],
                                                     _fmt(s["local"], s["lport"], s["v6"]),
                                                     _fmt(s["remote"], s["rport"], s["v6"]), proc))
    return 0


def netstat(argv):
    flags = "".join(a[1:] for a in argv if a.startswith("-") and not a.startswith("--"))
    listening = "l" in flags
    procs = "p" in flags
    owners = _owners() if procs else {}
    common.out("Active Internet connections (%s)\nProto Recv-Q Send-Q Local Address           Foreign Address  "
               "       State       %s\n" % ("only servers" if listening else "w/o servers",
                                             "PID/Program name" if procs else ""))
    for s in sockets():
        if listening != (s["state"] == "LISTEN"):
            continue
        p = ""
        if procs and s["inode"] in owners:
            comm, pid, _ = owners[s["inode"]][0]
            p = "%d/%s" % (pid, comm)
        state = {"LISTEN": "LISTEN", "ESTAB": "ESTABLISHED"}.get(s["state"], s["state"])
        common.out("%-5s %6d %6d %-23s %-23s %-11s %s\n" % ("tcp6" if s["v6"] else "tcp", s["recvq"], s["sendq"],
                                                          "%s:%d" % (s["local"], s["lport"]),
                                                          "%s:%s" % (s["remote"], s["rport"] or "*"), state, p))
    return 0


def main(tool, argv):
    return netstat(argv) if tool == "netstat" else ss(argv)
