"""PKI and kubeconfig files of the simulated Kubernetes control plane.

Certificates are real X.509 made with the machine's openssl (local, no network), so the documented
`openssl x509 -pubkey -in ca.crt | openssl rsa -pubin -outform der | openssl dgst -sha256 -hex` pipeline
gives the same hash kubeadm prints."""
import base64
import hashlib
import os
import subprocess
import tempfile
import time

import yaml

PKI = "/etc/kubernetes/pki"
OPENSSL = "/usr/bin/openssl"

# files a control plane shares with the others (what `kubeadm init phase upload-certs` uploads)
SHARED_CERTS = ["ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key",
                "etcd/ca.crt", "etcd/ca.key"]


def _openssl(*args, stdin=None):
    p = subprocess.run([OPENSSL] + list(args), input=stdin, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], p.stderr.decode(errors="replace").strip()))
    return p.stdout


# kubeadm backdates NotBefore by 5 minutes (clock skew between nodes)
BACKDATE = 300
LEAF_EXT = ["basicConstraints = critical,CA:FALSE", "keyUsage = critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage = serverAuth,clientAuth"]
CA_EXT = ["basicConstraints = critical,CA:TRUE", "keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign",
          "subjectKeyIdentifier = hash"]


def lab_now():
    """Certificates are dated on the lab clock (`scripts/lab clock advance`), like everything in the hosts."""
    from . import common
    return common.now()


def _asn1_time(t):
    tm = time.gmtime(t)
    return time.strftime("%y%m%d%H%M%SZ" if tm.tm_year < 2050 else "%Y%m%d%H%M%SZ", tm)


def _ca_sign(csr, out, issuer_cert, issuer_key, not_before, not_after, ext=None, selfsign=False):
    """Sign the request `csr` with explicit validity dates (`openssl ca`: `x509 -req` only knows `-days` from
    the machine's real time). `ext`: extension lines, or None to copy the request's extensions."""
    with tempfile.TemporaryDirectory() as tmp:
        open(os.path.join(tmp, "index.txt"), "w").close()
        with open(os.path.join(tmp, "serial"), "w") as f:
            f.write("%032X\n" % (int.from_bytes(os.urandom(15), "big") | 1 << 119))
        cnf = os.path.join(tmp, "ca.cnf")
        with open(cnf, "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\nserial = %s/serial\n"
                    "policy = p\ndefault_md = sha256\nunique_subject = no\ncopy_extensions = %s\n"
                    "[p]\ncommonName = supplied\norganizationName = optional\n[ext]\n%s\n"
                    % (tmp, tmp, tmp, "copyall" if ext is None else "none", "\n".join(ext or [])))
        args = ["ca", "-batch", "-config", cnf, "-notext", "-preserveDN", "-startdate", _asn1_time(not_before),
                "-enddate", _asn1_time(not_after), "-in", csr, "-out", out, "-keyfile", issuer_key]
        args += ["-selfsign"] if selfsign else ["-cert", issuer_cert]
        if ext is not None:
            args += ["-extensions", "ext"]
        _openssl(*args)


