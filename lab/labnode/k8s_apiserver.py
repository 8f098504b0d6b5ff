"""The simulated kube-apiserver: a real TCP (HTTP/JSON) server on the control plane's address:6443.

`python3 -m labnode kube-apiserver --address A --port 6443 --store PATH` serves the store kept in PATH (the
registry's owner: etcd's leader, in effect); `--upstream https://H:6443 --etcd-data-dir D` (joined control planes)
forwards every call to the owner. The owner replicates every write of the store to the other started etcd members
(their etcd keeps the copy as D/store.json); when the owner's host is gone (its API server and its etcd do not
answer) and the live members are a majority, the first live member in the member list takes over with its copy,
and the others forward to it (see K8S.md, etcd).
It speaks HTTPS with the certificate kubeadm made (--tls-cert-file/--tls-private-key-file of the static pod)
and asks clients for a certificate signed by --client-ca-file (TLS client authentication, like the real one).
The lab's own tools (kubeadm, kubelet, helm, the imitation kubectl) speak POST /rpc {"op": ..., "args": {...}};
real clients speak the Kubernetes REST API (k8s_rest.py); GET /livez answers ok."""
import argparse
import base64
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import common
from . import k8s_rbac as RBAC
from . import k8s_store as S

LOCK = threading.Lock()
# notified after every change of the store: a kubelet's watch of its own Node waits on it
CHANGED = threading.Condition(LOCK)


