/// What each host step runs, per OS family: pure functions from typed values to quoted commands and file
/// contents. The engine decides when to run them.
public enum NodeRecipes {
    public static let kubernetesPackages = ["kubelet", "kubeadm", "kubectl"]
    public static let bootstrapDirectory = "/var/lib/bootstrap"
    public static let adminKubeconfig = "/etc/kubernetes/admin.conf"

    // MARK: facts

    /// One round trip that prints `key=value` lines describing the host. Read-only, and cheap: three
    /// programs (uname, awk, the package query) besides the shell's builtins, since apply and
    /// `plan --refresh` run it on every host.
    public static let facts = ShellCommand(script: """
        . /etc/os-release 2>/dev/null; echo "os.id=$ID"; echo "os.version=$VERSION_ID"
        set -- $(uname -nm); echo "hostname=$1"; echo "arch=$2"
        proc=$(awk 'FILENAME == "/proc/cpuinfo" && /^processor/ { c++ }
          FILENAME == "/proc/meminfo" && /^MemTotal:/ { m = $2 }
          FILENAME == "/proc/swaps" && FNR > 1 { s++ }
          END { if (c) print "cpus=" c; print "mem.kb=" m; print "swap.count=" s + 0 }' \
          /proc/cpuinfo /proc/meminfo /proc/swaps 2>/dev/null)
        echo "$proc"; case "$proc" in *cpus=*) ;; *) echo "cpus=$(nproc)" ;; esac
        mid=; { read -r mid < /etc/machine-id; } 2>/dev/null; echo "machine-id=$mid"
        uuid=; { read -r uuid < /sys/class/dmi/id/product_uuid; } 2>/dev/null; echo "product-uuid=$uuid"
        if command -v dpkg-query >/dev/null 2>&1; then
          dpkg-query -W -f='pkg.${Package}=${Version}\\n' kubeadm kubelet kubectl containerd 2>/dev/null
        else
          rpm -q --qf 'pkg.%{NAME}=%{VERSION}\\n' kubeadm kubelet kubectl containerd 2>/dev/null | grep '^pkg\\.'
        fi
        [ -f /etc/kubernetes/kubelet.conf ] && echo "in-cluster=yes"
        true
        """)

