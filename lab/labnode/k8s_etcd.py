"""etcd in the lab: each control plane's etcd static pod (`etcd-daemon`, started by the kubelet from
/etc/kubernetes/manifests/etcd.yaml) listens on ADDR:2379 (clients, TLS with the etcd server certificate, client
certificates of the etcd CA required) and ADDR:2380 (peers: liveness, and the registry's replication). The data is
the cluster registry (k8s_store) one control plane's API server owns (the first one, until it is gone);
membership lives there too (st["etcd"]["members"]). The owner sends every write to the other started members,
whose etcd keeps it as <data-dir>/store.json: when the owner's host is gone, a member takes over with it
(k8s_apiserver.Server.failover).

`etcdctl` (v3.6, from the etcd release tarball): snapshot save, member list/add/remove, endpoint health, version.
`etcdutl`: snapshot status / restore (etcd 3.6 removed them from etcdctl). A snapshot file is the registry at that
moment with its sha256 at the end (as etcd appends one to a bbolt snapshot); status and restore check it.
Quorum: the API server refuses writes ("etcdserver: request timed out") while at most half the members answer on
their peer port; member add/remove are refused when they would leave the cluster unhealthy (etcd's strict
reconfiguration check)."""
import hashlib
import json
import os
import random
import socket
import ssl
import sys
import tempfile
import threading
import time
import zlib

from . import common

ETCD_VERSION = "3.6.4"
MAGIC = b"LAB-ETCD-SNAPSHOT/1\n"
PKI = "/etc/kubernetes/pki"


# ------------------------------------------------------------------ registry side (runs in the API server)
def members(st):
    return ((st.get("etcd") or {}).get("members")) or []


def init_membership(st, name, address):
    st["etcd"] = {"clusterID": "%016x" % random.getrandbits(64), "members": []}
    add_member(st, name, ["https://%s:2380" % address], ["https://%s:2379" % address])


def add_member(st, name, peer_urls, client_urls=None, learner=False):
    m = {"id": "%016x" % random.getrandbits(64), "name": name or "", "peerURLs": list(peer_urls),
         "clientURLs": list(client_urls or []), "isLearner": bool(learner)}
    st.setdefault("etcd", {"clusterID": "%016x" % random.getrandbits(64), "members": []})["members"].append(m)
    return m


_probe_cache = {}


def peer_host(m):
    """The address of a member (its first peer URL's host)."""
    url = (m.get("peerURLs") or [""])[0]
    return url.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")


def peer_alive(url):
    """A member answers when something listens on its peer URL (its etcd static pod runs). Probes are kept for a
    second (etcd's failure detection is not instant either), until the member publishes (`forget_probe`)."""
    hit = _probe_cache.get(url)
    if hit and time.time() - hit[1] < 1.0:
        return hit[0]
    host, port = url.split("://", 1)[-1].rsplit(":", 1)
    ok = False
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=0.3):
            ok = True
    except (OSError, ValueError):
        ok = False
    _probe_cache[url] = (ok, time.time())
    return ok


def forget_probe(urls):
    """A member that just published runs: a probe from before it started (a learner's peer port probed while its
    etcd was not up yet) must not make a promoted member count as down, which would leave a two-member cluster
    without quorum for a second where etcd promotes a learner only once it is connected and in sync."""
    for u in urls:
        _probe_cache.pop(u, None)


def healthy(ms):
    return [m for m in ms if not m.get("isLearner") and m.get("name") and any(peer_alive(u) for u in m["peerURLs"])]


def has_quorum(ms):
    voters = [m for m in ms if not m.get("isLearner")]
    return not voters or len(healthy(voters)) * 2 > len(voters)


class NoQuorum(Exception):
    message = "etcdserver: request timed out"


