"""PKI and kubeconfig files of the simulated Kubernetes control plane.

Certificates are real X.509 made with the machine's openssl (local, no network), so the documented
`openssl x509 -pubkey -in ca.crt | openssl rsa -pubin -outform der | openssl dgst -sha256 -hex` pipeline
gives the same hash kubeadm prints."""
import base64
import hashlib
import os
import subprocess
import tempfile

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


def make_ca(cert, key, cn, days=3650):
    os.makedirs(os.path.dirname(cert), exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", str(days), "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign")
    os.chmod(key, 0o600)


def make_signed(ca_cert, ca_key, cert, key, subj, days=365, sans=None):
    """A leaf certificate (EC P-256 key, quick to make) signed by the given CA."""
    os.makedirs(os.path.dirname(cert), exist_ok=True)
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    os.chmod(key, 0o600)
    with tempfile.TemporaryDirectory() as tmp:
        csr = os.path.join(tmp, "req.csr")
        _openssl("req", "-new", "-key", key, "-subj", subj, "-out", csr)
        args = ["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                "-out", cert, "-days", str(days), "-sha256"]
        if sans:
            ext = os.path.join(tmp, "ext.cnf")
            with open(ext, "w") as f:
                f.write("subjectAltName=" + ",".join(sans) + "\n")
            args += ["-extfile", ext]
        _openssl(*args)
    srl = os.path.splitext(ca_cert)[0] + ".srl"
    if os.path.exists(srl):
        os.unlink(srl)


def make_keypair(priv, pub):
    os.makedirs(os.path.dirname(priv), exist_ok=True)
    _openssl("genrsa", "-out", priv, "2048")
    os.chmod(priv, 0o600)
    _openssl("rsa", "-in", priv, "-pubout", "-out", pub)


def ca_hash_of_pem(cert_pem):
    """sha256 of the certificate's SubjectPublicKeyInfo (DER), as kubeadm's --discovery-token-ca-cert-hash."""
    pub = _openssl("x509", "-pubkey", "-noout", stdin=cert_pem.encode() if isinstance(cert_pem, str)
                   else cert_pem).decode()
    body = "".join(l for l in pub.splitlines() if l and not l.startswith("-----"))
    return "sha256:" + hashlib.sha256(base64.b64decode(body)).hexdigest()


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
                "/CN=" + node, sans=["DNS:" + node, "DNS:localhost", "IP:" + address])
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


def write_kubeconfig(path, server, user, org=None, client=True):
    """Write a kubeconfig for `user` (a client certificate signed by the cluster CA)."""
    ca, cak = os.path.join(PKI, "ca.crt"), os.path.join(PKI, "ca.key")
    with open(ca) as f:
        ca_pem = f.read()
    cert_pem = key_pem = None
    if client:
        with tempfile.TemporaryDirectory() as tmp:
            c, k = os.path.join(tmp, "c.crt"), os.path.join(tmp, "c.key")
            subj = ("/O=%s" % org if org else "") + "/CN=" + user
            make_signed(ca, cak, c, k, subj)
            with open(c) as f:
                cert_pem = f.read()
            with open(k) as f:
                key_pem = f.read()
    text = kubeconfig(server, ca_pem, user, cert_pem, key_pem)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
