"""The lab clock (`scripts/lab clock advance`) drives everything in the hosts: `date`, certificates (made,
checked, renewed), the API server's and its clients' certificate checks, token TTLs.

Own lab on 127.0.66."""
import json
import time

import pytest

from k8slab import Lab, require_root

KC = "kubectl --kubeconfig /etc/kubernetes/admin.conf "


@pytest.fixture(scope="module")
def lab():
    require_root()
    lb = Lab("clock", "127.0.66", hosts=1).up()
    try:
        lb.prepare(1)
        lb.ok(1, "kubeadm init --pod-network-cidr=10.244.0.0/16")
        yield lb
    finally:
        lb.down()


def residual(out, name):
    for line in out.splitlines():
        if line.split()[:1] == [name]:
            return line.split()[6]
    raise AssertionError("no row %s in:\n%s" % (name, out))


def wait_ok(lab, cmd, secs=30):
    deadline = time.time() + secs
    while True:
        p = lab.sh(1, cmd)
        if p.returncode == 0 or time.time() > deadline:
            return p
        time.sleep(0.5)


def test_date_follows_the_lab_clock(lab):
    assert abs(int(lab.ok(1, "date +%s")) - time.time()) < 5
    lab.clock("340d")
    assert abs(int(lab.ok(1, "date +%s")) - (time.time() + 340 * 86400)) < 5
    assert abs(int(lab.ok(1, "date -u +%s")) - (time.time() + 340 * 86400)) < 5
    # an explicit time is the user's, not the clock's
    assert lab.ok(1, "date -u -d @0 +%Y").strip() == "1970"
    p = lab.sh(1, "date -s '2020-01-01'")
    assert p.returncode == 1 and "cannot set date" in p.stderr


def test_certificates_expire_and_renew_on_the_lab_clock(lab):
    # 340 days after `kubeadm init`: the one-year certificates have 24 days left, the CA ten years
    out = lab.ok(1, "kubeadm certs check-expiration")
    assert residual(out, "apiserver") == "24d", out
    assert residual(out, "admin.conf") == "24d", out
    assert "ca " in out and "9y" in out
    assert lab.kubectl(1, "get nodes").returncode == 0
    # a short-lived user certificate expires first: the API server refuses it (401), as the real one does
    lab.ok(1, "kubeadm kubeconfig user --client-name alice --org system:masters --validity-period 24h > /root/alice.conf")
    assert lab.sh(1, "kubectl --kubeconfig /root/alice.conf get nodes").returncode == 0
    lab.clock("2d")
    p = lab.sh(1, "kubectl --kubeconfig /root/alice.conf get nodes")
    assert p.returncode == 1 and "You must be logged in to the server (Unauthorized)" in p.stderr, p.stderr
    assert "x509: certificate has expired" in lab.ok(1, "cat /var/log/labnode/kube-apiserver.log")
    assert lab.kubectl(1, "get nodes").returncode == 0
    # past a year: the API server's certificate has expired; the real kubectl refuses it
    lab.clock("30d")
    out = lab.ok(1, "kubeadm certs check-expiration")
    assert residual(out, "apiserver") == "<invalid>", out
    p = lab.kubectl(1, "get nodes")
    assert p.returncode == 1 and "x509: certificate has expired or is not yet valid" in p.stderr, p.stderr
    # the lab's own clients too (kubeadm talks to the API server with admin.conf)
    p = lab.sh(1, "kubeadm token list")
    assert p.returncode == 1 and "x509: certificate has expired" in p.stderr, p.stderr
    out = lab.ok(1, "kubeadm certs renew all")
    assert "certificate for serving the Kubernetes API renewed" in out
    assert "Done renewing certificates. You must restart" in out
    out = lab.ok(1, "kubeadm certs check-expiration")
    assert residual(out, "apiserver") == "364d" and residual(out, "super-admin.conf") == "364d", out
    # the running API server still serves the certificate it started with
    p = lab.kubectl(1, "get nodes")
    assert p.returncode == 1 and "x509: certificate has expired" in p.stderr, p.stderr
    # restart of the static pods, as the documentation says: manifests out, wait, back
    lab.ok(1, "mkdir -p /root/m && mv /etc/kubernetes/manifests/*.yaml /root/m/ && "
              "for i in $(seq 60); do curl -sk https://%s:6443/livez >/dev/null || break; sleep 0.5; done && "
              "mv /root/m/*.yaml /etc/kubernetes/manifests/" % lab.addr(1))
    p = wait_ok(lab, KC + "get nodes -o json")
    assert p.returncode == 0, p.stderr
    assert [n["metadata"]["name"] for n in json.loads(p.stdout)["items"]] == ["lab-1"]
    # the served certificate is dated on the lab clock: valid for a year from now, not from the real now
    out = lab.ok(1, "openssl x509 -noout -enddate -in /etc/kubernetes/pki/apiserver.crt")
    end = time.mktime(time.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT")) - time.timezone
    assert abs(end - (time.time() + 372 * 86400 + 365 * 86400)) < 3600


def test_bootstrap_tokens_expire_on_the_lab_clock(lab):
    tok = lab.ok(1, "kubeadm token create --ttl 1h").strip()
    assert tok.split(".")[0] in lab.ok(1, "kubeadm token list")
    lab.clock("2h")
    assert tok.split(".")[0] not in lab.ok(1, "kubeadm token list")


def test_destroy_host_wipes_it(lab):
    lab.ok(1, "touch /root/mark && test -e /etc/kubernetes/admin.conf")
    out = lab.lab("destroy-host", "lab-1").stdout
    assert "destroyed and booted again as a fresh machine" in out
    # a fresh machine: no cluster, no packages, no files of before; sshd answers with the same host key
    p = lab.sh(1, "test -e /root/mark || test -e /etc/kubernetes/admin.conf || command -v kubeadm")
    assert p.returncode == 1, p.stdout
    assert lab.ok(1, "swapon --show --noheadings | wc -l").strip() != "0"
    p = lab.lab("ssh", "lab-1", "hostname")
    assert p.stdout.strip() == "lab-1"
    # the lab clock is the lab's, not the host's
    assert abs(int(lab.ok(1, "date +%s")) - (time.time() + 372 * 86400 + 2 * 3600)) < 10
