"""What the lab benchmarks share: the lab's environment, running a command in it, and the cluster plan they apply
(one control plane and N workers on the lab's hosts, flannel)."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = ["bash", os.path.join(ROOT, "scripts/lab")]


def environment(**defaults):
    """os.environ with the lab's LAB_DIR and LAB_NET (the benchmarks' own unless set) and NO_COLOR."""
    env = dict(os.environ, NO_COLOR="1")
    for k, v in dict({"LAB_DIR": "/srv/bootstrap-bench", "LAB_NET": "127.0.30"}, **defaults).items():
        env.setdefault(k, v)
    return env


def run(env, args, **kw):
    return subprocess.run(args, env=env, capture_output=True, text=True, **kw)


def write_plan(env, work, workers, version="1.34.1", spec_extra=""):
    """WORK/bench.yaml: cp-1 on the lab's first host (.11), worker-1..N after it; `spec_extra` is more of spec
    (YAML lines indented by two spaces)."""
    net, d = env["LAB_NET"], env["LAB_DIR"]
    hosts = ["    - { name: cp-1, address: %s.11, role: control-plane }" % net]
    hosts += ["    - { name: worker-%d, address: %s.%d, role: worker }" % (i + 1, net, 12 + i) for i in range(workers)]
    text = ("apiVersion: bootstrap.k8s.lab/v1alpha1\nkind: Cluster\nmetadata: { name: bench }\nspec:\n"
            '  kubernetes: { version: "%s" }\n' % version
            + "  network: { cni: flannel, podSubnet: 10.244.0.0/16 }\n"
            + "  ssh: { user: ubuntu, keyPath: %s/id_ed25519, knownHosts: %s/known_hosts }\n" % (d, d)
            + "  parallelism: 64\n" + spec_extra + "  hosts:\n" + "\n".join(hosts) + "\n")
    path = os.path.join(work, "bench.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path