class Server:
    def __init__(self, store_path=None, upstream=None, address=None, port=6443, etcd_data_dir=None):
        self.path, self.upstream = store_path, upstream
        self.address, self.port = address, port
        self.etcd_data_dir = etcd_data_dir
        self.st = common.load_json(store_path, None) if store_path else None
        self.last_save = 0.0
        self.failover_lock = threading.Lock()
        self.gone_since = None      # since when the owner's machine has not answered at all
        self.replicated = None      # the store's resourceVersion the other members last got
        from . import k8s_rest
        self.rest = k8s_rest.API(self)

    def save(self, force=True):
        """Called under LOCK after every change, through the lab's RPC or the REST API: wakes the watches."""
        try:
            CHANGED.notify_all()
        except RuntimeError:  # not under LOCK: nobody can be waiting on this change yet
            pass
        text = None
        if self.path and (force or time.time() - self.last_save > 5):
            text = common.save_json(self.path, self.st, mode=0o600, compact=True)  # under LOCK: keep it short
            self.last_save = time.time()
        self.replicate(text)

    def replicate(self, text=None):
        """Every change reaches the other started members before it is answered (etcd commits a write once a
        majority has it), also the ones this member's own disk gets only every few seconds: each live member's
        etcd gets the whole registry on its peer port. Nothing to do in a one-member cluster."""
        from . import k8s_etcd
        if not self.st or self.st.get("resourceVersion") == self.replicated:
            return
        targets = [k8s_etcd.peer_host(m) for m in k8s_etcd.members(self.st)
                   if m.get("name") and k8s_etcd.peer_host(m) != self.address
                   and any(k8s_etcd.peer_alive(u) for u in m["peerURLs"])]
        if not targets:
            return
        cid = (self.st.get("etcd") or {}).get("clusterID", "")
        body = (text if text is not None else json.dumps(self.st, separators=(",", ":"), sort_keys=True)).encode()
        head = json.dumps({"op": "replicate", "clusterID": cid, "size": len(body)}).encode() + b"\n"
        for host in targets:
            try:
                with socket.create_connection((host, 2380), timeout=1) as c:
                    c.settimeout(2)
                    c.sendall(head + body)
            except OSError:
                pass
        self.replicated = self.st.get("resourceVersion")

    def leader(self):
        """What this API server is: the registry's owner (with its term), or a member forwarding to one."""
        with LOCK:
            owner = self.upstream is None and self.st is not None
            etcd = ((self.st or {}).get("etcd") or {}) if owner else {}
        return {"owner": owner, "term": etcd.get("term", 0), "clusterID": etcd.get("clusterID", ""),
                "address": self.address}

    GONE_AFTER = 2.0
    ELECTION = 5.0          # how long a member holds a request while its owner is gone (an election)

    def upstream_gone(self):
        """The owner's machine is gone: its API server, etcd and kubelet have not answered for GONE_AFTER s
        (watched every second by watch_owner). Static pods stopped by hand (a restore, a certificate renewal)
        leave the kubelet running: no election then (see K8S.md)."""
        return self.gone_since is not None and time.time() - self.gone_since >= self.GONE_AFTER

    def failover(self):
        """The owner does not answer. Find the member that owns the registry now and forward to it; else, when
        the owner's machine is gone (`upstream_gone`), the live members are a majority and this member is the
        first live one in the member list, take over with this member's copy (a new term).
        True when the calls have somewhere to go again."""
        from . import k8s_client as C
        from . import k8s_etcd
        with self.failover_lock:
            up = self.upstream
            if up is None:
                return True
            up_host = urllib.parse.urlsplit(up).hostname
            if _port_open(up_host, urllib.parse.urlsplit(up).port or 6443):
                return False
            replica = common.load_json(os.path.join(self.etcd_data_dir, "store.json"), None) \
                if self.etcd_data_dir else None
            if not replica or replica.get("cluster") is None:
                return False
            voters = [m for m in k8s_etcd.members(replica) if m.get("name") and not m.get("isLearner")]
            for m in voters:
                host = k8s_etcd.peer_host(m)
                if host in (self.address, up_host):
                    continue
                try:
                    res = C.call("https://%s:%d" % (host, self.port), "lab_leader", {}, timeout=3, ca=UPSTREAM_CA)
                except (C.ClientError, OSError):
                    continue
                if res.get("owner") and res.get("clusterID") == replica["etcd"].get("clusterID"):
                    self.upstream = "https://%s:%d" % (host, self.port)
                    print("kube-apiserver (lab): the registry's owner is now %s" % self.upstream, flush=True)
                    return True
            alive = k8s_etcd.healthy(voters)
            if not self.upstream_gone() or len(alive) * 2 <= len(voters) \
                    or k8s_etcd.peer_host(alive[0]) != self.address or any(k8s_etcd.peer_host(m) == up_host for m in alive):
                return False
            with LOCK:
                replica["etcd"]["term"] = replica["etcd"].get("term", 0) + 1
                replica["cluster"]["initAPI"] = "https://%s:%d" % (self.address, self.port)
                self.st, self.upstream = replica, None
                self.path = os.path.join(self.etcd_data_dir, "store.json")
                self.save()
            print("kube-apiserver (lab): %s did not answer; this member owns the registry now (term %d)"
                  % (up, replica["etcd"]["term"]), flush=True)
            return True

    def await_owner(self):
        """The owner did not answer: hold the request while the members elect another (ELECTION s at most, as
        a client of etcd waits for a new leader). True when there is an owner to ask again (or this member)."""
        deadline = time.time() + self.ELECTION
        while True:
            if self.failover():
                return True
            up = self.upstream and urllib.parse.urlsplit(self.upstream)
            if time.time() >= deadline or (up and _port_open(up.hostname, up.port or 6443)):
                return False        # no election: the owner answers (its own error stands), or none came
            time.sleep(0.25)

    def step_down(self):
        """An owner that finds another member owning the registry with a later term (it took over while this
        host was away) forwards to it from then on; its copy is replaced by the owner's next write."""
        from . import k8s_client as C
        from . import k8s_etcd
        with LOCK:
            if self.upstream is not None or self.st is None:
                return
            term = (self.st.get("etcd") or {}).get("term", 0)
            cid = (self.st.get("etcd") or {}).get("clusterID", "")
            others = [k8s_etcd.peer_host(m) for m in k8s_etcd.members(self.st)
                      if m.get("name") and k8s_etcd.peer_host(m) != self.address]
        for host in others:
            try:
                res = C.call("https://%s:%d" % (host, self.port), "lab_leader", {}, timeout=3, ca=UPSTREAM_CA)
            except (C.ClientError, OSError):
                continue
            if res.get("owner") and res.get("clusterID") == cid and res.get("term", 0) > term:
                with LOCK:
                    self.upstream, self.st, self.path = "https://%s:%d" % (host, self.port), None, None
                print("kube-apiserver (lab): %s owns the registry (term %d): forwarding to it"
                      % (host, res["term"]), flush=True)
                return

    def watch_owner(self):
        """Every second: a member checks that its owner answers (else fails over), an owner that no other owns
        the registry under a later term."""
        while True:
            time.sleep(1)
            try:
                if self.upstream is not None:
                    u = urllib.parse.urlsplit(self.upstream)
                    if _port_open(u.hostname, u.port or 6443):
                        self.gone_since = None
                        continue
                    if any(_port_open(u.hostname, p) for p in (2380, 10250)):
                        self.gone_since = None
                    elif self.gone_since is None:
                        self.gone_since = time.time()
                    self.failover()
                else:
                    self.step_down()
            except Exception as e:  # keep watching
                print("kube-apiserver (lab): watching the registry's owner: %s" % e, flush=True)

    def call(self, op, args, headers=None):
        if op == "lab_leader":
            return self.leader()
        if self.upstream:
            timeout = WATCH_MAX + 10 if op == "node_watch" else 30
            try:
                return forward(self.upstream, op, args, headers, timeout=timeout)
            except S.ApiError as e:
                if e.code != 503 or not self.await_owner():
                    raise
            if self.upstream:
                return forward(self.upstream, op, args, headers, timeout=timeout)
        if op == "node_watch":
            return self.watch_node(args or {}, headers)
        from . import k8s_etcd
        if op.startswith("etcd_"):
            return self.etcd_call(op, args or {}, headers or {})
        if op not in READ_ONLY:
            self.check_quorum()
        with LOCK:
            if self.st is None or self.st.get("cluster") is None:
                raise S.ApiError("ServiceUnavailable", "the cluster store is empty", 503)
            if headers is not None:
                authorize(self.st, op, headers, common.now())
            before = self.st["resourceVersion"]
            res = dispatch(self.st, op, args or {}, common.now())
            if op == "heartbeat":
                self.save(force=self.st["resourceVersion"] != before)
            elif op not in READ_ONLY:
                self.save()
            if op not in READ_ONLY:
                CHANGED.notify_all()
            return res

    def check_quorum(self):
        """etcd answers writes only while more than half its members do (probed outside the lock)."""
        from . import k8s_etcd
        if self.upstream:
            return
        with LOCK:
            ms = [dict(m) for m in k8s_etcd.members(self.st or {})]
        if not k8s_etcd.has_quorum(ms):
            raise S.ApiError("InternalError", "etcdserver: request timed out", 500)

    def etcd_call(self, op, args, headers):
        """An etcd client's request (through an etcd static pod): the client certificate must be the etcd CA's."""
        from . import k8s_etcd
        import copy
        cert = headers.get("X-Lab-Etcd-Cert")
        try:
            with open("/etc/kubernetes/pki/etcd/ca.crt") as f:
                eca = f.read()
        except OSError:
            eca = None
        if not cert or not eca or not cert_issued_by(cert, eca):
            raise S.ApiError("Unauthorized", "remote error: tls: bad certificate", 401)
        if op in ("etcd_member_add", "etcd_member_remove"):
            self.check_quorum()
        with LOCK:
            if self.st is None or self.st.get("cluster") is None:
                raise S.ApiError("ServiceUnavailable", "etcdserver: not capable", 503)
            try:
                res = k8s_etcd.op(self.st, op, args)
            except ValueError as e:
                raise S.ApiError("InternalError", str(e), 500)
            if op in ("etcd_member_add", "etcd_member_remove") or (op == "etcd_publish" and res.get("published")):
                self.save()
            return copy.deepcopy(res) if op == "etcd_snapshot" else res

    def watch_node(self, a, headers):
        """A kubelet's watch of its own Node (what its node informer gives a real kubelet): returns at once
        when the Node named `node` no longer has `uid` (deleted, or deleted and made again), else after
        `timeout` seconds (at most WATCH_MAX) with the Node unchanged."""
        deadline = time.time() + min(float(a.get("timeout", WATCH_MAX)), WATCH_MAX)
        with LOCK:
            if self.st is None or self.st.get("cluster") is None:
                raise S.ApiError("ServiceUnavailable", "the cluster store is empty", 503)
            if headers is not None:
                authorize(self.st, "node_watch", headers, common.now())
            while True:
                n = self.st["nodes"].get(a.get("node"))
                uid = n.get("uid") if n else None
                left = deadline - time.time()
                if uid != a.get("uid") or left <= 0:
                    return {"uid": uid}
                CHANGED.wait(left)


