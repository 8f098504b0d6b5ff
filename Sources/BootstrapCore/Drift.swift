/// A host whose facts no longer match its record, found by a refresh (apply's, or `plan --refresh`).
public struct HostDrift: Sendable, Hashable, Codable {
    public var host: String
    public var message: String
    /// Recorded steps the drift undoes: forgotten, so they run again.
    public var steps: [String]

    public init(host: String, message: String, steps: [String] = []) {
        self.host = host
        self.message = message
        self.steps = steps
    }
}

/// What `plan --refresh` found on the hosts (and its `--json` carries).
public struct RefreshReport: Sendable, Hashable, Codable {
    public struct Failure: Sendable, Hashable, Codable {
        public var host: String
        public var reason: String
        public init(host: String, reason: String) {
            self.host = host
            self.reason = reason
        }
    }

    /// Hosts whose facts were read.
    public var refreshed: [String]
    public var drift: [HostDrift]
    /// Hosts that could not be refreshed; the plan uses their recorded facts.
    public var failures: [Failure]
    /// The control planes' certificate expiry as read (absent when none was read).
    public var certificates: [String: CertificateExpiry]?

    public init(refreshed: [String], drift: [HostDrift], failures: [Failure],
                certificates: [String: CertificateExpiry]? = nil) {
        self.refreshed = refreshed
        self.drift = drift
        self.failures = failures
        self.certificates = certificates
    }
}

extension ChangeSet {
    /// Names the drift as the reason for the steps it brings back: a host's "prepare not done yet" after a
    /// refresh found swap on again reads "drift: swap is on again; …".
    public mutating func explain(_ drift: [HostDrift]) {
        for d in drift where !d.steps.isEmpty {
            guard let i = changes.firstIndex(where: { $0.subject == .host && $0.name == d.host }) else { continue }
            let undone = Set(d.steps.map { "\($0) not done yet" })
            var reasons = changes[i].reasons
            let at = reasons.firstIndex(where: { undone.contains($0) }) ?? reasons.endIndex
            reasons.removeAll { undone.contains($0) }
            reasons.insert("drift: \(d.message)", at: min(at, reasons.endIndex))
            changes[i].reasons = reasons
        }
    }
}
