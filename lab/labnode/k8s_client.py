"""Client side of the simulated API: kubeconfig loading and calls to the API server over TCP."""
import base64
import ipaddress
import json
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request

import yaml


class ClientError(Exception):
    def __init__(self, message, reason="", code=1):
        super().__init__(message)
        self.message, self.reason, self.code = message, reason, code


def load_kubeconfig(path=None):
    """(server URL, CA PEM, source path) from --kubeconfig, $KUBECONFIG, or ~/.kube/config."""
    cands = [path] if path else ([p for p in os.environ.get("KUBECONFIG", "").split(":") if p] or
                                 [os.path.join(os.path.expanduser("~"), ".kube", "config")])
    for p in cands:
        if not os.path.exists(p):
            if path:
                raise ClientError("error: stat %s: no such file or directory" % p)
            continue
        try:
            with open(p) as f:
                # libyaml's loader when PyYAML has it: every kubectl, kubeadm and helm call reads a kubeconfig,
                # which costs the pure-Python loader ~10 ms of CPU (the Go tools read it in well under 1 ms).
                cfg = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except PermissionError:
            raise ClientError("error: error loading config file \"%s\": open %s: permission denied" % (p, p))
        except yaml.YAMLError as e:
            raise ClientError("error: error loading config file \"%s\": yaml: %s" % (p, e))
        ctx_name = cfg.get("current-context")
        ctx = next((c["context"] for c in cfg.get("contexts") or [] if c.get("name") == ctx_name), None)
        if ctx is None:
            break
        cl = next((c["cluster"] for c in cfg.get("clusters") or [] if c.get("name") == ctx.get("cluster")), None)
        if cl is None:
            break
        ca = cl.get("certificate-authority-data")
        ca_pem = base64.b64decode(ca).decode() if ca else None
        if not ca_pem and cl.get("certificate-authority"):
            with open(cl["certificate-authority"]) as f:
                ca_pem = f.read()
        user = next((u["user"] for u in cfg.get("users") or [] if u.get("name") == ctx.get("user")), {}) or {}
        return cl["server"], ca_pem, p, user
    # like kubectl without any configuration: it talks to localhost:8080
    return "http://localhost:8080", None, None, {}


def hostport(server):
    u = urllib.parse.urlparse(server)
    return u.hostname, u.port or (443 if u.scheme == "https" else 80)


def check_loopback(host, port):
    """Resolve `host` (through this host's /etc/hosts); only 127.0.0.0/8 is ever contacted."""
    try:
        addr = socket.gethostbyname(host)
    except OSError:
        raise ClientError("dial tcp: lookup %s: no such host" % host, "NoHost")
    if not ipaddress.ip_address(addr).is_loopback:
        raise ClientError("dial tcp %s:%d: i/o timeout" % (addr, port), "Timeout")
    return addr


_ctx_cache = {}


def tls_context(ca_pem=None):
    """Verifying context for a cluster CA (PEM text); without one, no verification (like kubeadm's discovery
    of cluster-info, or curl -k)."""
    key = ca_pem or ""
    ctx = _ctx_cache.get(key)
    if ctx is None:
        if ca_pem:
            ctx = ssl.create_default_context(cadata=ca_pem)
        else:
            ctx = ssl._create_unverified_context()
        _ctx_cache[key] = ctx
    return ctx


def auth_headers(user):
    """HTTP headers carrying a kubeconfig user's credential: a bearer token, or the client certificate (the
    lab API server checks the certificate was issued by the cluster CA)."""
    if not user:
        return {}
    if user.get("token"):
        return {"Authorization": "Bearer " + user["token"]}
    if user.get("client-certificate-data"):
        return {"X-Lab-Client-Cert": "".join(str(user["client-certificate-data"]).split())}
    if user.get("client-certificate"):
        try:
            with open(user["client-certificate"], "rb") as f:
                import base64
                return {"X-Lab-Client-Cert": base64.b64encode(f.read()).decode()}
        except OSError:
            return {}
    return {}


def kubeconfig_auth(path):
    """(server, ca, headers) of a kubeconfig file."""
    server, ca, _, user = load_kubeconfig(path)
    return server, ca, auth_headers(user)