def _port_open(host, port):
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


READ_ONLY = {"version", "cluster_info", "get", "token_list", "cluster_get", "helm_list", "helm_get"}
WATCH_MAX = 20.0


UPSTREAM_CA = None
ANONYMOUS = {"version", "cluster_info"}                      # like system:unauthenticated's discovery rights
BOOTSTRAP = ANONYMOUS | {"bootstrap", "cluster_get"}        # system:bootstrappers (kubeadm join)
NODE = BOOTSTRAP | {"heartbeat", "get", "node_watch"}                     # system:nodes
_verified_certs = {}


def cert_issued_by(cert_b64, ca_pem):
    """True if the base64 PEM client certificate was signed by the cluster CA (openssl verify, cached)."""
    import base64
    import hashlib
    import subprocess
    import tempfile
    key = hashlib.sha256((cert_b64 + ca_pem).encode()).hexdigest()
    if key not in _verified_certs:
        try:
            pem = base64.b64decode(cert_b64)
        except ValueError:
            return False
        with tempfile.TemporaryDirectory() as d:
            ca, crt = os.path.join(d, "ca.crt"), os.path.join(d, "c.crt")
            with open(ca, "w") as f:
                f.write(ca_pem)
            with open(crt, "wb") as f:
                f.write(pem)
            # the signature here; the validity below, on the lab clock (certificates are dated on it)
            r = subprocess.run(["/usr/bin/openssl", "verify", "-no_check_time", "-CAfile", ca, crt],
                               capture_output=True)
        _verified_certs[key] = r.returncode == 0
    if not _verified_certs[key]:
        return False
    from . import k8s_pki as PKI
    msg = PKI.expired_message(base64.b64decode(cert_b64), common.now())
    if msg:
        sys.stderr.write('E%s authentication.go:73] "Unable to authenticate the request" err="[%s]"\n'
                         % (time.strftime("%m%d %H:%M:%S", time.gmtime(common.now())), msg))
        sys.stderr.flush()
        return False
    return True


def authorize(st, op, headers, now):
    cert = headers.get("X-Lab-Client-Cert")
    authz = headers.get("Authorization") or ""
    if cert:
        if cert_issued_by(cert, st["cluster"]["caPem"]):
            return "cert"
        raise S.ApiError("Unauthorized", "Unauthorized", 401)
    if authz.startswith("Bearer "):
        tok = authz[7:].strip()
        if tok in st.get("credentials", {}):
            if op in NODE:
                return "node"
            raise S.ApiError("Forbidden", 'Error from server (Forbidden): %s is forbidden: User "%s" cannot do this'
                             % (op, st["credentials"][tok]["user"]), 403)
        try:
            S.check_token(st, tok, now)
        except S.ApiError:
            raise S.ApiError("Unauthorized", "Unauthorized", 401)
        if op in BOOTSTRAP:
            return "bootstrap"
        raise S.ApiError("Forbidden", 'Error from server (Forbidden): User "system:bootstrap:%s" cannot do this'
                         % tok[:6], 403)
    if op in ANONYMOUS or op == "bootstrap":
        return "anonymous"
    raise S.ApiError("Unauthorized", "Unauthorized", 401)


