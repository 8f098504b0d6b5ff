/// What each host step runs: pure functions from typed values to quoted commands and file contents. What differs
/// per OS comes from the host's `NodeOS`; this wraps it in guards. The engine decides when to run them.
public enum NodeRecipes {
    public static let kubernetesPackages = ["kubelet", "kubeadm", "kubectl"]
    public static let bootstrapDirectory = "/var/lib/bootstrap"
    public static let adminKubeconfig = "/etc/kubernetes/admin.conf"

    // MARK: facts

    /// The packages the facts report the versions of.
    public static let queriedPackages = ["kubeadm", "kubelet", "kubectl", "containerd"]

    /// One round trip that prints `key=value` lines describing the host. Read-only, and cheap: four
    /// programs (uname, awk, ip, the package query of the host's `NodeOS`) besides the shell's builtins, since
    /// apply and `plan --refresh` run it on every host; on control planes also `date` and `kubeadm certs
    /// check-expiration` (`Certificates.factsScript`). `default.address` is what kubeadm advertises when told
    /// no address: the default route's source address, else the first global IPv4 address of its interface.
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
        \(NodeOSes.packageQuery(queriedPackages))
        [ -f /etc/kubernetes/kubelet.conf ] && echo "in-cluster=yes"
        dev=; src=; set -- $(ip -4 route show default 2>/dev/null)
        while [ $# -gt 1 ]; do case $1 in dev) dev=$2 ;; src) src=$2 ;; esac; shift; done
        if [ -z "$src" ] && [ -n "$dev" ]; then
          src=$(ip -4 -o addr show dev "$dev" scope global 2>/dev/null |
            awk '{ for (i = 1; i < NF; i++) if ($i == "inet") { split($(i + 1), a, "/"); print a[1]; exit } }')
        fi
        echo "default.address=$src"
        \(Certificates.factsScript)
        true
        """)

    /// IMDSv2 (a token first, then the keys), for hosts found in EC2: `imds.KEY=VALUE` lines, nothing when the
    /// service does not answer. Read-only.
    public static let instanceMetadata = ShellCommand(script: """
        base=http://169.254.169.254/latest
        t=$(curl -sf -m 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$base/api/token") || exit 0
        for k in instance-id instance-type placement/availability-zone placement/region; do
          v=$(curl -sf -m 3 -H "X-aws-ec2-metadata-token: $t" "$base/meta-data/$k") && echo "imds.$k=$v"
        done
        true
        """)

    /// Parses the output of `instanceMetadata`; nil unless every key answered.
    public static func parseInstanceMetadata(_ text: String) -> InstanceMetadata? {
        var kv: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            kv[String(line[..<eq])] = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
        }
        guard let id = kv["imds.instance-id"], let type = kv["imds.instance-type"],
              let zone = kv["imds.placement/availability-zone"], !id.isEmpty, !type.isEmpty, !zone.isEmpty else { return nil }
        let region = kv["imds.placement/region"].flatMap { $0.isEmpty ? nil : $0 } ?? String(zone.dropLast())
        return InstanceMetadata(instanceId: id, instanceType: type, availabilityZone: zone, region: region)
    }

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
            packages: packages, inCluster: kv["in-cluster"] == "yes", certificates: Certificates.parseFacts(kv),
            defaultAddress: kv["default.address"].flatMap { IPv4Address($0) != nil ? $0 : nil })
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

    /// The package manager's prelude as one step of a script (none when it has none).
    static func preludeSteps(_ pm: PackageManager) -> [ShellCommand.Step] {
        pm.prelude.isEmpty ? [] : [.init(pm.prelude.joined(separator: "\n"),
                                         name: "preparing the package manager (an interrupted dpkg, its lock)")]
    }

    static func steps(_ lines: [String]) -> [ShellCommand.Step] { lines.map { ShellCommand.Step($0) } }

    static func packagesGuard(_ what: String, _ limits: ClusterPlan.Timeouts) -> RemoteGuard {
        RemoteGuard(lock: "packages", what: what, seconds: limits.packages, setting: "spec.timeouts.packages")
    }

    /// containerd configured with the systemd cgroup driver, enabled and restarted. Installed here only when it
    /// is not at the plan's version (`version`, or any when nil): on a new host the packages step installed it
    /// in its one transaction; a changed version on a node comes here (drained first by the step).
    public static func containerd(_ os: any NodeOS, version: String?, limits: ClusterPlan.Timeouts = .init())
        -> ShellCommand
    {
        let pm = os.packageManager(lockWait: limits.packages / 2)
        let install = (pm.prelude + os.installContainerd(version: version, pm)).map { "  " + $0 }
        let installing = "containerd " + (version ?? "from the OS repository")
        return packagesGuard("configure containerd", limits).command(ShellCommand(steps: [
            .init((["if ! \(os.containerdInstalled(version: version)); then"] + install + ["fi"]).joined(separator: "\n"),
                  name: "installing \(installing) (unless it is installed)"),
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

    /// The repository's files; with `refresh`, its index read too (an upgrade's new minor; on a new host the
    /// packages step refreshes the index once, in its transaction).
    public static func kubernetesRepo(_ os: any NodeOS, minor: String, refresh: Bool = false,
                                      limits: ClusterPlan.Timeouts = .init()) -> ShellCommand
    {
        let pm = os.packageManager(lockWait: limits.packages / 2)
        return packagesGuard("add the Kubernetes \(minor) package repository", limits).command(ShellCommand(
            steps: steps(os.writeKubernetesRepository(minor: minor))
                + (refresh ? preludeSteps(pm) + steps(os.refreshRepositories(pm)) : [])))
    }

    /// One index refresh and one transaction: kubelet, kubeadm and kubectl at `version`, held, and containerd
    /// (at `containerdVersion`) unless installed; kubelet enabled.
    public static func kubernetesPackages(_ os: any NodeOS, version: String, containerdVersion: String? = nil,
                                          limits: ClusterPlan.Timeouts = .init()) -> ShellCommand
    {
        let pm = os.packageManager(lockWait: limits.packages / 2)
        return packagesGuard("install containerd, kubelet, kubeadm and kubectl \(version)", limits).command(ShellCommand(
            steps: preludeSteps(pm) + os.installNodePackages(kubernetesPackages, version: version,
                                                            containerdVersion: containerdVersion, pm) + steps([
                // Enabled, not started: kubeadm's kubelet-start phase (re)starts it once its config exists.
                "systemctl enable kubelet >/dev/null 2>&1",
            ]) + [
                // Installed again on a node of the cluster (drift: a package changed by hand): the running kubelet
                // takes the binary only when restarted. In the same script: no round trip of its own.
                .init("if [ -f /etc/kubernetes/kubelet.conf ]; then systemctl daemon-reload && systemctl restart kubelet; fi",
                      name: "systemctl restart kubelet (a node of the cluster)"),
            ]))
    }

    // MARK: images

    /// The images of the node's control plane or, on a worker, the pod sandbox (`pause`) and kube-proxy,
    /// pulled into containerd for the kubelet (kubeadm lists them for `version`); and `cniImages`, the pod
    /// network's (`Releases.cniNodeImages`), pulled at the same time in the background (the registries serve
    /// both at once; the script waits for them and fails naming them when one failed). Re-runnable: an image
    /// present is not fetched again.
    public static func pullImages(controlPlane: Bool, version: String, cniImages: [String] = []) -> ShellCommand {
        let v = "v" + version
        let crictl = "crictl --runtime-endpoint \(KubeadmConfig.criSocket) pull"
        var steps: [ShellCommand.Step] = []
        if !cniImages.isEmpty {
            steps.append(.init("{ for image in \(Shell.join(cniImages)); do \(crictl) \"$image\" >/dev/null || exit 1; done; } & cni_pulls=$!",
                               name: "crictl pull (the CNI's images)"))
        }
        if controlPlane {
            steps.append(.init(Shell.join(["kubeadm", "config", "images", "pull", "--kubernetes-version", v]) + " >/dev/null"))
        } else {
            steps += [
                .init("images=$(" + Shell.join(["kubeadm", "config", "images", "list", "--kubernetes-version", v])
                      + " | grep -E '/(pause|kube-proxy):')", name: "kubeadm config images list --kubernetes-version \(v)"),
                .init("for image in $images; do \(crictl) \"$image\" >/dev/null; done", name: "crictl pull (pause, kube-proxy)"),
            ]
        }
        if !cniImages.isEmpty {
            steps.append(.init("wait \"$cni_pulls\"", name: "crictl pull (the CNI's images: \(cniImages.joined(separator: ", ")))"))
        }
        return ShellCommand(steps: steps)
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

    /// The cluster's clock (`now=SECONDS`) and its CA hash (`hash=HEX`, as `caCertHash`), in one round trip
    /// (what the record of a finished init needs).
    public static let clockAndCACertHash = ShellCommand(script:
        "echo \"now=$(date +%s)\"\necho \"hash=$(\(caCertHash.script))\"")

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

    /// A kubectl request through this host's admin kubeconfig; repeated on a transient API server error (every
    /// request made through here may be repeated: label and taint with --overwrite, drain, uncordon, delete
    /// --ignore-not-found, get).
    public static func kubectl(_ args: [String]) -> ShellCommand {
        var c = ShellCommand(["kubectl", "--kubeconfig", adminKubeconfig] + args)
        c.retriesTransientAPIErrors = true
        return c
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

    /// Exit 0 when the API server answers `/readyz` through this host's admin kubeconfig.
    public static let apiReady = kubectl(["get", "--raw", "/readyz"])

    // MARK: reset

    /// `kubeadm reset` and the clean-up kubeadm leaves to the user (with `purge`, the packages and repository
    /// too, when the OS is known), guarded under the kubeadm lock (a reset never runs while a kubeadm init or
    /// join of another run is still going on on the host).
    public static func reset(_ os: (any NodeOS)?, purge: Bool, limits: ClusterPlan.Timeouts = .init()) -> ShellCommand {
        var lines = [
            "if command -v kubeadm >/dev/null 2>&1; then kubeadm reset -f >/dev/null 2>&1 || kubeadm reset -f; fi",
            "rm -rf /etc/cni/net.d /var/lib/cni /root/.kube",
            // Everything bootstrap left (configs with secrets, values, outputs) but the locks, which other
            // commands may hold or wait for, and the log this reset writes to.
            "find \(bootstrapDirectory) -mindepth 1 -maxdepth 1 ! -name '*.lock' ! -name kubeadm.log -exec rm -rf {} + 2>/dev/null || true",
            "for i in cni0 flannel.1 vxlan.calico tunl0; do ip link delete \"$i\" >/dev/null 2>&1 || true; done",
            "iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X || true",
        ]
        if purge, let os {
            let pm = os.packageManager(lockWait: limits.packages / 2)
            lines += pm.prelude + os.purgeKubernetes(kubernetesPackages, pm)
        }
        let seconds = purge ? max(limits.join, limits.packages) : limits.join
        return RemoteGuard(lock: "kubeadm", what: "kubeadm reset", seconds: seconds, setting: "spec.timeouts.join")
            .command(lines.joined(separator: "\n"))
    }
}
