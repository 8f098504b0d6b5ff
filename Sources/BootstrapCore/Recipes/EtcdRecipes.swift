import Foundation

/// Commands for etcd backups on a control plane, run as root: etcdctl/etcdutl from etcd's release tarball
/// (checked against its published SHA256SUMS), `snapshot save` with the etcd client certificates.
public enum EtcdRecipes {
    public static let etcdctl = "/usr/local/bin/etcdctl"
    public static let etcdutl = "/usr/local/bin/etcdutl"
    public static let manifest = "/etc/kubernetes/manifests/etcd.yaml"
    public static let pki = "/etc/kubernetes/pki"
    public static let backupDirectory = "\(NodeRecipes.bootstrapDirectory)/backup"
    /// What a restore needs besides the snapshot, relative to /etc/kubernetes/pki.
    public static let pkiFiles = ["ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub",
                                  "etcd/ca.crt", "etcd/ca.key"]

    /// Prints the etcd version of the static pod manifest's image (`registry.k8s.io/etcd:3.6.4-0` → `3.6.4`).
    public static let version = ShellCommand(steps: [
        .init("test -f \(manifest) || { echo \"\(manifest) is missing: this host runs no etcd static pod\" >&2; exit 1; }",
              name: "test -f \(manifest)"),
        .init("v=$(grep -o 'etcd:v\\{0,1\\}[0-9][0-9.]*[0-9]' \(manifest) | head -n 1 | sed 's/^etcd:v\\{0,1\\}//')",
              name: "the etcd image of \(manifest)"),
        "test -n \"$v\" || { echo 'no etcd image version in \(manifest)' >&2; exit 1; }",
        "echo \"$v\"",
    ], privileged: true)

    /// Installs etcdctl and etcdutl `version` (without a `v`) from etcd's release tarball, checked against the
    /// release's SHA256SUMS (kept when both are already that version).
    public static func install(version: String) -> ShellCommand {
        let tag = "v" + version
        let base = "https://github.com/etcd-io/etcd/releases/download/\(tag)/"
        let steps: [ShellCommand.Step] = [
            .init("if \(etcdctl) version 2>/dev/null | grep -qx \(Shell.quote("etcdctl version: \(version)")) && \(etcdutl) version 2>/dev/null | grep -qx \(Shell.quote("etcdutl version: \(version)")); then exit 0; fi",
                  name: "etcdctl version"),
            .init("case \"$(uname -m)\" in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) echo \"unsupported architecture $(uname -m)\" >&2; exit 1 ;; esac",
                  name: "uname -m (the architecture)"),
            "top=\(Shell.quote("etcd-\(tag)-linux-"))\"$arch\"",
            "tmp=$(mktemp -d)",
            "curl -fsSL -o \"$tmp/$top.tar.gz\" \(Shell.quote(base))\"$top.tar.gz\"",
            "curl -fsSL -o \"$tmp/SHA256SUMS\" \(Shell.quote(base + "SHA256SUMS"))",
            .init("(cd \"$tmp\" && grep \"  $top.tar.gz\\$\" SHA256SUMS > sum && test -s sum && sha256sum --check --strict --quiet sum)",
                  name: "sha256sum --check (SHA256SUMS of etcd \(tag))"),
            "tar -xzf \"$tmp/$top.tar.gz\" -C \"$tmp\" \"$top/etcdctl\" \"$top/etcdutl\"",
            "install -m 0755 \"$tmp/$top/etcdctl\" \"$tmp/$top/etcdutl\" /usr/local/bin/",
        ]
        return RemoteGuard(lock: "etcdctl", what: "install etcdctl \(tag)", seconds: 300)
            .command(ShellCommand(steps: steps, cleanup: "[ -z \"${tmp:-}\" ] || rm -rf \"$tmp\"", privileged: true))
    }

    /// etcdctl against this host's etcd with the etcd client certificate (healthcheck-client, else server).
    static func ctl(_ args: String) -> String {
        "c=healthcheck-client; [ -f \(pki)/etcd/$c.crt ] || c=server; ETCDCTL_API=3 \(etcdctl) --endpoints=https://127.0.0.1:2379 --cacert=\(pki)/etcd/ca.crt --cert=\(pki)/etcd/$c.crt --key=\(pki)/etcd/$c.key \(args)"
    }

    /// The members' names, one a line (`member list`: `ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER`).
    public static let memberList = ShellCommand(steps: [
        .init("m=$(" + ctl("member list") + ")", name: "etcdctl member list"),
        "printf '%s\\n' \"$m\" | awk -F', ' 'NF >= 3 {print $3}'",
    ], privileged: true)

    /// `snapshot save` to `path`, then `etcdutl snapshot status -w json` of it (printed).
    public static func snapshot(to path: String) -> ShellCommand {
        RemoteGuard(lock: "etcd-snapshot", what: "etcdctl snapshot save", seconds: 300).command(ShellCommand(steps: [
            "mkdir -p -m 700 \(backupDirectory)",
            .init(Shell.join(["rm", "-f", path])),
            .init(ctl("snapshot save \(Shell.quote(path))") + " >&2", name: "etcdctl snapshot save"),
            .init(Shell.join([etcdutl, "snapshot", "status", path, "-w", "json"]), name: "etcdutl snapshot status"),
        ], privileged: true))
    }

    public static func remove(_ path: String) -> ShellCommand {
        ShellCommand(steps: [.init(Shell.join(["rm", "-f", path]))], privileged: true)
    }
}

extension EtcdRecipes {
    /// `etcdctl member remove` of the member whose peer URL is `peerURL`, from a healthy control plane (prints
    /// what it did; nothing when it is no member): a control plane leaves etcd before it is drained and reset,
    /// so that etcd counts its quorum right even when the host is gone.
    public static func memberRemove(peerURL: String) -> ShellCommand {
        ShellCommand(steps: [
            .init("l=$(" + ctl("member list") + ")", name: "etcdctl member list"),
            .init("id=$(printf '%s\\n' \"$l\" | awk -F', ' -v u=\(Shell.quote(peerURL)) '$4 == u {print $1}' | head -n 1)"),
            .init("if [ -n \"$id\" ]; then " + ctl("member remove \"$id\"") + "; fi",
                  name: "etcdctl member remove (\(peerURL))"),
        ], privileged: true)
    }

    /// The etcd peer URL of a control plane at `address` (kubeadm's: the advertise address, port 2380).
    public static func peerURL(address: String) -> String {
        address.contains(":") ? "https://[\(address)]:2380" : "https://\(address):2380"
    }
}