_subjects = {}


def cert_subject(cert_b64):
    """(CN, [O...]) of a base64 PEM certificate (openssl, cached)."""
    if cert_b64 not in _subjects:
        import subprocess
        try:
            pem = base64.b64decode(cert_b64)
        except ValueError:
            return None, []
        r = subprocess.run(["/usr/bin/openssl", "x509", "-noout", "-subject", "-nameopt", "sep_multiline,sname"],
                           input=pem, capture_output=True)
        cn, orgs = None, []
        for line in r.stdout.decode(errors="replace").splitlines():
            k, _, v = line.strip().partition("=")
            if k == "CN":
                cn = v
            elif k == "O":
                orgs.append(v)
        _subjects[cert_b64] = (cn, orgs)
    return _subjects[cert_b64]


def rest_user(st, peer, headers):
    """The user of a REST request: the TLS client certificate (CN = name, O = groups), a certificate forwarded
    by a joined control plane, a bearer token (node credential, bootstrap token), or anonymous."""
    if peer and peer.get("subject"):
        # the TLS layer accepts the front proxy's CA too (like the real server); users are the cluster CA's
        der = peer.get("_der")
        if der and not cert_issued_by(base64.b64encode(ssl.DER_cert_to_PEM_cert(der).encode()).decode(),
                                      st["cluster"]["caPem"]):
            raise S.ApiError("Unauthorized", "Unauthorized", 401)
        cn, orgs = None, []
        for rdn in peer["subject"]:
            for k, v in rdn:
                if k == "commonName":
                    cn = v
                elif k == "organizationName":
                    orgs.append(v)
        if cn:
            return RBAC.user_for(cn, orgs)
    cert = headers.get("X-Lab-Client-Cert")
    if cert:
        if not cert_issued_by(cert, st["cluster"]["caPem"]):
            raise S.ApiError("Unauthorized", "Unauthorized", 401)
        cn, orgs = cert_subject(cert)
        if not cn:
            raise S.ApiError("Unauthorized", "Unauthorized", 401)
        return RBAC.user_for(cn, orgs)
    authz = headers.get("Authorization") or ""
    if authz.startswith("Bearer "):
        tok = authz[7:].strip()
        cred = st.get("credentials", {}).get(tok)
        if cred:
            return {"name": cred["user"], "groups": ["system:nodes", "system:authenticated"]}
        try:
            t = S.check_token(st, tok, common.now())
        except S.ApiError:
            raise S.ApiError("Unauthorized", "Unauthorized", 401)
        return {"name": "system:bootstrap:" + tok[:6], "groups": ["system:bootstrappers"] + list(t["groups"]) +
                ["system:authenticated"]}
    return dict(RBAC.ANONYMOUS)


def forward(upstream, op, args, headers=None, timeout=30):
    from . import k8s_client as C
    try:
        return C.call(upstream, op, args, timeout=timeout, ca=UPSTREAM_CA, headers={k: v for k, v in (headers or {}).items()
                                                                   if k in ("Authorization", "X-Lab-Client-Cert", "X-Lab-Etcd-Cert")})
    except C.ClientError as e:
        if e.reason in ("Refused", "Timeout", "NoHost", "TLS"):
            raise S.ApiError("ServiceUnavailable", "etcdserver: request timed out (upstream %s: %s)"
                             % (upstream, e.message), 503)
        raise S.ApiError(e.reason or "InternalError", e.message, e.code if isinstance(e.code, int) and e.code >= 400
                         else 500)


