"""ip, iptables, ip6tables, iptables-save: fully simulated (the hosts share the real network namespace —
never touch it). Rules and extra links/addresses/routes are recorded in /var/lib/labnode/net.json."""
import shlex

from labnode import common

NET_JSON = common.HOST_STATE + "/net.json"
TABLES = {"filter": ["INPUT", "FORWARD", "OUTPUT"], "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
          "mangle": ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"], "raw": ["PREROUTING", "OUTPUT"]}
VERSION = "iptables v1.8.7 (nf_tables)"


def empty():
    return {"iptables": {}, "ip6tables": {}, "links": [], "addrs": [], "routes": []}


def fam_state(st, tool):
    fam = "ip6tables" if tool.startswith("ip6") else "iptables"
    tabs = st.setdefault(fam, {})
    for t, chains in TABLES.items():
        tab = tabs.setdefault(t, {"chains": {}, "policy": {}})
        for c in chains:
            tab["chains"].setdefault(c, [])
            tab["policy"].setdefault(c, "ACCEPT")
    return tabs


def iptables(tool, argv):
    if argv[:1] in (["--version"], ["-V"]):
        common.out(VERSION + "\n")
        return 0
    if not common.is_root():
        common.fail("%s: Could not fetch rule set generation id: Permission denied (you must be root)" % VERSION, 4)
    table = "filter"
    args = list(argv)
    if "-t" in args:
        i = args.index("-t")
        table = args[i + 1]
        del args[i:i + 2]
    elif "--table" in args:
        i = args.index("--table")
        table = args[i + 1]
        del args[i:i + 2]
    for flag in ("-w", "--wait", "-n", "--numeric", "-v", "--verbose", "--line-numbers", "-x"):
        while flag in args:
            args.remove(flag)
    if table not in TABLES:
        common.fail("%s: can't initialize %s table `%s': Table does not exist (do you need to insmod?)\n"
                    "Perhaps iptables or your kernel needs to be upgraded." % (VERSION, tool, table), 3)
    if not args:
        common.fail("%s: no command specified\nTry `%s -h' or '%s --help' for more information." % (VERSION, tool, tool), 2)
    cmd = args[0]
    chain = args[1] if len(args) > 1 and not args[1].startswith("-") else None
    rule = args[2:] if chain else args[1:]
    if cmd in ("-L", "--list", "-S", "--list-rules"):
        tabs = fam_state(common.load_json(NET_JSON, empty()) or empty(), tool)
        tab = tabs[table]
        chains = [chain] if chain else list(tab["chains"])
        for c in chains:
            if c not in tab["chains"]:
                common.fail("%s: chain `%s' in table `%s' is incompatible, use 'nft' tool." % (VERSION, c, table)
                            if False else "iptables: No chain/target/match by that name.", 1)
            if cmd in ("-S", "--list-rules"):
                if c in TABLES[table]:
                    common.out("-P %s %s\n" % (c, tab["policy"].get(c, "ACCEPT")))
                else:
                    common.out("-N %s\n" % c)
                for r in tab["chains"][c]:
                    common.out("-A %s %s\n" % (c, r))
            else:
                common.out("Chain %s (policy %s)\ntarget     prot opt source               destination\n"
                           % (c, tab["policy"].get(c, "ACCEPT")))
                for r in tab["chains"][c]:
                    common.out("%s\n" % r)
                common.out("\n")
        return 0
    with common.state(NET_JSON, empty()) as st:
        tab = fam_state(st, tool)[table]
        spec = " ".join(shlex.quote(x) for x in rule)
        if cmd in ("-N", "--new-chain"):
            if chain in tab["chains"]:
                common.fail("%s: Chain already exists." % tool, 1)
            tab["chains"][chain] = []
        elif cmd in ("-X", "--delete-chain"):
            for c in ([chain] if chain else [c for c in tab["chains"] if c not in TABLES[table]]):
                tab["chains"].pop(c, None)
        elif cmd in ("-F", "--flush"):
            for c in ([chain] if chain else list(tab["chains"])):
                if c in tab["chains"]:
                    tab["chains"][c] = []
        elif cmd in ("-P", "--policy"):
            tab["policy"][chain] = rule[0] if rule else "ACCEPT"
        elif cmd in ("-A", "--append", "-I", "--insert", "-D", "--delete", "-C", "--check"):
            if chain not in tab["chains"]:
                common.fail("%s: No chain/target/match by that name." % tool, 1)
            rules = tab["chains"][chain]
            if cmd in ("-A", "--append"):
                rules.append(spec)
            elif cmd in ("-I", "--insert"):
                pos = 0
                if rule and rule[0].isdigit():
                    pos = int(rule[0]) - 1
                    spec = " ".join(shlex.quote(x) for x in rule[1:])
                rules.insert(pos, spec)
            elif cmd in ("-D", "--delete"):
                if rule and rule[0].isdigit() and len(rule) == 1:
                    idx = int(rule[0]) - 1
                    if idx >= len(rules):
                        common.fail("%s: Index of deletion too big." % tool, 1)
                    del rules[idx]
                elif spec in rules:
                    rules.remove(spec)
                else:
                    common.fail("%s: Bad rule (does a matching rule exist in that chain?)." % tool, 1)
            else:
                if spec not in rules:
                    common.fail("%s: Bad rule (does a matching rule exist in that chain?)." % tool, 1)
        else:
            common.fail("%s: unknown option \"%s\"\nTry `%s -h' or '%s --help' for more information."
                        % (VERSION, cmd, tool, tool), 2)
    return 0


def iptables_save(argv):
    if not common.is_root():
        common.fail("iptables-save v1.8.7 (nf_tables): Could not fetch rule set generation id: Permission denied "
                    "(you must be root)", 4)
    tabs = fam_state(common.load_json(NET_JSON, empty()) or empty(), "iptables")
    common.out("# Generated by iptables-save v1.8.7 on lab\n")
    for t, tab in tabs.items():
        common.out("*%s\n" % t)
        for c in tab["chains"]:
            common.out(":%s %s [0:0]\n" % (c, tab["policy"].get(c, "-") if c in TABLES[t] else "-"))
        for c, rules in tab["chains"].items():
            for r in rules:
                common.out("-A %s %s\n" % (c, r))
        common.out("COMMIT\n")
    return 0


def ip(argv):
    info = common.host_info()
    addr = common.host_address()
    net = addr.rsplit(".", 1)[0]
    mac = "0a:%02x:%02x:%02x:%02x:01" % tuple(int(x) for x in (addr.split(".") + ["0"])[:4])
    args = [a for a in argv if a not in ("-4", "-6", "-o", "-oneline", "-br", "-brief", "-j", "-json", "-d")]
    if not args:
        common.fail("Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }", 255)
    obj, rest = args[0], args[1:]
    write = rest[:1] and rest[0] in ("add", "del", "delete", "set", "replace", "change", "flush", "append")
    if write:
        if not common.is_root():
            common.fail("RTNETLINK answers: Operation not permitted", 2)
        with common.state(NET_JSON, empty()) as st:
            key = {"link": "links", "l": "links", "addr": "addrs", "address": "addrs", "a": "addrs",
                   "route": "routes", "r": "routes", "ro": "routes"}.get(obj)
            if key is None:
                common.fail("Object \"%s\" is unknown, try \"ip help\"." % obj, 1)
            entry = " ".join(rest[1:])
            if rest[0] in ("add", "append", "replace", "set", "change"):
                if rest[0] == "add" and entry in st[key]:
                    common.fail("RTNETLINK answers: File exists", 2)
                if entry not in st[key]:
                    st[key].append(entry)
            else:
                if entry in st[key]:
                    st[key].remove(entry)
                elif rest[0] != "flush":
                    common.fail("RTNETLINK answers: No such process" if key == "routes"
                                else "Cannot find device \"%s\"" % (rest[-1] if rest else ""), 2 if key == "routes" else 1)
        return 0
    st = common.load_json(NET_JSON, empty()) or empty()
    if obj in ("addr", "address", "a"):
        common.out("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n"
                   "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n"
                   "       valid_lft forever preferred_lft forever\n"
                   "2: ens5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc mq state UP group default qlen 1000\n"
                   "    link/ether %s brd ff:ff:ff:ff:ff:ff\n    altname enp0s5\n"
                   "    inet %s/24 metric 100 brd %s.255 scope global dynamic ens5\n"
                   "       valid_lft 3342sec preferred_lft 3342sec\n" % (mac, addr, net))
        for a in st.get("addrs", []):
            common.out("    inet %s\n" % a)
        return 0
    if obj in ("link", "l"):
        common.out("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default "
                   "qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
                   "2: ens5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc mq state UP mode DEFAULT group default "
                   "qlen 1000\n    link/ether %s brd ff:ff:ff:ff:ff:ff\n" % mac)
        for i, l in enumerate(st.get("links", []), 3):
            common.out("%d: %s\n" % (i, l))
        return 0
    if obj in ("route", "r", "ro"):
        if rest[:1] == ["get"]:
            common.out("%s via %s.1 dev ens5 src %s uid 0 \n    cache \n" % (rest[1] if len(rest) > 1 else "0.0.0.0",
                                                                         net, addr))
            return 0
        common.out("default via %s.1 dev ens5 proto dhcp src %s metric 100 \n%s.0/24 dev ens5 proto kernel scope "
                   "link src %s metric 100 \n" % (net, addr, net, addr))
        for r in st.get("routes", []):
            common.out("%s\n" % r)
        return 0
    if obj in ("neigh", "n", "rule", "netns", "monitor"):
        return 0
    common.fail("Object \"%s\" is unknown, try \"ip help\"." % obj, 255)


def main(tool, argv):
    if tool == "ip":
        return ip(argv)
    if tool == "iptables-save":
        return iptables_save(argv)
    return iptables(tool, argv)
