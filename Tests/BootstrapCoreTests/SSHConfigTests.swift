import BootstrapCore
import Foundation
import BootstrapTestSupport
import Testing

@Suite struct SSHConfigTests {
    // MARK: patterns

    @Test(arguments: [
        ("10.0.1.10", "10.0.1.*", true), ("10.0.1.10", "10.0.1.?", false), ("10.0.1.1", "10.0.1.?", true),
        ("cp-1.lab.internal", "*.lab.internal", true), ("lab.internal", "*.lab.internal", false),
        ("CP-1", "cp-1", true), ("worker-12", "worker-*", true), ("worker-12", "w*r-1?", true),
        ("anything", "*", true), ("", "*", true), ("abc", "a*b*c", true), ("abxc", "a*b?c", true),
        ("abc", "a*d", false),
    ])
    func globPattern(host: String, pattern: String, expected: Bool) {
        #expect(SSHConfig.matches(host, pattern: pattern) == expected)
    }

    @Test func negationExcludesEvenWhenAnotherPatternMatches() {
        #expect(SSHConfig.matches("10.0.1.10", patterns: ["10.0.1.*", "!10.0.1.10"]) == false)
        #expect(SSHConfig.matches("10.0.1.11", patterns: ["10.0.1.*", "!10.0.1.10"]) == true)
        // A negated pattern alone matches nothing (OpenSSH needs a positive match).
        #expect(SSHConfig.matches("10.0.1.11", patterns: ["!10.0.1.10"]) == false)
        // Comma-separated lists, as in `Host a,b`.
        #expect(SSHConfig.matches("b", patterns: ["a,b"]) == true)
        #expect(SSHConfig.matches("bastion", patterns: ["*,!bastion"]) == false)
    }

    // MARK: parsing and first-value-wins

    static let sample = """
        # a comment
        Host bastion
            HostName jump.example.com
            User ec2-user
            Port 2200
            IdentityFile ~/.ssh/jump.pem

        Host 10.0.1.* !10.0.1.99
            user admin
            IdentityFile=~/.ssh/%h.key
            ProxyJump bastion
            StrictHostKeyChecking accept-new

        Host 10.0.1.10
            User root                   # never used: an earlier block gave User
            Port 2222

        Host web1
            HostName 10.0.9.1

        Match host 10.0.1.5
            User matched

        Host *
            User fallback
            UserKnownHostsFile "~/.ssh/known hosts" ~/.ssh/known_hosts2
            ServerAliveInterval 30
        """

    @Test func firstObtainedValueWinsAcrossBlocks() {
        let c = SSHConfig.parse(Self.sample)
        let v = c.values(for: "10.0.1.10")
        #expect(v["user"]?.value == "admin")
        #expect(v["user"]?.line == 9)
        #expect(v["port"]?.value == "2222")
        #expect(v["identityfile"]?.value == "~/.ssh/%h.key")
        #expect(v["proxyjump"]?.value == "bastion")
        #expect(v["userknownhostsfile"]?.value == "~/.ssh/known hosts ~/.ssh/known_hosts2")
        // Excluded by `!10.0.1.99`: only `Host *` applies.
        let x = c.values(for: "10.0.1.99")
        #expect(x["user"]?.value == "fallback")
        #expect(x["proxyjump"] == nil)
        // Match blocks are not evaluated, and said so; unknown keywords are ignored.
        #expect(c.values(for: "10.0.1.5")["user"]?.value == "admin")
        #expect(c.warnings == ["~/.ssh/config:21: Match blocks are not read; their options do not apply"])
        #expect(!c.blocks.flatMap(\.options).contains { $0.key == "serveraliveinterval" })
    }

    // MARK: precedence

    static func plan(ssh: String = "", hostExtra: String = "") -> ClusterPlan {
        let text = """
            apiVersion: bootstrap.k8s.lab/v1alpha1
            kind: Cluster
            metadata: { name: lab }
            spec:
              kubernetes: { version: "1.34.1" }
            \(ssh.isEmpty ? "" : "  ssh: { \(ssh) }")
              hosts:
                - { name: cp-1, address: 10.0.1.10, role: control-plane\(hostExtra) }
                - { name: worker-1, address: web1, role: worker }
                - { name: worker-2, address: 10.0.1.99, role: worker }
            """
        let r = PlanLoader.load(text: text, path: "plan.yaml", baseDirectory: "/tmp", fileExists: { _ in true })
        guard let plan = r.plan else { fatalError("\(r.diagnostics)") }
        return plan
    }