    /// Parses the output of `facts`.
    public static func parseFacts(_ text: String) -> HostFacts? {
        var kv: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            kv[String(line[..<eq])] = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
        }
        guard let osID = kv["os.id"], !osID.isEmpty else { return nil }
        var packages: [String: String] = [:]
        // Known but not installed packages print an empty version.
        for (k, v) in kv where k.hasPrefix("pkg.") && !v.isEmpty { packages[String(k.dropFirst(4))] = v }
        let arch: String
        switch kv["arch"] ?? "" {
        case "x86_64": arch = "amd64"
        case "aarch64": arch = "arm64"
        case let other: arch = other
        }
        return HostFacts(
            hostname: kv["hostname"] ?? "", osID: osID, osVersion: kv["os.version"] ?? "",
            architecture: arch, cpus: Int(kv["cpus"] ?? "") ?? 0,
            memoryMB: (Int(kv["mem.kb"] ?? "") ?? 0) / 1024,
            swapOn: (Int(kv["swap.count"] ?? "") ?? 0) > 0,
            machineID: kv["machine-id"] ?? "", productUUID: kv["product-uuid"] ?? "",
            packages: packages, inCluster: kv["in-cluster"] == "yes")
    }

    // MARK: prepare

    public static let kernelModules = ["overlay", "br_netfilter"]
    public static let sysctls: [(String, String)] = [
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.bridge.bridge-nf-call-ip6tables", "1"),
        ("net.ipv4.ip_forward", "1"),
    ]

    public static var prepare: ShellCommand {
        let modules = kernelModules.joined(separator: "\n") + "\n"
        let sysctlText = sysctls.map { "\($0.0) = \($0.1)" }.joined(separator: "\n") + "\n"
        return ShellCommand(steps: [
            "swapoff -a",
            // Comment out every active swap line so swap stays off after a reboot.
            #"sed -i -E '/^[^#].*[[:space:]]swap[[:space:]]/ s/^/#/' /etc/fstab"#,
            "mkdir -p /etc/modules-load.d /etc/sysctl.d",
            "printf %s \(Shell.quote(modules)) > /etc/modules-load.d/kubernetes.conf",
            "modprobe -a " + Shell.join(kernelModules),
            "printf %s \(Shell.quote(sysctlText)) > /etc/sysctl.d/99-kubernetes.conf",
            "sysctl --system >/dev/null",
        ])
    }

    // MARK: containerd

    /// The package manager, as guarded commands run it: waiting a bounded time for its lock (another
    /// process, such as unattended-upgrades on a fresh image, may hold it), after repairing an install that a
    /// killed run left half-done (`dpkg --configure -a`).
    static func packageManager(_ family: OSFamily, lockWait: Int) -> (prelude: [String], tool: String) {
        switch family {
        case .debian:
            return ([
                "export DEBIAN_FRONTEND=noninteractive",
                // dpkg's journal holds what an interrupted run unpacked; apt refuses to work until it is set up
                "if [ -n \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ]; then dpkg --configure -a; fi",
            ], "apt-get -o DPkg::Lock::Timeout=\(lockWait)")
        case .fedora:
            // dnf waits for its lock without a bound, or not at all (exit_on_lock): wait here, bounded
            let pid = "/var/lib/dnf/rpmdb_lock.pid"
            return ([
                "i=0; while p=$(cat \(pid) 2>/dev/null) && [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; do",
                "  [ $i -ge \(lockWait) ] && { echo \"dnf is still locked by process $p after \(lockWait)s\" >&2; exit 1; }",
                "  sleep 1; i=$((i + 1))",
                "done",
            ], "dnf --setopt=exit_on_lock=True")
        }
    }

    /// The package manager's prelude as one step of a script (none when it has none).
    static func preludeSteps(_ pm: (prelude: [String], tool: String)) -> [ShellCommand.Step] {
        pm.prelude.isEmpty ? [] : [.init(pm.prelude.joined(separator: "\n"),
                                         name: "preparing the package manager (an interrupted dpkg, its lock)")]
    }

    static func steps(_ lines: [String]) -> [ShellCommand.Step] { lines.map { ShellCommand.Step($0) } }

    static func packagesGuard(_ what: String, _ limits: ClusterPlan.Timeouts) -> RemoteGuard {
        RemoteGuard(lock: "packages", what: what, seconds: limits.packages, setting: "spec.timeouts.packages")
    }

    public static func containerd(_ family: OSFamily, version: String?, limits: ClusterPlan.Timeouts = .init())
        -> ShellCommand
    {
        let pkg = version.map { family == .debian ? "containerd=\($0)" : "containerd-\($0)" } ?? "containerd"
        let pm = packageManager(family, lockWait: limits.packages / 2)
        // A fresh image's package lists are stale or empty: refresh them before installing.
        let install = family == .debian
            ? ["\(pm.tool) update -q >/dev/null", "\(pm.tool) install -y -q " + Shell.quote(pkg)]
            : ["\(pm.tool) install -y -q " + Shell.quote(pkg)]
        return packagesGuard("install containerd", limits).command(ShellCommand(steps: preludeSteps(pm) + steps(install) + [
            "mkdir -p /etc/containerd",
            "containerd config default > /etc/containerd/config.toml",
            "sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml",
            "grep -q 'SystemdCgroup = true' /etc/containerd/config.toml",
            // No daemon-reload: the package manager reloads units it installs, and no unit file is edited here.
            "systemctl enable containerd >/dev/null 2>&1",
            "systemctl restart containerd",
            "systemctl is-active --quiet containerd",
        ]))
    }

    // MARK: Kubernetes repository and packages

    public static func repositoryBase(minor: String, family: OSFamily) -> String {
        "https://pkgs.k8s.io/core:/stable:/v\(minor)/\(family == .debian ? "deb" : "rpm")/"
    }

    public static func kubernetesRepo(_ family: OSFamily, minor: String, limits: ClusterPlan.Timeouts = .init())
        -> ShellCommand
    {
        let base = repositoryBase(minor: minor, family: family)
        let pm = packageManager(family, lockWait: limits.packages / 2)
        let guarded = packagesGuard("add the Kubernetes \(minor) package repository", limits)
        switch family {
        case .debian:
            let keyring = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
            let list = "deb [signed-by=\(keyring)] \(base) /\n"
            return guarded.command(ShellCommand(steps: [
                "mkdir -p -m 755 /etc/apt/keyrings",
                "curl -fsSL \(Shell.quote(base + "Release.key")) | gpg --dearmor --yes -o \(keyring)",
                "printf %s \(Shell.quote(list)) > /etc/apt/sources.list.d/kubernetes.list",
            ] + preludeSteps(pm) + [
                "\(pm.tool) update -q >/dev/null",
            ]))
        case .fedora:
            let repo = """
                [kubernetes]
                name=Kubernetes
                baseurl=\(base)
                enabled=1
                gpgcheck=1
                gpgkey=\(base)repodata/repomd.xml.key
                exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni

                """
            return guarded.command(ShellCommand(steps: [
                "printf %s \(Shell.quote(repo)) > /etc/yum.repos.d/kubernetes.repo",
            ] + preludeSteps(pm) + [
                "\(pm.tool) makecache -q >/dev/null",
            ]))
        }
    }

    public static func kubernetesPackages(_ family: OSFamily, version: String, limits: ClusterPlan.Timeouts = .init())
        -> ShellCommand
    {
        let v = family.kubernetesPackageVersion(version)
        let pm = packageManager(family, lockWait: limits.packages / 2)
        let guarded = packagesGuard("install kubelet, kubeadm and kubectl \(version)", limits)
        switch family {
        case .debian:
            let pkgs = kubernetesPackages.map { "\($0)=\(v)" }
            return guarded.command(ShellCommand(steps: preludeSteps(pm) + steps([
                // --allow-change-held-packages moves held packages to the pinned version; hold them again after.
                "\(pm.tool) install -y -q --allow-downgrades --allow-change-held-packages " + Shell.join(pkgs),
                "apt-mark hold \(Shell.join(kubernetesPackages)) >/dev/null",
                // Enabled, not started: kubeadm's kubelet-start phase (re)starts it once its config exists.
                "systemctl enable kubelet >/dev/null 2>&1",
            ])))
        case .fedora:
            let pkgs = kubernetesPackages.map { "\($0)-\(v)" }
            return guarded.command(ShellCommand(steps: preludeSteps(pm) + steps([
                "\(pm.tool) install -y -q --disableexcludes=kubernetes " + Shell.join(pkgs),
                "systemctl enable kubelet >/dev/null 2>&1",
            ])))
        }
    }

    // MARK: kubeadm

    public static let initConfigPath = "\(bootstrapDirectory)/kubeadm-init.yaml"
    public static let joinConfigPath = "\(bootstrapDirectory)/kubeadm-join.yaml"

    public static func kubeadmInit(limits: ClusterPlan.Timeouts = .init()) -> ShellCommand {
        once(unless: adminKubeconfig, ["kubeadm", "init", "--config", initConfigPath, "--upload-certs"],
             writingStdinTo: initConfigPath,
             RemoteGuard(lock: "kubeadm", what: "kubeadm init", seconds: limits.`init`, setting: "spec.timeouts.init"))
    }

    public static func kubeadmJoin(limits: ClusterPlan.Timeouts = .init()) -> ShellCommand {
        once(unless: "/etc/kubernetes/kubelet.conf", ["kubeadm", "join", "--config", joinConfigPath],
             writingStdinTo: joinConfigPath,
             RemoteGuard(lock: "kubeadm", what: "kubeadm join", seconds: limits.join, setting: "spec.timeouts.join"))
    }

    /// The first line `once` prints when its marker shows the command already happened.
    public static let alreadyDone = "bootstrap: already done"

    /// Runs a one-shot command guarded (see `RemoteGuard`: host-wide lock, output to a file, time limit), unless
    /// `marker` shows it already happened. Its config file (it carries the join token and certificate key) is
    /// written 0600 from the command's standard input, under the lock and only when the command will run: one
    /// round trip, and the secrets never touch a command line or a temporary file.
    static func once(unless marker: String, _ argv: [String], writingStdinTo config: String, _ guarded: RemoteGuard)
        -> ShellCommand
    {
        guarded.command(ShellCommand(steps: [.init(Shell.join(argv))]), underLock: [
            "if [ -f \(Shell.quote(marker)) ]; then echo '\(alreadyDone) (\(marker) exists)'; exit 0; fi",
            "(umask 077 && rm -f \(Shell.quote(config)) && cat > \(Shell.quote(config))) || exit 1",
        ])
    }

    /// Is this host a node already? (init or join finished, even if the state does not know it yet)
    public static let hasKubeletConfig = ShellCommand(["test", "-f", "/etc/kubernetes/kubelet.conf"])
    public static let hasAdminConfig = ShellCommand(["test", "-f", adminKubeconfig])

    /// `sha256:<hex>` of the cluster CA's public key, the documented way.
    public static let caCertHash = ShellCommand(script:
        "openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der "
        + "| openssl dgst -sha256 -hex | sed 's/^.* //'")

    /// The remote host's clock, in seconds since the epoch (expiry decisions use the cluster's clock).
    public static let remoteTime = ShellCommand(["date", "+%s"], privileged: false)

    /// The cluster's clock (`now=SECONDS`) and whether the bootstrap token with this ID still exists there
    /// (`token=present|absent|unknown`), in one round trip. Only the ID goes on the command line, and only
    /// whether it was found comes back: `kubeadm token list` prints whole tokens, which stay on the host.
    public static func clockAndToken(id: String) -> ShellCommand {
        ShellCommand(script: [
            "echo \"now=$(date +%s)\"",
            "if list=$(kubeadm token list --kubeconfig \(adminKubeconfig) 2>/dev/null); then",
            "  printf '%s\\n' \"$list\" | awk -v id=\(Shell.quote(id)) "
                + "'index($1, id \".\") == 1 { found = 1 } END { print found ? \"token=present\" : \"token=absent\" }'",
            "else echo token=unknown; fi",
        ].joined(separator: "\n"))
    }

    public static func createToken(_ token: Secret, ttl: String) -> ShellCommand {
        ShellCommand(script: "kubeadm token create \(Shell.quote(token.revealed)) --ttl \(Shell.quote(ttl)) >/dev/null",
                     secrets: [token])
    }

    public static func uploadCerts(_ key: Secret) -> ShellCommand {
        ShellCommand(script: "kubeadm init phase upload-certs --upload-certs --certificate-key "
                     + Shell.quote(key.revealed) + " >/dev/null", secrets: [key])
    }

    // MARK: kubectl (run on the first control plane)

    public static func kubectl(_ args: [String]) -> ShellCommand {
        ShellCommand(["kubectl", "--kubeconfig", adminKubeconfig] + args)
    }

    public static func nodeLabels(node: String, set: [String: String], remove: [String]) -> ShellCommand? {
        let words = set.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + remove.sorted().map { "\($0)-" }
        guard !words.isEmpty else { return nil }
        return kubectl(["label", "node", node, "--overwrite"] + words)
    }

    public static func nodeTaints(node: String, set: [ClusterPlan.Taint], remove: [ClusterPlan.Taint])
        -> ShellCommand?
    {
        let words = set.map(\.kubectlForm) + remove.map { "\($0.key):\($0.effect.rawValue)-" }
        guard !words.isEmpty else { return nil }
        return kubectl(["taint", "node", node, "--overwrite"] + words)
    }

    public static func drain(node: String) -> ShellCommand {
        kubectl(["drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=120s"])
    }

    public static func deleteNode(_ node: String) -> ShellCommand {
        kubectl(["delete", "node", node, "--ignore-not-found"])
    }

    public static let nodesJSON = kubectl(["get", "nodes", "-o", "json"])

    // MARK: reset

    /// `kubeadm reset` and the clean-up kubeadm leaves to the user, guarded under the kubeadm lock (a reset never
    /// runs while a kubeadm init or join of another run is still going on on the host).
    public static func reset(_ family: OSFamily?, purge: Bool, limits: ClusterPlan.Timeouts = .init()) -> ShellCommand {
        var lines = [
            "if command -v kubeadm >/dev/null 2>&1; then kubeadm reset -f >/dev/null 2>&1 || kubeadm reset -f; fi",
            "rm -rf /etc/cni/net.d /var/lib/cni /root/.kube",
            // Everything bootstrap left (configs with secrets, values, outputs) but the locks, which other
            // commands may hold or wait for, and the log this reset writes to.
            "find \(bootstrapDirectory) -mindepth 1 -maxdepth 1 ! -name '*.lock' ! -name kubeadm.log -exec rm -rf {} + 2>/dev/null || true",
            "for i in cni0 flannel.1 vxlan.calico tunl0; do ip link delete \"$i\" >/dev/null 2>&1 || true; done",
            "iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X || true",
        ]
        if purge {
            switch family {
            case .debian?:
                let pm = packageManager(.debian, lockWait: limits.packages / 2)
                lines += pm.prelude + [
                    "apt-mark unhold \(Shell.join(kubernetesPackages)) >/dev/null 2>&1 || true",
                    "\(pm.tool) purge -y -q \(Shell.join(kubernetesPackages)) >/dev/null || true",
                    "rm -f /etc/apt/sources.list.d/kubernetes.list /etc/apt/keyrings/kubernetes-apt-keyring.gpg",
                ]
            case .fedora?:
                let pm = packageManager(.fedora, lockWait: limits.packages / 2)
                lines += pm.prelude + [
                    "\(pm.tool) remove -y -q \(Shell.join(kubernetesPackages)) >/dev/null || true",
                    "rm -f /etc/yum.repos.d/kubernetes.repo",
                ]
            case nil:
                break
            }
        }
        let seconds = purge ? max(limits.join, limits.packages) : limits.join
        return RemoteGuard(lock: "kubeadm", what: "kubeadm reset", seconds: seconds, setting: "spec.timeouts.join")
            .command(lines.joined(separator: "\n"))
    }
}
