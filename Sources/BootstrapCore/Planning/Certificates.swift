import Foundation

/// A control plane's kubeadm certificates as `kubeadm certs check-expiration` reported them (facts).
public struct CertificateExpiry: Sendable, Hashable, Codable {
    /// The host's clock when they were read: what "days left" is measured from (the cluster's time).
    public var checkedAt: Date
    /// Each certificate kubeadm manages, by its check-expiration name (`admin.conf`, `apiserver`, `etcd-peer`, …).
    public var certificates: [String: Date]
    /// The certificate authorities (`ca`, `etcd-ca`, `front-proxy-ca`).
    public var authorities: [String: Date]

    public init(checkedAt: Date, certificates: [String: Date], authorities: [String: Date]) {
        self.checkedAt = checkedAt
        self.certificates = certificates
        self.authorities = authorities
    }

    /// The certificate that expires first, by name (ties by name).
    public var earliest: (name: String, expires: Date)? {
        certificates.min { ($0.value, $0.key) < ($1.value, $1.key) }.map { ($0.key, $0.value) }
    }

    /// The authority that expires first.
    public var earliestAuthority: (name: String, expires: Date)? {
        authorities.min { ($0.value, $0.key) < ($1.value, $1.key) }.map { ($0.key, $0.value) }
    }

    /// Seconds from `checkedAt` to `date` (negative: expired when read).
    public func left(until date: Date) -> TimeInterval { date.timeIntervalSince(checkedAt) }
}

/// Certificate renewal: when a control plane's kubeadm certificates are renewed (`spec.certificates.renewBefore`),
/// when they are past saving (expired: an error with the way out), and what the renewal runs.
public enum Certificates {
    // MARK: durations (`renewBefore`)

    /// The default of `spec.certificates.renewBefore`.
    public static let defaultRenewBefore = "30d"
    /// kubeadm's certificates last a year: a `renewBefore` of a year or more would renew on every apply.
    public static let renewBeforeRange: ClosedRange<Int> = 3600...(364 * 86400)
    public static let durationExpectation = "a duration like 30d, 720h or 90m (days, hours, minutes), from 1h to 364d"

    /// Seconds in `text`: a whole number followed by `d`, `h`, `m` or `s` (`30d`, `720h`); nil when malformed.
    public static func seconds(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard let unit = t.last, let n = Int(t.dropLast()), n >= 0, t.dropLast().allSatisfy(\.isASCII),
              t.dropLast().allSatisfy(\.isNumber) else { return nil }
        switch unit {
        case "d": return n.multipliedReportingOverflow(by: 86400).overflow ? nil : n * 86400
        case "h": return n.multipliedReportingOverflow(by: 3600).overflow ? nil : n * 3600
        case "m": return n.multipliedReportingOverflow(by: 60).overflow ? nil : n * 60
        case "s": return n
        default: return nil
        }
    }

    // MARK: reading them (part of the facts recipe)

    /// Facts lines for a control plane (a host with `/etc/kubernetes/pki/apiserver.crt`): the host's clock and
    /// each certificate's and authority's expiry from `kubeadm certs check-expiration`'s table (the text form,
    /// which every kubeadm release prints alike: `NAME  Mon DD, YYYY HH:MM UTC  RESIDUAL …`). Nothing on
    /// other hosts.
    public static let factsScript = """
        if [ -f /etc/kubernetes/pki/apiserver.crt ] && command -v kubeadm >/dev/null 2>&1; then
          echo "certs.now=$(date +%s)"
          kubeadm certs check-expiration 2>/dev/null | awk '
            /^CERTIFICATE AUTHORITY/ { s = "ca"; next }
            /^CERTIFICATE / { s = "cert"; next }
            s != "" && NF >= 6 && $6 == "UTC" { print "certs." s "." $1 "=" $2 " " $3 " " $4 " " $5 }'
        fi
        """