    @Test func configBeatsDefaultsButNotWhatThePlanWrites() {
        let config = SSHConfig.parse(Self.sample)
        // Nothing about SSH in the plan: the config gives user, port, key, known hosts, policy, bastion.
        let p = Self.plan()
        let s = SSHSettings.resolve(plan: p, host: p.spec.hosts[0], config: config)
        #expect(s.user.value == "admin" && s.user.source == .config("~/.ssh/config:9"))
        #expect(s.port.value == 2222 && s.port.source == .config("~/.ssh/config:16"))
        #expect(s.keyPath.value == "~/.ssh/10.0.1.10.key")
        #expect(s.knownHosts.value == "~/.ssh/known hosts")
        #expect(s.hostKeyPolicy.value == .acceptNew)
        #expect(s.address.value == "10.0.1.10" && s.address.source == .plan("spec.hosts[0].address"))
        // The bastion from ProxyJump, resolved through its own Host block.
        let b = s.bastion.value
        #expect(b?.address.value == "jump.example.com" && b?.address.source == .config("~/.ssh/config:3"))
        #expect(b?.user.value == "ec2-user" && b?.port.value == 2200 && b?.keyPath.value == "~/.ssh/jump.pem")
        #expect(s.bastion.source == .config("~/.ssh/config:11"))

        // What the plan writes in spec.ssh wins over the config; what it leaves out does not.
        let q = Self.plan(ssh: "user: ubuntu, port: 22, hostKeyPolicy: strict")
        let t = SSHSettings.resolve(plan: q, host: q.spec.hosts[0], config: config)
        #expect(t.user.value == "ubuntu" && t.user.source == .plan("spec.ssh.user"))
        #expect(t.port.value == 22 && t.port.source == .plan("spec.ssh.port"))
        #expect(t.hostKeyPolicy.value == .strict && t.hostKeyPolicy.source == .plan("spec.ssh.hostKeyPolicy"))
        #expect(t.keyPath.source == .config("~/.ssh/config:10"))
        // Even a plan value equal to the default counts as written.
        #expect(q.spec.ssh.explicit == ["user", "port", "hostKeyPolicy"])

        // A per-host value beats both.
        let r = Self.plan(ssh: "user: ubuntu", hostExtra: ", user: core, port: 2022, keyPath: /k")
        let u = SSHSettings.resolve(plan: r, host: r.spec.hosts[0], config: config)
        #expect(u.user.value == "core" && u.user.source == .plan("spec.hosts[0].user"))
        #expect(u.port.value == 2022 && u.keyPath.value == "/k")

        // The plan's bastion beats ProxyJump.
        let w = Self.plan(ssh: "bastion: { address: 10.9.9.9 }")
        let x = SSHSettings.resolve(plan: w, host: w.spec.hosts[0], config: config)
        #expect(x.bastion.value?.address.value == "10.9.9.9" && x.bastion.source == .plan("spec.ssh.bastion"))
    }

    @Test func hostNameAndDefaultsWithoutConfig() {
        let config = SSHConfig.parse(Self.sample)
        let p = Self.plan()
        // `web1` is an alias: HostName gives the address to connect to.
        let s = SSHSettings.resolve(plan: p, host: p.spec.hosts[1], config: config)
        #expect(s.address.value == "10.0.9.1" && s.address.source == .config("~/.ssh/config:19"))
        #expect(s.user.value == "fallback")
        #expect(s.bastion.value == nil)
        // No config at all: the plan's values and bootstrap's defaults.
        let d = SSHSettings.resolve(plan: p, host: p.spec.hosts[0], config: nil)
        #expect(d.user.value == "ubuntu" && d.user.source == .defaulted)
        #expect(d.port.value == 22 && d.keyPath.value == "~/.ssh/id_ed25519" && d.hostKeyPolicy.value == .strict)
    }

    @Test func proxyJumpForms() {
        func jump(_ spec: String) -> SSHSettings.Jump? {
            let c = SSHConfig.parse("Host *\n  ProxyJump \(spec)\n")
            let p = Self.plan()
            return SSHSettings.resolve(plan: p, host: p.spec.hosts[0], config: c).bastion.value
        }
        #expect(jump("ops@gw:2022")?.user.value == "ops")
        #expect(jump("ops@gw:2022")?.port.value == 2022)
        #expect(jump("gw")?.address.value == "gw")
        #expect(jump("gw")?.user.value == "ubuntu")
        #expect(jump("ssh://gw:23")?.port.value == 23)
        #expect(jump("none") == nil)
        // Two hops: the first is used, and the user is told.
        let c = SSHConfig.parse("Host *\n  ProxyJump a,b\n")
        let p = Self.plan()
        let s = SSHSettings.resolve(plan: p, host: p.spec.hosts[0], config: c)
        #expect(s.bastion.value?.address.value == "a")
        #expect(s.notes == ["~/.ssh/config:2: ProxyJump has 2 hops; bootstrap uses the first only"])
    }

    @Test func strictHostKeyCheckingValues() {
        func policy(_ v: String) -> ClusterPlan.HostKeyPolicy {
            let p = Self.plan()
            return SSHSettings.resolve(plan: p, host: p.spec.hosts[0],
                                       config: SSHConfig.parse("StrictHostKeyChecking \(v)\n")).hostKeyPolicy.value
        }
        #expect(policy("yes") == .strict)
        #expect(policy("ask") == .strict)
        #expect(policy("accept-new") == .acceptNew)
        #expect(policy("no") == .off)
        #expect(policy("maybe") == .strict)
    }

    @Test func keywordForms() {
        let c = SSHConfig.parse("HOSTNAME=a\nuser = b\nPort\t2200\nIdentityFile \"/x y/key\"\n")
        let v = c.values(for: "h")
        #expect(v["hostname"]?.value == "a")
        #expect(v["user"]?.value == "b")
        #expect(v["port"]?.value == "2200")
        #expect(v["identityfile"]?.value == "/x y/key")
    }
}