# ------------------------------------------------------------------ operations
def dispatch(st, op, a, now):
    c = st["cluster"]
    if op == "version":
        return {"gitVersion": c["kubernetesVersion"], "platform": "linux/amd64"}
    if op == "cluster_get":
        return {k: v for k, v in c.items()}
    if op == "upgrade_cluster":
        old = c["kubernetesVersion"]
        c["kubernetesVersion"] = a["version"]
        c.setdefault("clusterConfiguration", {})["kubernetesVersion"] = a["version"]
        for o in st["objects"].values():
            if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "kube-proxy":
                o["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.k8s.io/kube-proxy:" + a["version"]
        st["resourceVersion"] += 1
        return {"from": old, "to": a["version"]}
    if op == "cluster_info":
        return S.cluster_info(st, now)
    if op == "bootstrap":
        return bootstrap(st, a, now)
    if op == "heartbeat":
        return S.heartbeat(st, a["node"], a["report"], now)
    if op == "get":
        return S.get_objects(st, a["resource"], a.get("namespace"), a.get("name"), a.get("allNamespaces"),
                             now, a.get("selector"))
    if op == "apply":
        return S.apply_objects(st, a["docs"], now, a.get("source", "STDIN"), a.get("manager", "kubectl"),
                               a.get("dryRun", False), a.get("create", False), a.get("namespace"),
                               a.get("serverSide", False), a.get("force", False))
    if op == "delete":
        out = []
        for it in a["items"]:
            r = S.delete_object(st, it["kind"], it.get("namespace"), it["name"], a.get("ignoreNotFound"),
                                it.get("apiVersion"))
            if r:
                out.append(r)
        return out
    if op == "label":
        return label_node(st, a["name"], a["labels"], a.get("overwrite"))
    if op == "taint":
        return taint_node(st, a["name"], a["taints"], a.get("overwrite"))
    if op == "cordon":
        n = node(st, a["name"])
        was = bool(n.get("unschedulable"))
        n["unschedulable"] = bool(a["on"])
        st["resourceVersion"] += 1
        return "node/%s %s%s" % (a["name"], "already " if was == bool(a["on"]) else "",
                                 "cordoned" if a["on"] else "uncordoned")
    if op == "drain":
        return drain(st, a, now)
    if op == "mark_control_plane":
        n = node(st, a["name"])
        n["labels"]["node-role.kubernetes.io/control-plane"] = ""
        n["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        t = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
        if a.get("taint", True) and t not in n["taints"]:
            n["taints"].append(t)
        n.setdefault("kubeletStatic", True)
        st["resourceVersion"] += 1
        return "ok"
    if op == "token_create":
        tid = S.add_token(st, a["token"], a.get("ttl"), now, a.get("description", ""), a.get("usages"),
                          a.get("groups"))
        return {"id": tid}
    if op == "token_list":
        return [{"id": tid, **t} for tid, t in sorted(S.valid_tokens(st, now).items())]
    if op == "token_delete":
        tid = a["id"].split(".")[0]
        if tid not in st["tokens"]:
            raise S.ApiError("NotFound", 'secrets "bootstrap-token-%s" not found' % tid, 404)
        del st["tokens"][tid]
        return 'bootstrap token "%s" deleted' % tid
    if op == "upload_certs":
        st["uploadedCerts"] = {"keyHash": S.cert_key_hash(a["key"]), "expires": now + 7200, "certs": a["certs"]}
        st["resourceVersion"] += 1
        return "ok"
    if op.startswith("helm_"):
        from . import k8s_helm
        return k8s_helm.server_op(st, op, a, now)
    raise S.ApiError("BadRequest", "unknown operation %r" % op, 400)


def node(st, name):
    if name not in st["nodes"]:
        raise S.ApiError("NotFound", 'Error from server (NotFound): nodes "%s" not found' % name, 404)
    return st["nodes"][name]


def label_node(st, name, labels, overwrite):
    n = node(st, name)
    for k, v in labels.items():
        if v is None:
            n["labels"].pop(k, None)
            continue
        if k in n["labels"] and n["labels"][k] != v and not overwrite:
            raise S.ApiError("Invalid", "error: '%s' already has a value (%s), and --overwrite is false"
                             % (k, n["labels"][k]))
    for k, v in labels.items():
        if v is not None:
            n["labels"][k] = v
    st["resourceVersion"] += 1
    return "node/%s labeled" % name


def taint_node(st, name, taints, overwrite):
    n = node(st, name)
    removed = added = False
    for t in taints:
        if t.get("remove"):
            before = len(n["taints"])
            n["taints"] = [x for x in n["taints"] if not (x["key"] == t["key"] and
                                                         (not t.get("effect") or x["effect"] == t["effect"]))]
            if len(n["taints"]) == before:
                raise S.ApiError("NotFound", 'error: taint "%s%s" not found'
                                 % (t["key"], ":" + t["effect"] if t.get("effect") else ""))
            removed = True
            continue
        same = [x for x in n["taints"] if x["key"] == t["key"] and x["effect"] == t["effect"]]
        if same and not overwrite:
            raise S.ApiError("Invalid", "error: node %s already has %s taint(s) with same effect(s) and "
                             "--overwrite is false" % (name, t["key"]))
        n["taints"] = [x for x in n["taints"] if not (x["key"] == t["key"] and x["effect"] == t["effect"])]
        nt = {"key": t["key"], "effect": t["effect"]}
        if t.get("value"):
            nt["value"] = t["value"]
        n["taints"].append(nt)
        added = True
    st["resourceVersion"] += 1
    return "node/%s %s" % (name, "tainted" if added or not removed else "untainted")


def drain(st, a, now):
    name = a["name"]
    n = node(st, name)
    lines = []
    was = bool(n.get("unschedulable"))
    n["unschedulable"] = True
    st["resourceVersion"] += 1
    lines.append("node/%s %scordoned" % (name, "already " if was else ""))
    pods = [p for p in S.list_pods(st, now) if p["spec"].get("nodeName") == name]
    ds, local, bare = [], [], []
    for p in pods:
        owner = (p["metadata"].get("ownerReferences") or [{}])[0].get("kind")
        ref = "%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"])
        if owner == "DaemonSet":
            ds.append(ref)
        elif owner == "Node":
            continue            # mirror pods of static pods are not evicted
        elif owner is None:
            bare.append(ref)
        if any("emptyDir" in v for v in p["spec"].get("volumes") or []):
            local.append(ref)
    errs = []
    if ds and not a.get("ignoreDaemonsets"):
        errs.append("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): " + ", ".join(ds))
    if local and not a.get("deleteEmptydirData"):
        errs.append("cannot delete Pods with local storage (use --delete-emptydir-data to override): "
                    + ", ".join(local))
    if bare and not a.get("force"):
        errs.append("cannot delete Pods that declare no controller (use --force to override): " + ", ".join(bare))
    if errs:
        raise S.ApiError("Invalid", "\n".join(lines) + "\nerror: unable to drain node \"%s\" due to error: %s, "
                         "continuing command...\nThere are pending nodes to be drained:\n %s\n%s"
                         % (name, errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]", name, "\n".join(errs)))
    if ds:
        lines.append("Warning: ignoring DaemonSet-managed Pods: " + ", ".join(ds))
    evict = [p for p in pods if (p["metadata"].get("ownerReferences") or [{}])[0].get("kind") not in
             ("DaemonSet", "Node")]
    for p in evict:
        lines.append("evicting pod %s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]))
    for p in evict:
        st.setdefault("bindings", {}).pop("%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]), None)
        if not p["metadata"].get("ownerReferences"):
            st["objects"].pop(S.obj_key("", "Pod", p["metadata"]["namespace"], p["metadata"]["name"]), None)
        lines.append("pod/%s evicted" % p["metadata"]["name"])
    lines.append("node/%s drained" % name)
    return "\n".join(lines)


def bootstrap(st, a, now):
    """TLS bootstrap of a joining node: the token authenticates it; a control plane also downloads the
    shared certificates with its certificate key."""
    S.check_token(st, a.get("token"), now)
    c = st["cluster"]
    name = a["node"]
    n = st["nodes"].get(name)
    if n is not None and S.node_ready(st, n, now)[0] == "True":
        raise S.ApiError("Conflict", 'a Node with name "%s" and status "Ready" already exists in the cluster. '
                         'You must delete the existing Node or change the name of this new joining Node' % name, 409)
    out = {"cluster": {k: v for k, v in c.items() if k not in ("caKeyPem",)}}
    if a.get("controlPlane"):
        if not c.get("controlPlaneEndpoint"):
            raise S.ApiError("NoEndpoint", "unable to add a new control plane instance to a cluster that doesn't "
                             "have a stable controlPlaneEndpoint address", 400)
        up = st.get("uploadedCerts")
        if not up or up["expires"] <= now:
            st["uploadedCerts"] = None
            raise S.ApiError("CertsNotFound", 'error downloading certs: error downloading the secret: Secret '
                             '"kubeadm-certs" was not found in the "kube-system" Namespace. This Secret might have '
                             'expired. Please, run `kubeadm init phase upload-certs --upload-certs` on a control '
                             'plane to generate a new one', 404)
        if S.cert_key_hash(a.get("certificateKey") or "") != up["keyHash"]:
            raise S.ApiError("BadKey", "error downloading certs: error decoding secret data with provided key: "
                             "cipher: message authentication failed", 400)
        out["certs"] = up["certs"]
        if a.get("address"):
            # kubeadm's control-plane join adds the node's etcd as a member
            from . import k8s_etcd
            k8s_etcd.member_started(st, name, a["address"])
            me = "https://%s:2380" % a["address"]
            out["etcdInitialCluster"] = ",".join("%s=%s" % (m["name"] or name, u) for m in k8s_etcd.members(st)
                                                 for u in m["peerURLs"][:1] if m["name"] or u == me)
    cred = "node-" + S.short_hash(name, str(now), n=16)
    st["credentials"][cred] = {"user": "system:node:" + name}
    out["credential"] = cred
    return out


# ------------------------------------------------------------------ HTTP
class Handler(BaseHTTPRequestHandler):
    server_version = "kube-apiserver-lab/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, code, obj):
        text = isinstance(obj, str)
        body = obj.encode() if text else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8" if text else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _status(self, code, reason, message, details=None):
        self._send(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "details": details or {}, "code": code})

    def _peer(self):
        """The client's verified certificate (getpeercert() plus its DER as "_der"), or None."""
        if not isinstance(self.connection, ssl.SSLSocket):
            return None
        peer = self.connection.getpeercert()
        if peer:
            peer = dict(peer, _der=self.connection.getpeercert(binary_form=True))
        return peer

    def _check_credentials(self):
        """Public paths still refuse credentials that do not authenticate (401), like the real server."""
        api = self.server.api
        if api.upstream or not (self.headers.get("Authorization") or self._peer()):
            return
        with LOCK:
            if api.st is not None and api.st.get("cluster") is not None:
                rest_user(api.st, self._peer(), self.headers)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/livez", "/healthz", "/readyz", "/version", "/version/") or \
                path.startswith(("/livez/", "/healthz/", "/readyz/")):
            try:
                self._check_credentials()
            except S.ApiError as e:
                self._status(e.code, e.reason, e.message)
                return
        if path in ("/livez", "/healthz", "/readyz") or path.startswith(("/livez/", "/healthz/", "/readyz/")):
            try:
                self.server.api.call("version", {})
                if "verbose" in self.path:
                    checks = ["ping", "log", "etcd", "poststarthook/start-apiserver-admission-initializer",
                              "poststarthook/rbac/bootstrap-roles"]
                    self._send(200, "".join("[+]%s ok\n" % c for c in checks) + "%s check passed\n"
                               % path.strip("/"))
                else:
                    self._send(200, "ok")
            except S.ApiError as e:
                self._status(e.code, e.reason, e.message)
            return
        if path in ("/version", "/version/"):
            try:
                v = ({"gitVersion": self.server.api.version} if getattr(self.server.api, "version", None)
                     else self.server.api.call("version", {}))
                parts = v["gitVersion"].lstrip("v").split(".")
                self._send(200, {"major": parts[0], "minor": parts[1], "emulationMajor": parts[0],
                                 "emulationMinor": parts[1], "minCompatibilityMajor": parts[0],
                                 "minCompatibilityMinor": str(max(0, int(parts[1]) - 1)),
                                 "gitVersion": v["gitVersion"], "gitCommit": S.short_hash(v["gitVersion"], n=40),
                                 "gitTreeState": "clean", "buildDate": "2025-09-09T19:37:58Z",
                                 "goVersion": "go1.24.6", "compiler": "gc", "platform": "linux/amd64"})
            except S.ApiError as e:
                self._status(e.code, e.reason, e.message)
            return
        self._rest("GET")

    def do_PUT(self):
        self._rest("PUT")

    def do_PATCH(self):
        self._rest("PATCH")

    def do_DELETE(self):
        self._rest("DELETE")

    def _rest(self, method):
        """A Kubernetes REST request (k8s_rest), or its forwarding to the registry's owner."""
        n = int(self.headers.get("Content-Length") or 0)
        self._rest_body(method, self.rfile.read(n) if n else b"")

    def _rest_body(self, method, body):
        from . import k8s_rest as R
        api = self.server.api
        if api.upstream:
            return self._proxy(method, body)
        u = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        try:
            with LOCK:
                if api.st is None or api.st.get("cluster") is None:
                    raise R.Fail(503, "ServiceUnavailable", "the cluster store is empty")
                user = rest_user(api.st, self._peer(), self.headers)
            if method not in ("GET", "HEAD"):
                api.check_quorum()
            rep = api.rest.handle(method, u.path, query, self.headers, body, user, LOCK)
        except R.Fail as e:
            self._send(e.code, e.status())
            return
        except S.ApiError as e:
            msg = e.message.replace("Error from server (%s): " % e.reason, "")
            self._status(e.code if isinstance(e.code, int) and e.code >= 400 else 400, e.reason, msg)
            return
        except Exception as e:  # report, keep serving
            import traceback
            traceback.print_exc()
            self._status(500, "InternalError", "Internal error occurred: %s" % e)
            return
        if rep.stream is None:
            body = rep.body if isinstance(rep.body, (bytes, str)) else json.dumps(rep.body)
            body = body.encode() if isinstance(body, str) else body
            self.send_response(rep.code)
            self.send_header("Content-Type", rep.ctype)
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", rep.ctype)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        sock = self.connection

        def alive(wait):
            """Sleep up to `wait` s; False once the client has gone (a watch client sends nothing)."""
            import select
            try:
                r, _, _ = select.select([sock], [], [], wait)
            except (OSError, ValueError):
                return False
            if not r:
                return True
            try:
                sock.setblocking(False)
                try:
                    data = sock.recv(1)
                finally:
                    sock.setblocking(True)
                return bool(data)
            except (ssl.SSLWantReadError, BlockingIOError):
                return True
            except (OSError, ssl.SSLError):
                return False

        try:
            for chunk in rep.stream(alive):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (OSError, ssl.SSLError):
            pass
        self.close_connection = True

    def _proxy(self, method, body):
        """A joined control plane passes REST requests on to the registry's owner, with the client's certificate."""
        import http.client
        api = self.server.api
        host, port = urllib.parse.urlsplit(api.upstream).hostname, urllib.parse.urlsplit(api.upstream).port or 6443
        from . import k8s_client as C
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length",
                                                                              "connection", "x-lab-client-cert")}
        peer = self.connection.getpeercert(binary_form=True) if isinstance(self.connection, ssl.SSLSocket) else None
        if peer:
            headers["X-Lab-Client-Cert"] = base64.b64encode(ssl.DER_cert_to_PEM_cert(peer).encode()).decode()
        elif self.headers.get("X-Lab-Client-Cert"):
            headers["X-Lab-Client-Cert"] = self.headers["X-Lab-Client-Cert"]
        try:
            conn = http.client.HTTPSConnection(host, port, context=C.tls_context(UPSTREAM_CA), timeout=3600)
            conn.request(method, self.path, body=body or None, headers=headers)
            r = conn.getresponse()
        except (OSError, ssl.SSLError) as e:
            upstream = api.upstream
            if api.await_owner() and api.upstream != upstream:
                # the owner changed (or this member took over): the request goes there
                return self._rest_body(method, body)
            self._status(503, "ServiceUnavailable", "etcdserver: request timed out (upstream %s: %s)"
                         % (upstream, e))
            return
        self.send_response(r.status)
        chunked = r.getheader("Transfer-Encoding") == "chunked"
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        if not chunked:
            data = r.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while True:
                data = r.read1(65536) if hasattr(r, "read1") else r.read(4096)
                if not data:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, ssl.SSLError):
            pass
        conn.close()
        self.close_connection = True

    def do_POST(self):
        if self.path != "/rpc":
            self._rest("POST")
            return
        try:
            n = int(self.headers.get("Content-Length") or 0)
            req = json.loads(self.rfile.read(n) or b"{}")
            hdrs = {k: self.headers.get(k) for k in ("Authorization", "X-Lab-Client-Cert", "X-Lab-Etcd-Cert") if self.headers.get(k)}
            res = self.server.api.call(req.get("op"), req.get("args") or {}, hdrs)
            self._send(200, {"result": res})
        except S.ApiError as e:
            self._send(e.code, {"reason": e.reason, "message": e.message})
        except Exception as e:  # report, keep serving
            import traceback
            traceback.print_exc()
            self._send(500, {"reason": "InternalError", "message": "Internal error occurred: %s" % e})