    /// The expiry in the facts' key-value lines (`certs.now`, `certs.cert.NAME`, `certs.ca.NAME`); nil when the
    /// host reported none (not a control plane, or kubeadm printed no table).
    public static func parseFacts(_ kv: [String: String]) -> CertificateExpiry? {
        guard let now = kv["certs.now"].flatMap({ Double($0) }) else { return nil }
        var certs: [String: Date] = [:], cas: [String: Date] = [:]
        for (k, v) in kv {
            if k.hasPrefix("certs.cert."), let d = parseDate(v) { certs[String(k.dropFirst(11))] = d }
            if k.hasPrefix("certs.ca."), let d = parseDate(v) { cas[String(k.dropFirst(9))] = d }
        }
        guard !certs.isEmpty else { return nil }
        return CertificateExpiry(checkedAt: Date(timeIntervalSince1970: now), certificates: certs, authorities: cas)
    }

    /// The expiry in the output of `read` (or of the facts recipe).
    public static func parse(_ text: String) -> CertificateExpiry? {
        var kv: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            kv[String(line[..<eq])] = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
        }
        return parseFacts(kv)
    }

    /// `Dec 30, 2026 23:36` (UTC), as check-expiration prints it.
    static func parseDate(_ text: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "MMM d, yyyy HH:mm"
        return f.date(from: text.trimmingCharacters(in: .whitespaces))
    }

    /// `2026-12-30 23:36 UTC`, for messages.
    public static func format(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return f.string(from: date)
    }

    /// "12 days", "1 day", "less than a day".
    public static func days(_ seconds: TimeInterval) -> String {
        let d = Int((seconds / 86400).rounded(.down))
        return d <= 0 ? "less than a day" : d == 1 ? "1 day" : "\(d) days"
    }

    // MARK: deciding

    /// A control plane whose certificates are renewed by this plan.
    public struct Renewal: Sendable, Hashable {
        public var host: String
        /// Seconds left when the facts were read.
        public var left: TimeInterval
        /// "renew certificates (expire in 12 days)".
        public var reason: String { "renew certificates (expire in \(Certificates.days(left)))" }
    }

    /// The control planes of the plan (in plan order) whose recorded certificates expire within
    /// `spec.certificates.renewBefore` but have not expired yet. `skipping`: hosts other actions of the plan
    /// renew already (see `renewedByOtherActions`).
    public static func renewals(plan: ClusterPlan, state: ClusterState?, skipping: Set<String> = [])
        -> [Renewal]
    {
        guard let state, state.cluster.initializedOn != nil,
              let window = seconds(plan.spec.certificates.renewBefore) else { return [] }
        return plan.controlPlanes.compactMap { host -> Renewal? in
            guard !skipping.contains(host.name), let rec = state.hosts[host.name], rec.address == host.address,
                  rec.role == host.role, let certs = rec.facts?.certificates, let first = certs.earliest
            else { return nil }
            let left = certs.left(until: first.expires)
            guard left > 0, left <= TimeInterval(window) else { return nil }
            return Renewal(host: host.name, left: left)
        }
    }

    /// The hosts whose certificates other actions of the plan renew already, so they get no renewal of their
    /// own: `kubeadm upgrade apply` / `upgrade node` renew a control plane's certificates (kubeadm's
    /// `--certificate-renewal`, on by default), so a control plane the plan upgrades is not renewed twice.
    public static func renewedByOtherActions(_ actions: [PlannedAction]) -> Set<String> {
        Set(actions.compactMap { a -> String? in
            if case .upgrade(let host) = a.id { return host }
            return nil
        })
    }

    /// Expired certificates are an error, not a hang: the API server refuses them and kubectl, Helm and
    /// `kubeadm token` fail, so apply refuses to start, naming what to run.
    public static func blockers(plan: ClusterPlan, state: ClusterState) -> [Blocker] {
        var out: [Blocker] = []
        for host in plan.controlPlanes {
            guard let certs = state.hosts[host.name]?.facts?.certificates else { continue }
            let path = "hosts.\(host.name).certificates"
            if let ca = certs.earliestAuthority, certs.left(until: ca.expires) <= 0 {
                out.append(Blocker(path: path, reason: "the certificate authority \(ca.name) on \(host.name) expired on \(format(ca.expires)); every certificate it signed is refused and `kubeadm certs renew` cannot help: rotate the CA by hand (kubeadm documentation, \"Manual rotation of CA certificates\") or re-create the cluster (`bootstrap destroy`, then `bootstrap apply`)"))
                continue
            }
            let expired = certs.certificates.filter { certs.left(until: $0.value) <= 0 }
            guard let first = expired.min(by: { ($0.value, $0.key) < ($1.value, $1.key) }) else { continue }
            let names = expired.keys.sorted().joined(separator: ", ")
            out.append(Blocker(path: path, reason: "certificates on \(host.name) expired on \(format(first.value)) (\(names)): the API server refuses them, so apply cannot go on. Renew them on \(host.name): `sudo kubeadm certs renew all`, then restart the control-plane static pods (move /etc/kubernetes/manifests/*.yaml to another directory, wait until the API server has stopped, about 20 s, and move them back); do the same on every control plane listed here, then run `bootstrap apply` again: it reads the new expiry and fetches the admin kubeconfig again"))
        }
        return out
    }

    // MARK: renewing

    /// Where the static pod manifests wait while the kubelet stops their pods.
    public static let movedManifests = "\(NodeRecipes.bootstrapDirectory)/manifests-restart"

    /// `kubeadm certs renew all` and the restart of the control-plane static pods the kubeadm documentation
    /// asks for (the kubelet stops a static pod when its manifest leaves `/etc/kubernetes/manifests` and
    /// starts it again when it is back), waiting for the API server at `address` to stop and to answer again.
    /// Under the kubeadm lock; a run killed while the manifests were out puts them back first.
    public static func renew(address: String, port: Int = PlanDefaults.apiServerPort,
                             limits: ClusterPlan.Timeouts = .init()) -> ShellCommand
    {
        let manifests = "/etc/kubernetes/manifests"
        let moved = Shell.quote(movedManifests)
        let livez = Shell.join(["curl", "-sk", "--max-time", "2", "-o", "/dev/null",
                                "https://\(address.contains(":") ? "[\(address)]" : address):\(port)/livez"])
        let wait = max(60, limits.join / 2)
        return RemoteGuard(lock: "kubeadm", what: "kubeadm certs renew", seconds: limits.join,
                           setting: "spec.timeouts.join").command(ShellCommand(steps: [
            .init("mkdir -p \(moved) && for f in \(moved)/*.yaml; do [ -f \"$f\" ] && mv \"$f\" \(manifests)/; done; true",
                  name: "putting back the static pod manifests an interrupted run moved"),
            .init("kubeadm certs renew all", name: "kubeadm certs renew all"),
            .init("mv \(manifests)/*.yaml \(moved)/", name: "moving the static pod manifests out"),
            .init("i=0; while \(livez); do i=$((i+1)); if [ $i -ge \(wait * 2) ]; then echo 'the API server did not stop' >&2; break; fi; sleep 0.5; done; true",
                  name: "waiting for the kubelet to stop the control-plane pods"),
            .init("mv \(moved)/*.yaml \(manifests)/", name: "moving the static pod manifests back"),
            .init("i=0; until \(livez); do i=$((i+1)); if [ $i -ge \(wait * 2) ]; then echo \"the API server at \(address):\(port) did not answer within \(wait)s after the restart\" >&2; exit 1; fi; sleep 0.5; done",
                  name: "waiting for the API server to answer again"),
        ]))
    }

    /// The expiry alone, after a renewal (the facts recipe's lines).
    public static let read = ShellCommand(script: factsScript + "\ntrue")
}