def make_ca(cert, key, cn, days=3650):
    os.makedirs(os.path.dirname(cert), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        csr = os.path.join(tmp, "req.csr")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        os.chmod(key, 0o600)
        now = lab_now()
        _ca_sign(csr, cert, None, key, now - BACKDATE, now + days * 86400, ext=CA_EXT, selfsign=True)


def make_signed(ca_cert, ca_key, cert, key, subj, days=365, sans=None):
    """A leaf certificate (EC P-256 key, quick to make) signed by the given CA, valid from the lab's now."""
    os.makedirs(os.path.dirname(cert), exist_ok=True)
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    os.chmod(key, 0o600)
    with tempfile.TemporaryDirectory() as tmp:
        csr = os.path.join(tmp, "req.csr")
        _openssl("req", "-new", "-key", key, "-subj", subj, "-out", csr)
        ext = LEAF_EXT + (["subjectAltName = " + ",".join(sans)] if sans else [])
        now = lab_now()
        _ca_sign(csr, cert, ca_cert, ca_key, now - BACKDATE, now + days * 86400, ext=ext)


def resign(cert_pem, key_pem, ca_cert, ca_key, not_before, not_after):
    """The same certificate (subject, key, extensions) signed again by the CA with other validity dates: what
    `kubeadm certs renew` makes. Returns the PEM text."""
    with tempfile.TemporaryDirectory() as tmp:
        c, k, csr, out = (os.path.join(tmp, n) for n in ("c.crt", "c.key", "r.csr", "out.crt"))
        with open(c, "w") as f:
            f.write(cert_pem)
        with open(k, "w") as f:
            f.write(key_pem)
        os.chmod(k, 0o600)
        _openssl("x509", "-x509toreq", "-copy_extensions", "copyall", "-in", c, "-signkey", k, "-out", csr)
        _ca_sign(csr, out, ca_cert, ca_key, not_before, not_after)
        with open(out) as f:
            return f.read()


def _der_of_pem(text):
    lines = text.strip().splitlines()
    try:
        begin = lines.index("-----BEGIN CERTIFICATE-----")
        end = lines.index("-----END CERTIFICATE-----", begin)
        return base64.b64decode("".join(lines[begin + 1:end]), validate=True)
    except (ValueError, base64.binascii.Error):
        return None


def validity(cert):
    """(notBefore, notAfter) as epoch seconds of a certificate (PEM text/bytes or DER bytes), or None."""
    import calendar
    if isinstance(cert, bytes) and not cert.lstrip().startswith(b"-----"):
        der = cert
    else:
        der = _der_of_pem(cert.decode() if isinstance(cert, bytes) else cert)
    if der is None:
        return None
    try:
        i = _tbs_field(der, 3)                      # serialNumber, signature, issuer, *validity*
        tag, start, end = _tlv(der, i)
        out = []
        j = start
        for _ in range(2):
            tag, vs, ve = _tlv(der, j)
            s = der[vs:ve].decode()
            if tag == 0x17:
                s = ("19" if int(s[:2]) >= 50 else "20") + s
            out.append(calendar.timegm(time.strptime(s[:14], "%Y%m%d%H%M%S")))
            j = ve
        return tuple(out)
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _tlv(der, i):
    """(tag, start of the value, end) of the DER element at offset i."""
    tag, n = der[i], der[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(der[i:i + k], "big")
        i += k
    if i + n > len(der):
        raise IndexError("truncated")
    return tag, i, i + n


def _tbs_field(der, k):
    """Offset of the k-th field (0 = serialNumber) of the certificate's tbsCertificate."""
    _, cert_start, _ = _tlv(der, 0)
    _, i, _ = _tlv(der, cert_start)
    if der[i] == 0xA0:
        i = _tlv(der, i)[2]
    for _ in range(k):
        i = _tlv(der, i)[2]
    return i


def expired_message(cert, now):
    """Go's x509 error for a certificate outside its validity at `now`, or None while it is valid."""
    v = validity(cert)
    if v is None:
        return None
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    if now > v[1]:
        return "x509: certificate has expired or is not yet valid: current time %s is after %s" % (
            time.strftime(fmt, time.gmtime(now)), time.strftime(fmt, time.gmtime(v[1])))
    if now < v[0]:
        return "x509: certificate has expired or is not yet valid: current time %s is before %s" % (
            time.strftime(fmt, time.gmtime(now)), time.strftime(fmt, time.gmtime(v[0])))
    return None


def make_keypair(priv, pub):
    os.makedirs(os.path.dirname(priv), exist_ok=True)
    _openssl("genrsa", "-out", priv, "2048")
    os.chmod(priv, 0o600)
    _openssl("rsa", "-in", priv, "-pubout", "-out", pub)


def ca_hash_of_pem(cert_pem):
    """sha256 of the certificate's SubjectPublicKeyInfo (DER), as kubeadm's --discovery-token-ca-cert-hash.
    Read from the certificate's DER directly (every `kubeadm join` needs it; an openssl start costs ~18 ms of
    CPU); openssl when the certificate does not parse."""
    text = cert_pem.decode() if isinstance(cert_pem, bytes) else cert_pem
    spki = _spki_of_pem(text)
    if spki is None:
        pub = _openssl("x509", "-pubkey", "-noout", stdin=text.encode()).decode()
        spki = base64.b64decode("".join(l for l in pub.splitlines() if l and not l.startswith("-----")))
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def _spki_of_pem(text):
    """The DER SubjectPublicKeyInfo of the first certificate in PEM `text` (what `openssl x509 -pubkey` prints),
    or None."""
    lines = text.strip().splitlines()
    try:
        begin = lines.index("-----BEGIN CERTIFICATE-----")
        end = lines.index("-----END CERTIFICATE-----", begin)
        der = base64.b64decode("".join(lines[begin + 1:end]), validate=True)
    except (ValueError, base64.binascii.Error):
        return None

    def tlv(i):
        """(tag, start of the value, end) of the DER element at offset i."""
        tag, n = der[i], der[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(der[i:i + k], "big")
            i += k
        if i + n > len(der):
            raise IndexError("truncated")
        return tag, i, i + n

    try:
        tag, cert_start, _ = tlv(0)                 # Certificate ::= SEQUENCE
        tag2, i, _ = tlv(cert_start)                # tbsCertificate ::= SEQUENCE
        if tag != 0x30 or tag2 != 0x30:
            return None
        if der[i] == 0xA0:                          # [0] version
            i = tlv(i)[2]
        for _ in range(5):                          # serialNumber, signature, issuer, validity, subject
            i = tlv(i)[2]
        tag, _, end = tlv(i)                        # subjectPublicKeyInfo ::= SEQUENCE
        return der[i:end] if tag == 0x30 else None
    except IndexError:
        return None


def ca_hash(cert_path=os.path.join(PKI, "ca.crt")):
    with open(cert_path) as f:
        return ca_hash_of_pem(f.read())


def create_control_plane_pki(node, address, endpoint_host, service_ip="10.96.0.1", shared=None):
    """Write the PKI of a control plane. `shared` (name -> text) are the uploaded shared certs for a
    joining control plane; without it fresh CAs are created (kubeadm init)."""
    if shared:
        for name, text in shared.items():
            path = os.path.join(PKI, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o600 if name.endswith(".key") else 0o644)
    else:
        make_ca(os.path.join(PKI, "ca.crt"), os.path.join(PKI, "ca.key"), "kubernetes")
        make_ca(os.path.join(PKI, "front-proxy-ca.crt"), os.path.join(PKI, "front-proxy-ca.key"),
                "front-proxy-ca")
        make_ca(os.path.join(PKI, "etcd/ca.crt"), os.path.join(PKI, "etcd/ca.key"), "etcd-ca")
        make_keypair(os.path.join(PKI, "sa.key"), os.path.join(PKI, "sa.pub"))
    ca, cak = os.path.join(PKI, "ca.crt"), os.path.join(PKI, "ca.key")
    sans = ["DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local", "DNS:" + node, "IP:" + service_ip, "IP:" + address]
    if endpoint_host and endpoint_host != address:
        sans.append(("IP:" if endpoint_host.replace(".", "").isdigit() else "DNS:") + endpoint_host)
    make_signed(ca, cak, os.path.join(PKI, "apiserver.crt"), os.path.join(PKI, "apiserver.key"),
                "/CN=kube-apiserver", sans=sans)
    make_signed(ca, cak, os.path.join(PKI, "apiserver-kubelet-client.crt"),
                os.path.join(PKI, "apiserver-kubelet-client.key"),
                "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client")
    make_signed(os.path.join(PKI, "front-proxy-ca.crt"), os.path.join(PKI, "front-proxy-ca.key"),
                os.path.join(PKI, "front-proxy-client.crt"), os.path.join(PKI, "front-proxy-client.key"),
                "/CN=front-proxy-client")
    eca, ecak = os.path.join(PKI, "etcd/ca.crt"), os.path.join(PKI, "etcd/ca.key")
    make_signed(eca, ecak, os.path.join(PKI, "etcd/server.crt"), os.path.join(PKI, "etcd/server.key"),
                "/CN=" + node, sans=["DNS:" + node, "DNS:localhost", "IP:" + address, "IP:127.0.0.1", "IP:::1"])
    make_signed(eca, ecak, os.path.join(PKI, "etcd/peer.crt"), os.path.join(PKI, "etcd/peer.key"),
                "/CN=" + node, sans=["DNS:" + node, "DNS:localhost", "IP:" + address])
    make_signed(eca, ecak, os.path.join(PKI, "etcd/healthcheck-client.crt"),
                os.path.join(PKI, "etcd/healthcheck-client.key"), "/CN=kube-etcd-healthcheck-client")
    make_signed(eca, ecak, os.path.join(PKI, "apiserver-etcd-client.crt"),
                os.path.join(PKI, "apiserver-etcd-client.key"), "/CN=kube-apiserver-etcd-client")


def read_shared_certs():
    out = {}
    for name in SHARED_CERTS:
        with open(os.path.join(PKI, name)) as f:
            out[name] = f.read()
    return out


def kubeconfig(server, ca_pem, user, cert_pem=None, key_pem=None, token=None, cluster="kubernetes"):
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    u = {}
    if cert_pem:
        u["client-certificate-data"] = b64(cert_pem)
        u["client-key-data"] = b64(key_pem)
    if token:
        u["token"] = token
    ctx = "%s@%s" % (user, cluster)
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"cluster": {"certificate-authority-data": b64(ca_pem), "server": server},
                      "name": cluster}],
        "contexts": [{"context": {"cluster": cluster, "user": user}, "name": ctx}],
        "current-context": ctx, "preferences": {},
        "users": [{"name": user, "user": u}],
    }, default_flow_style=False, sort_keys=False)


def write_kubeconfig(path, server, user, org=None, client=True, days=365):
    """Write a kubeconfig for `user` (a client certificate signed by the cluster CA)."""
    ca, cak = os.path.join(PKI, "ca.crt"), os.path.join(PKI, "ca.key")
    with open(ca) as f:
        ca_pem = f.read()
    cert_pem = key_pem = None
    if client:
        with tempfile.TemporaryDirectory() as tmp:
            c, k = os.path.join(tmp, "c.crt"), os.path.join(tmp, "c.key")
            subj = ("/O=%s" % org if org else "") + "/CN=" + user
            make_signed(ca, cak, c, k, subj, days=days)
            with open(c) as f:
                cert_pem = f.read()
            with open(k) as f:
                key_pem = f.read()
    text = kubeconfig(server, ca_pem, user, cert_pem, key_pem)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