def op(st, name, a):
    """etcd_* operations of the registry (authenticated with an etcd client certificate)."""
    ms = members(st)
    if name == "etcd_snapshot":
        return {"store": st, "revision": st.get("resourceVersion", 0)}
    if name == "etcd_member_list":
        return {"clusterID": (st.get("etcd") or {}).get("clusterID", ""),
                "members": [dict(m, started=bool(m.get("name"))) for m in ms]}
    if name == "etcd_health":
        return {"quorum": has_quorum(ms)}
    voters = [m for m in ms if not m.get("isLearner")]
    if name == "etcd_publish":
        # a member's etcd, once running, publishes its name: from then on it is "started". An etcd whose data
        # directory belongs to another cluster (a member of the cluster before a snapshot restore, its data not
        # wiped) is refused by its peers, as in etcd: it never starts in this one.
        cid = (st.get("etcd") or {}).get("clusterID", "")
        if a.get("clusterID") and a["clusterID"] != cid:
            raise ValueError("request cluster ID mismatch (local cluster %s, remote cluster %s): this member's data "
                             "directory belongs to another etcd cluster" % (a["clusterID"], cid))
        if a.get("fresh"):
            # an etcd on an empty data directory starts from its flags (etcd's bootstrap checks)
            pairs = [kv.split("=", 1) for kv in (a.get("initialCluster") or "").split(",") if "=" in kv]
            if not any(n == a.get("name") and u == a.get("peerURL") for n, u in pairs):
                raise ValueError('couldn\'t find local name "%s" in the initial cluster configuration'
                                 % a.get("name"))
            if a.get("initialClusterState") != "existing":
                raise ValueError("request cluster ID mismatch: --initial-cluster-state=new on an empty data directory "
                                 "bootstraps a new etcd cluster of its own instead of joining this one")
            urls = sorted(u for _, u in pairs)
            have = sorted(u for m in ms for u in m["peerURLs"])
            if urls != have:
                raise ValueError("error validating peerURLs {ClusterID:%s Members:[%s]}: member count is unequal"
                                 % (cid, " ".join(have)) if len(urls) != len(have) else
                                 "error validating peerURLs {ClusterID:%s Members:[%s]}: unmatched member while "
                                 "checking PeerURLs" % (cid, " ".join(have)))
        for m in ms:
            if a.get("peerURL") in m["peerURLs"] and (not m.get("name") or m.get("isLearner")):
                m["name"] = m.get("name") or a.get("name") or ""
                m["clientURLs"] = [a["peerURL"].replace(":2380", ":2379")]
                m["isLearner"] = False          # a learner that runs is promoted (kubeadm's learner mode)
                forget_probe(m["peerURLs"])
                st["resourceVersion"] += 1
                return {"published": True, "member": True, "clusterID": cid}
        return {"published": False, "clusterID": cid,
                "member": any(a.get("peerURL") in m["peerURLs"] and m.get("name") for m in ms)}
    if name == "etcd_member_add":
        if any(u in m["peerURLs"] for m in ms for u in a["peerURLs"]):
            raise ValueError("etcdserver: Peer URLs already exists")
        if not a.get("learner"):
            # etcd's strict reconfiguration check counts started members (those that published a name);
            # adding a second member to a one-member cluster is always allowed
            started, after = sum(1 for m in voters if m.get("name")), len(voters) + 1
            if not (started == 1 and after == 2) and started < after // 2 + 1:
                raise ValueError("etcdserver: unhealthy cluster")
        m = add_member(st, "", a["peerURLs"], learner=a.get("learner"))
        st["resourceVersion"] += 1
        return {"member": m, "clusterID": st["etcd"]["clusterID"], "members": members(st)}
    if name == "etcd_member_remove":
        m = next((m for m in ms if m["id"] == a["id"]), None)
        if m is None:
            raise ValueError("etcdserver: member not found")
        rest = [x for x in voters if x is not m]
        if rest and len(healthy(rest)) < len(rest) // 2 + 1:
            raise ValueError("etcdserver: unhealthy cluster")
        ms.remove(m)
        st["resourceVersion"] += 1
        return {"clusterID": st["etcd"]["clusterID"]}
    raise ValueError("unknown etcd operation %s" % name)