extension ChangeSet {
    /// Each renewal as a change of its host: `~ host cp-1`, reason `renew certificates (expire in 12 days)`.
    mutating func renew(_ renewals: [Certificates.Renewal], plan: ClusterPlan) {
        let step = ActionID.renewCertificates(host: "").stepLabel
        for r in renewals {
            if let i = changes.firstIndex(where: { $0.subject == .host && $0.name == r.host }) {
                changes[i].reasons.append(r.reason)
                changes[i].steps.append(step)
                continue
            }
            guard let host = plan.spec.hosts.first(where: { $0.name == r.host }) else { continue }
            let change = Change(subject: .host, action: .update, name: host.name, address: host.address,
                                role: host.role, steps: [step], reasons: [r.reason])
            // In plan order among the hosts' changes, after the cluster's.
            let order = Dictionary(uniqueKeysWithValues: plan.spec.hosts.enumerated().map { ($1.name, $0) })
            let at = changes.firstIndex { c in
                c.subject != .cluster && (c.subject != .host || (order[c.name] ?? Int.max) > (order[r.host] ?? 0))
            } ?? changes.endIndex
            changes.insert(change, at: at)
        }
    }
}

extension Planner {
    /// The renewals as actions: each after its host's own steps and after the previous renewal (one control
    /// plane at a time), then the admin kubeconfig fetched again (it holds a renewed client certificate), and
    /// the wait for Ready nodes after them.
    static func renewing(_ renewals: [Certificates.Renewal], actions: [PlannedAction], plan: ClusterPlan,
                         state: ClusterState?) -> [PlannedAction]
    {
        guard !renewals.isEmpty else { return actions }
        var out = actions
        var previous: ActionID?
        var ids: [ActionID] = []
        for r in renewals {
            let id = ActionID.renewCertificates(host: r.host)
            var after = previous.map { [$0] } ?? []
            if let last = actions.last(where: { $0.id.host == r.host }) { after.append(last.id) }
            let at = out.firstIndex { $0.id == .waitReady } ?? out.endIndex
            out.insert(PlannedAction(id: id, after: after), at: at)
            ids.append(id)
            previous = id
        }
        let kubeconfig = ActionID.clusterStep(.kubeconfig)
        if let i = out.firstIndex(where: { $0.id == kubeconfig }) {
            out[i].after += ids
        } else if let step = ClusterStepCatalogue.steps(in: plan).first(where: { $0.name == .kubeconfig }) {
            let at = out.firstIndex { $0.id == .waitReady } ?? out.endIndex
            out.insert(PlannedAction(id: kubeconfig, after: ids, inputHash: step.inputHash), at: at)
            ids.append(kubeconfig)
        }
        if let i = out.firstIndex(where: { $0.id == .waitReady }) {
            for id in ids where !out[i].after.contains(id) { out[i].after.append(id) }
        }
        return out
    }
}