class ServingTLS:
    """The serving certificate, read once at start (a renewed one is served after a restart of the static pod,
    as kubeadm's renewal procedure says), and client certificates asked for (kubeconfig users; the lab's own
    tools send none). The lab clock: certificates are dated on it, so the TLS layer checks signatures only and
    the authenticator checks validity on the lab clock (cert_issued_by). Clients on the machine's real clock
    (the real kubectl, Python's ssl) get the serving certificate translated to real time (both dates minus the
    clock offset, signed again by the cluster CA), so what they accept or refuse (`x509: certificate has
    expired`) is what a client on the lab clock would."""

    def __init__(self, cert, key, client_ca=None, requestheader_ca=None):
        with open(cert) as f:
            self.cert_pem = f.read()
        with open(key) as f:
            self.key_pem = f.read()
        self.key_path, self.cert_path = key, cert
        self.client_ca = client_ca if client_ca and os.path.exists(client_ca) else None
        self.requestheader_ca = requestheader_ca if requestheader_ca and os.path.exists(requestheader_ca) else None
        self.contexts = {}
        self.lock = threading.Lock()

    def context(self):
        off = common.clock_offset()
        with self.lock:
            ctx = self.contexts.get(off)
            if ctx is None:
                ctx = self.contexts[off] = self._make(off)
            return ctx

    def _make(self, off):
        import tempfile
        from . import k8s_pki as PKI
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert = self.cert_pem
        ca_dir = os.path.dirname(self.client_ca or "")
        v = PKI.validity(cert)
        if off and v and self.client_ca and os.path.exists(os.path.join(ca_dir, "ca.key")):
            try:
                cert = PKI.resign(cert, self.key_pem, self.client_ca, os.path.join(ca_dir, "ca.key"),
                                  v[0] - off, v[1] - off)
            except RuntimeError as e:
                sys.stderr.write("lab: could not translate the serving certificate to real time: %s\n" % e)
        with tempfile.TemporaryDirectory() as d:
            c = os.path.join(d, "tls.crt")
            with open(c, "w") as f:
                f.write(cert)
            ctx.load_cert_chain(c, self.key_path)
        if self.client_ca:
            ctx.load_verify_locations(self.client_ca)
            if self.requestheader_ca:
                ctx.load_verify_locations(self.requestheader_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.verify_flags |= 0x200000            # X509_V_FLAG_NO_CHECK_TIME: validity is the lab clock's
        return ctx


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # the real API server listens with the kernel's maximum backlog; socketserver's default of 5 drops the
    # connections of 50 nodes joining at once, and each dropped SYN costs its client a second
    request_queue_size = 1024
    tls = None

    def finish_request(self, request, client_address):
        if self.tls is not None:
            # the TLS handshake happens in the request's thread, so a silent client cannot stall accept()
            request.settimeout(10)
            try:
                request = self.tls.context().wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


def main(tool, argv):
    p = argparse.ArgumentParser(prog="kube-apiserver")
    p.add_argument("--address", required=True)
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--store")
    p.add_argument("--upstream")
    p.add_argument("--etcd-data-dir")    # a member's etcd data directory: its copy of the registry
    p.add_argument("--lab-version")      # the static pod's image tag: what this API server's /version says
    p.add_argument("--tls-cert-file")
    p.add_argument("--tls-private-key-file")
    p.add_argument("--client-ca-file")
    p.add_argument("--requestheader-client-ca-file")
    a = p.parse_args(argv)
    global UPSTREAM_CA
    if a.client_ca_file and os.path.exists(a.client_ca_file):
        with open(a.client_ca_file) as f:
            UPSTREAM_CA = f.read()
    api = Server(a.store, a.upstream, a.address, a.port, etcd_data_dir=a.etcd_data_dir)
    api.version = a.lab_version
    threading.Thread(target=api.watch_owner, daemon=True).start()
    srv = HTTPServer((a.address, a.port), Handler)
    if a.tls_cert_file:
        srv.tls = ServingTLS(a.tls_cert_file, a.tls_private_key_file, a.client_ca_file,
                             a.requestheader_client_ca_file)
    srv.api = api

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print("kube-apiserver (lab) serving on %s:%d" % (a.address, a.port), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        if api.st is not None and api.path and os.path.exists(os.path.dirname(api.path)):
            with LOCK:
                try:
                    api.save()
                except OSError:
                    pass
    return 0