def member_started(st, name, address):
    """A joining control plane's etcd: kubeadm adds it as a learner (non-voting: the cluster keeps its quorum
    while the new etcd starts) and promotes it once it runs (its first publish)."""
    url = "https://%s:2380" % address
    for m in members(st):
        if url in m["peerURLs"]:
            m["name"] = name
            m["clientURLs"] = ["https://%s:2379" % address]
            return
    add_member(st, name, [url], ["https://%s:2379" % address], learner=True)


# ------------------------------------------------------------------ the etcd static pod
def daemon(argv):
    flags = dict(x[2:].split("=", 1) for x in argv if x.startswith("--") and "=" in x)
    addr = flags.get("address") or common.host_address()
    peer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    peer.bind((addr, 2380))
    peer.listen(64)
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    cli.bind((addr, 2379))
    cli.listen(64)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(flags.get("cert-file", PKI + "/etcd/server.crt"), flags.get("key-file", PKI + "/etcd/server.key"))
    ctx.load_verify_locations(flags.get("trusted-ca-file", PKI + "/etcd/ca.crt"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= 0x200000        # X509_V_FLAG_NO_CHECK_TIME: validity on the lab clock, below

    def peers():
        while True:
            try:
                c, _ = peer.accept()
            except OSError:
                return
            threading.Thread(target=replica, args=(c,), daemon=True).start()

    def replica(c):
        """A connection on the peer port: a liveness probe (nothing sent), or the owner's copy of the registry,
        kept as <data-dir>/store.json once this member is a started member of the same cluster (an etcd of
        another cluster, or not started yet, refuses it)."""
        try:
            c.settimeout(10)
            f = c.makefile("rb")
            head = f.readline(4096)
            if not head:
                return
            h = json.loads(head)
            body = f.read(int(h.get("size", 0)))
            ddir = flags.get("data-dir")
            if h.get("op") != "replicate" or len(body) != h.get("size") or not ddir:
                return
            try:
                with open(os.path.join(ddir, "member", "lab-cluster-id")) as idf:
                    mine = idf.read().strip()
            except OSError:
                return
            if not mine or h.get("clusterID") != mine:
                return
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=ddir)
            with os.fdopen(fd, "wb") as out:
                out.write(body + b"\n")
            os.chmod(tmp, 0o600)
            os.rename(tmp, os.path.join(ddir, "store.json"))
        except (OSError, ValueError):
            pass
        finally:
            c.close()

    def serve(c):
        try:
            c.settimeout(10)
            s = ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write('{"level":"warn","msg":"rejected connection","error":"%s"}\n' % e)
            sys.stderr.flush()
            c.close()
            return
        try:
            f = s.makefile("rwb")
            req = json.loads(f.readline() or b"{}")
            from . import k8s_pki as PKIM
            der = s.getpeercert(binary_form=True)
            msg = PKIM.expired_message(der, common.now()) if der else "tls: certificate required"
            if msg:
                rep = {"error": "remote error: tls: bad certificate (%s)" % msg}
            else:
                rep = forward(addr, req, der)
            f.write(json.dumps(rep).encode() + b"\n")
            f.flush()
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass

    def publish():
        import base64
        from . import k8s_client as C
        name, url = flags.get("name") or "", "https://%s:2380" % addr
        # the cluster this data directory belongs to, recorded once this etcd is a started member (as etcd's
        # WAL holds its cluster and member IDs): a directory from before a restore stays in the old cluster
        idfile = os.path.join(flags["data-dir"], "member", "lab-cluster-id") if flags.get("data-dir") else None
        try:
            with open(PKI + "/etcd/peer.crt") as f:
                cert = base64.b64encode(f.read().encode()).decode()
            with open(PKI + "/ca.crt") as f:
                ca = f.read()
        except OSError:
            return
        warned, last = 0.0, None
        while True:
            mine = None
            try:
                with open(idfile) as f:
                    mine = f.read().strip() or None
            except (OSError, TypeError):
                pass
            # an empty data directory (no registry, no member directory): etcd bootstraps from its flags
            fresh = bool(flags.get("data-dir")) and not mine and not os.path.exists(
                os.path.join(flags["data-dir"], "store.json")) and not os.path.isdir(
                os.path.join(flags["data-dir"], "member"))
            try:
                res = C.call("https://%s:6443" % addr, "etcd_publish",
                             {"name": name, "peerURL": url, "clusterID": mine, "fresh": fresh,
                              "initialCluster": flags.get("initial-cluster", ""),
                              "initialClusterState": flags.get("initial-cluster-state", "new")}, timeout=5, ca=ca,
                             headers={"X-Lab-Etcd-Cert": cert})
                if idfile and not mine and res.get("member") and res.get("clusterID"):
                    os.makedirs(os.path.dirname(idfile), exist_ok=True)
                    common.write_file(idfile, res["clusterID"] + "\n", 0o600)
            except C.ClientError as e:
                if e.reason != "Unauthorized" and "etcdserver: not capable" not in e.message \
                        and (time.time() - warned > 10 or e.message != last):
                    warned, last = time.time(), e.message
                    sys.stderr.write('{"level":"error","msg":"failed to publish local member to cluster",'
                                     '"error":%s}\n' % json.dumps(e.message))
                    sys.stderr.flush()
            except OSError:
                pass
            time.sleep(2)

    threading.Thread(target=peers, daemon=True).start()
    threading.Thread(target=publish, daemon=True).start()
    print("etcd (lab) %s serving clients on https://%s:2379, peers on https://%s:2380" % (ETCD_VERSION, addr, addr),
          flush=True)
    while True:
        c, _ = cli.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def forward(addr, req, der):
    """An etcd client request, answered from the registry (through this control plane's API server)."""
    import base64
    from . import k8s_client as C
    try:
        with open(PKI + "/ca.crt") as f:
            ca = f.read()
        pem = ssl.DER_cert_to_PEM_cert(der)
        res = C.call("https://%s:6443" % addr, req.get("op", ""), req.get("args") or {}, timeout=20, ca=ca,
                     headers={"X-Lab-Etcd-Cert": base64.b64encode(pem.encode()).decode()})
        return {"result": res}
    except C.ClientError as e:
        return {"error": e.message}
    except OSError as e:
        return {"error": str(e)}


# ------------------------------------------------------------------ etcdctl
def _log(level, msg, **kv):
    d = {"level": level, "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(common.now())), "msg": msg}
    d.update(kv)
    sys.stderr.write(json.dumps(d) + "\n")


def _die(msg, code=1):
    sys.stderr.write("Error: %s\n" % msg)
    sys.stderr.flush()
    sys.exit(code)


def _parse(argv, value_flags):
    flags, args = {}, []
    i = 0
    while i < len(argv):
        x = argv[i]
        if x.startswith("--") and "=" in x:
            k, v = x[2:].split("=", 1)
            flags[k] = v
        elif x.startswith("--") and x[2:] in value_flags and i + 1 < len(argv):
            flags[x[2:]] = argv[i + 1]
            i += 1
        elif x in ("-w",) and i + 1 < len(argv):
            flags["write-out"] = argv[i + 1]
            i += 1
        elif x.startswith("--"):
            flags[x[2:]] = "true"
        else:
            args.append(x)
        i += 1
    return flags, args


CTL_FLAGS = {"endpoints", "cacert", "cert", "key", "write-out", "command-timeout", "dial-timeout", "peer-urls", "user",
             "password"}


def request(flags, op, args=None):
    env = os.environ
    ep = (flags.get("endpoints") or env.get("ETCDCTL_ENDPOINTS") or "127.0.0.1:2379").split(",")[0]
    cacert = flags.get("cacert") or env.get("ETCDCTL_CACERT")
    cert = flags.get("cert") or env.get("ETCDCTL_CERT")
    key = flags.get("key") or env.get("ETCDCTL_KEY")
    hostport = ep.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, "2379"
    # 127.0.0.1 is the machine's, shared by every lab host: a host's own etcd answers on its own address
    target = common.host_address() if host in ("127.0.0.1", "localhost") else host
    plain = ep.startswith("http://")

    def deadline(err):
        _log("warn", "retrying of unary invoker failed", target="etcd-endpoints://0xc0000/%s" % hostport,
             attempt=0, error="rpc error: code = DeadlineExceeded desc = latest balancer error: last connection "
                              "error: connection error: desc = \"%s\"" % err)
        _die("context deadline exceeded")

    try:
        raw = socket.create_connection((target, int(port)), timeout=5)
    except (OSError, ValueError) as e:
        deadline("transport: Error while dialing: dial tcp %s: connect: connection refused" % hostport)
    if plain:
        raw.close()
        deadline("error reading server preface: EOF")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = True
    ctx.verify_flags |= 0x200000
    try:
        if cacert:
            ctx.load_verify_locations(cacert)
        else:
            ctx.load_default_certs()
        if cert or key:
            ctx.load_cert_chain(cert, key)
    except FileNotFoundError as e:
        _die("open %s: no such file or directory" % e.filename)
    except ssl.SSLError as e:
        if "KEY_VALUES_MISMATCH" in str(e):
            _die("tls: private key does not match public key")
        _die(str(e))
    try:
        s = ctx.wrap_socket(raw, server_hostname=host)
    except ssl.SSLCertVerificationError as e:
        deadline("transport: authentication handshake failed: tls: failed to verify certificate: x509: %s" % (
            "certificate signed by unknown authority" if e.verify_code in (19, 20, 21) else e.verify_message))
    except (ssl.SSLError, OSError) as e:
        deadline("transport: authentication handshake failed: %s" % e)
    from . import k8s_pki as PKIM
    msg = PKIM.expired_message(s.getpeercert(binary_form=True), common.now())
    if msg:
        deadline("transport: authentication handshake failed: tls: failed to verify certificate: " + msg)
    try:
        f = s.makefile("rwb")
        f.write(json.dumps({"op": op, "args": args or {}}).encode() + b"\n")
        f.flush()
        line = f.readline()
    except (OSError, ssl.SSLError) as e:
        deadline("transport: authentication handshake failed: %s" % e)
    if not line:
        deadline("transport: authentication handshake failed: remote error: tls: certificate required")
    rep = json.loads(line)
    if "error" in rep:
        err = rep["error"]
        if "bad certificate" in err or "certificate required" in err:
            deadline("transport: authentication handshake failed: " + err)
        _die(err)
    return rep["result"]


def _write_snapshot(path, store):
    body = zlib.compress(json.dumps(store, sort_keys=True, separators=(",", ":")).encode())
    data = MAGIC + body
    part = path + ".part"
    with open(part, "wb") as f:
        f.write(data + hashlib.sha256(data).digest())
        f.flush()
        os.fsync(f.fileno())
    os.chmod(part, 0o600)
    os.rename(part, path)
    return len(data) + 32


def read_snapshot(path, check_hash=True):
    """The registry in a snapshot file; ValueError with etcd's words for a corrupt or truncated one."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ValueError("stat %s: no such file or directory" % path)
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 32:
        raise ValueError("invalid database")
    body, tail = data[:-32], data[-32:]
    if check_hash and hashlib.sha256(body).digest() != tail:
        raise ValueError("snapshot file integrity check failed. 1 errors found.\nsha256 checksum mismatch "
                         "(expected %s)" % tail.hex())
    try:
        store = json.loads(zlib.decompress(body[len(MAGIC):]))
    except (zlib.error, ValueError):
        raise ValueError("invalid database")
    return store, data


def etcdctl(argv):
    flags, args = _parse(argv, CTL_FLAGS)
    out = flags.get("write-out", "simple")
    if not args or args[0] in ("help", "--help"):
        common.out("NAME:\n\tetcdctl - A simple command line client for etcd3.\n\nCOMMANDS:\n\tendpoint health\n\t"
                   "member add|list|remove\n\tsnapshot save\n\tversion\n")
        return 0
    if args[0] == "version":
        common.out("etcdctl version: %s\nAPI version: 3.6\n" % ETCD_VERSION)
        return 0
    if args[:1] == ["snapshot"]:
        if args[1:2] != ["save"]:
            _die('unknown command "%s" for "etcdctl snapshot"' % (args[1] if len(args) > 1 else ""))
        if len(args) != 3:
            _die("snapshot save expects one argument")
        path = args[2]
        _log("info", "created temporary db file", path=path + ".part")
        res = request(flags, "etcd_snapshot")
        _log("info", "fetching snapshot", endpoint=flags.get("endpoints", "127.0.0.1:2379"))
        size = _write_snapshot(path, res["store"])
        _log("info", "fetched snapshot", size="%.1f kB" % (size / 1000.0))
        _log("info", "saved", path=path)
        common.out("Snapshot saved at %s\n" % path)
        return 0
    if args[:2] == ["endpoint", "health"]:
        ep = flags.get("endpoints", "127.0.0.1:2379")
        t0 = time.time()
        res = request(flags, "etcd_health")
        if not res["quorum"]:
            sys.stderr.write("%s is unhealthy: failed to commit proposal: context deadline exceeded\n" % ep)
            _die("unhealthy cluster")
        common.out("%s is healthy: successfully committed proposal: took = %.6fms\n" % (ep, (time.time() - t0) * 1000))
        return 0
    if args[:1] == ["member"]:
        sub = args[1] if len(args) > 1 else ""
        if sub == "list":
            res = request(flags, "etcd_member_list")
            rows = [(m["id"], "started" if m["started"] else "unstarted", m["name"], ",".join(m["peerURLs"]),
                     ",".join(m["clientURLs"]), "true" if m.get("isLearner") else "false") for m in res["members"]]
            if out == "json":
                common.out(json.dumps({"header": {"cluster_id": int(res["clusterID"] or "0", 16)},
                                       "members": [{"ID": int(m["id"], 16), "name": m["name"], "peerURLs": m["peerURLs"],
                                                    "clientURLs": m["clientURLs"]} for m in res["members"]]}) + "\n")
            elif out == "table":
                hdr = ("ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER")
                w = [max(len(r[i]) for r in rows + [hdr]) for i in range(6)]
                sep = "+" + "+".join("-" * (x + 2) for x in w) + "+\n"
                line = lambda r: "|" + "|".join(" %s " % r[i].center(w[i]) for i in range(6)) + "|\n"
                common.out(sep + line(hdr) + sep + "".join(line(r) for r in rows) + sep)
            else:
                common.out("".join(", ".join(r) + "\n" for r in rows))
            return 0
        if sub == "remove":
            if len(args) != 3:
                _die("member ID is not provided")
            res = request(flags, "etcd_member_remove", {"id": args[2].lower()})
            common.out("Member %s removed from cluster %s\n" % (args[2].lower(), res["clusterID"]))
            return 0
        if sub == "add":
            if len(args) != 3:
                _die("member name not provided")
            if not flags.get("peer-urls"):
                _die("member peer urls not provided")
            urls = flags["peer-urls"].split(",")
            res = request(flags, "etcd_member_add", {"peerURLs": urls, "learner": flags.get("learner") == "true"})
            m = res["member"]
            common.out("Member %s added to cluster %s\n\n" % (m["id"], res["clusterID"]))
            init = ",".join("%s=%s" % (x["name"] or args[2], u) for x in res["members"] for u in x["peerURLs"])
            common.out('ETCD_NAME="%s"\nETCD_INITIAL_CLUSTER="%s"\nETCD_INITIAL_ADVERTISE_PEER_URLS="%s"\n'
                       'ETCD_INITIAL_CLUSTER_STATE="existing"\n' % (args[2], init, ",".join(urls)))
            return 0
        _die('unknown command "%s" for "etcdctl member"' % sub)
    _die('unknown command "%s" for "etcdctl"' % " ".join(args[:2]))


# ------------------------------------------------------------------ etcdutl
def etcdutl(argv):
    flags, args = _parse(argv, {"data-dir", "name", "initial-cluster", "initial-advertise-peer-urls",
                                "initial-cluster-token", "write-out", "skip-hash-check", "wal-dir"})
    if args[:1] == ["version"]:
        common.out("etcdutl version: %s\nAPI version: 3.6\n" % ETCD_VERSION)
        return 0
    if args[:1] != ["snapshot"] or len(args) < 2 or args[1] not in ("status", "restore"):
        _die('unknown command "%s" for "etcdutl"' % " ".join(args[:2]))
    if len(args) != 3:
        _die("snapshot %s expects one argument" % args[1])
    path = args[2]
    if args[1] == "status":
        try:
            store, data = read_snapshot(path)
        except ValueError as e:
            _die(str(e))
        h = "%x" % zlib.crc32(data[:-32])
        rev = store.get("resourceVersion", 0)
        keys = len(store.get("objects") or {}) + len(store.get("nodes") or {}) + len(store.get("releases") or {})
        size = len(data)
        human = "%.1f kB" % (size / 1000.0) if size < 1000000 else "%.1f MB" % (size / 1e6)
        w = flags.get("write-out", "simple")
        if w == "json":
            common.out(json.dumps({"hash": zlib.crc32(data[:-32]), "revision": rev, "totalKey": keys,
                                   "totalSize": size, "version": "3.6.0"}) + "\n")
        elif w == "table":
            hdr = ("HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE", "VERSION")
            row = (h, str(rev), str(keys), human, "3.6.0")
            wd = [max(len(hdr[i]), len(row[i])) for i in range(5)]
            sep = "+" + "+".join("-" * (x + 2) for x in wd) + "+\n"
            line = lambda r: "|" + "|".join(" %s " % r[i].rjust(wd[i]) for i in range(5)) + "|\n"
            common.out(sep + line(hdr) + sep + line(row) + sep)
        else:
            common.out("%s, %d, %d, %s, 3.6.0\n" % (h, rev, keys, human))
        return 0
    # restore
    ddir = flags.get("data-dir") or ((flags.get("name") or "default") + ".etcd")
    if os.path.isdir(ddir) and os.listdir(ddir):
        _die('data-dir "%s" not empty or could not be read' % ddir)
    try:
        store, data = read_snapshot(path, check_hash=flags.get("skip-hash-check") != "true")
    except ValueError as e:
        _die(str(e))
    name = flags.get("name") or "default"
    peers = (flags.get("initial-advertise-peer-urls") or "http://localhost:2380").split(",")
    cluster = flags.get("initial-cluster") or "%s=%s" % (name, peers[0])
    mine = [kv.split("=", 1)[1] for kv in cluster.split(",") if kv.split("=", 1)[0] == name]
    if not mine or set(mine) != set(peers):
        _die("--initial-cluster has %s but missing from --initial-advertise-peer-urls=%s" % (cluster, ",".join(peers)))
    _log("info", "restoring snapshot", path=path, **{"wal-dir": ddir + "/member/wal", "data-dir": ddir})
    # a restore makes a new cluster: the given members only, a new cluster ID
    store["etcd"] = {"clusterID": "%016x" % random.getrandbits(64), "members": []}
    for kv in cluster.split(","):
        n, u = kv.split("=", 1)
        add_member(store, n, [u], [u.replace(":2380", ":2379")])
    os.makedirs(os.path.join(ddir, "member", "snap"), exist_ok=True)
    os.makedirs(os.path.join(ddir, "member", "wal"), exist_ok=True)
    os.chmod(ddir, 0o700)
    with open(os.path.join(ddir, "member", "snap", "db"), "wb") as f:
        f.write(data)
    common.save_json(os.path.join(ddir, "store.json"), store, mode=0o600, compact=True)
    _log("info", "restored snapshot", path=path, **{"data-dir": ddir})
    return 0


def main(tool, argv):
    if tool == "etcd-daemon":
        return daemon(argv)
    if tool == "etcdutl":
        return etcdutl(argv)
    return etcdctl(argv)