extension CertificateExpiry {
    /// One line for people: `certificates expire 2027-11-21 17:47 UTC (in 24 days, admin.conf first),
    /// CA ca 2035-11-19 17:47 UTC (in 3272 days)`; "expired" instead of "in" when past, as of `checkedAt`.
    public var summary: String {
        func when(_ d: Date) -> String {
            let left = self.left(until: d)
            return left <= 0 ? "expired \(Certificates.days(-left)) ago" : "in \(Certificates.days(left))"
        }
        var out = "certificates"
        if let e = earliest { out += " expire \(Certificates.format(e.expires)) (\(when(e.expires)), \(e.name) first)" }
        if let ca = earliestAuthority { out += ", CA \(ca.name) \(Certificates.format(ca.expires)) (\(when(ca.expires)))" }
        return out + " as of \(Certificates.format(checkedAt))"
    }
}

extension Certificates {
    /// The first control plane's `admin.conf` expires later than the state recorded: it was renewed since the
    /// last run (by hand, or by a run killed before it recorded the renewal), so the local admin kubeconfig
    /// still holds the old client certificate and is fetched again. `recorded`: the state as read from disk;
    /// `refreshed`: with the hosts' facts just read.
    public static func adminRenewed(recorded: ClusterState?, refreshed: ClusterState?) -> Bool {
        guard let recorded, let refreshed, let cp = recorded.cluster.initializedOn,
              let old = recorded.hosts[cp]?.facts?.certificates?.certificates["admin.conf"],
              let new = refreshed.hosts[cp]?.facts?.certificates?.certificates["admin.conf"] else { return false }
        return new.timeIntervalSince(old) > 60
    }
}

extension ChangeSet {
    /// The kubeconfig step again, because the admin certificate was renewed on the host.
    mutating func kubeconfigStale(plan: ClusterPlan, state: ClusterState?) {
        let reason = "kubeconfig: the admin certificate on \(state?.cluster.initializedOn ?? "the first control plane") was renewed since it was fetched; it is fetched again"
        let step = ClusterStepName.kubeconfig.rawValue
        if let i = changes.firstIndex(where: { $0.subject == .cluster }) {
            if !changes[i].steps.contains(step) {
                changes[i].steps.append(step)
                changes[i].reasons.append(reason)
            }
        } else {
            changes.insert(Change(subject: .cluster, action: .update, name: plan.name, address: plan.apiEndpoint,
                                  version: plan.spec.kubernetes.version, steps: [step], reasons: [reason]), at: 0)
        }
    }
}