def call(server, op, args=None, timeout=30, ca=None, headers=None):
    """POST /rpc to `server` (https://H:P, real TLS with the API server's certificate). `ca`: the cluster CA
    (PEM) to verify the server against; None skips verification. Raises ClientError with the server's message,
    or with reason Refused/Timeout/NoHost/TLS when the endpoint does not answer or cannot be trusted."""
    host, port = hostport(server)
    check_loopback(host, port)
    url = "https://%s:%d/rpc" % (host, port)
    body = json.dumps({"op": op, "args": args or {}}).encode()
    req = urllib.request.Request(url, data=body, headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=tls_context(ca)) as r:
            return json.loads(r.read())["result"]
    except urllib.error.HTTPError as e:
        try:
            d = json.loads(e.read() or b"{}")
        except ValueError:
            d = {}
        raise ClientError(d.get("message", str(e)), d.get("reason", ""), e.code)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ssl.SSLCertVerificationError):
            if getattr(reason, "verify_code", None) in (9, 10):   # X509_V_ERR_CERT_NOT_YET_VALID / HAS_EXPIRED
                raise ClientError("tls: failed to verify certificate: x509: certificate has expired or is not yet "
                                  "valid", "TLS")
            if "match" in str(reason) or "mismatch" in str(reason):
                raise ClientError("tls: failed to verify certificate: x509: certificate is valid for other names, "
                                  "not %s" % host, "TLS")
            raise ClientError("tls: failed to verify certificate: x509: certificate signed by unknown authority",
                              "TLS")
        if isinstance(reason, ConnectionRefusedError) or "refused" in str(reason).lower():
            raise ClientError("dial tcp %s:%d: connect: connection refused" % (host, port), "Refused")
        if isinstance(reason, (ssl.SSLError, ConnectionResetError)):
            raise ClientError("remote error: tls: handshake failure (%s)" % reason, "TLS")
        raise ClientError("dial tcp %s:%d: %s" % (host, port, reason), "Timeout")


def get_raw(server, path, ca=None, timeout=30, headers=None):
    """GET a path of the API server (kubectl get --raw): (status, body text)."""
    host, port = hostport(server)
    check_loopback(host, port)
    req = urllib.request.Request("https://%s:%d%s" % (host, port, path), headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=tls_context(ca)) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, (e.read() or b"").decode()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ConnectionRefusedError) or "refused" in str(reason).lower():
            raise ClientError("The connection to the server %s:%d was refused - did you specify the right host or "
                              "port?" % (host, port), "Refused")
        raise ClientError("Unable to connect to the server: %s" % reason, "Timeout")


def reachable(server, timeout=2.0):
    host, port = hostport(server)
    try:
        addr = check_loopback(host, port)
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except (ClientError, OSError):
        return False


class Kube:
    """kubectl/helm's view: a kubeconfig and calls that fail like kubectl does."""

    def __init__(self, kubeconfig=None, server=None):
        if server and not kubeconfig and not os.environ.get("KUBECONFIG") and not os.path.exists(
                os.path.join(os.path.expanduser("~"), ".kube", "config")):
            self.server, self.ca, self.path, self.user = server, None, None, {}
        else:
            self.server, self.ca, self.path, self.user = load_kubeconfig(kubeconfig)
            if server:
                self.server = server

    def call(self, op, args=None):
        if self.path is None and not self.ca and self.server == "http://localhost:8080":
            raise ClientError("The connection to the server localhost:8080 was refused - did you specify the right "
                              "host or port?", "Refused")
        host, port = hostport(self.server)
        try:
            return call(self.server, op, args, ca=self.ca, headers=auth_headers(self.user))
        except ClientError as e:
            if e.reason == "Unauthorized":
                raise ClientError("error: You must be logged in to the server (Unauthorized)", "Unauthorized", 401)
            if e.reason == "Refused":
                raise ClientError("The connection to the server %s:%d was refused - did you specify the right "
                                  "host or port?" % (host, port), "Refused")
            if e.reason in ("Timeout", "NoHost", "TLS"):
                raise ClientError("Unable to connect to the server: " + e.message, e.reason)
            raise


def _norm(pem):
    return "".join((pem or "").split())
