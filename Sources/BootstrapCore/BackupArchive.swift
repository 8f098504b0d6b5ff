import Foundation

/// What a backup archive says about itself: the first line after the magic line, as JSON.
public struct BackupManifest: Sendable, Hashable, Codable {
    public static let currentFormat = 1

    public struct Entry: Sendable, Hashable, Codable {
        public var name: String
        public var size: Int
        public init(name: String, size: Int) {
            self.name = name
            self.size = size
        }
    }

    public var format: Int
    public var cluster: String
    public var lineage: String
    public var kubernetesVersion: String?
    public var etcdVersion: String
    /// The etcd members' names when the snapshot was taken.
    public var members: [String]
    /// The control plane the snapshot was taken on.
    public var takenOn: String
    public var createdAt: Date
    public var entries: [Entry]
    /// Size and lower-case hex SHA-256 of everything after the manifest line.
    public var payloadSize: Int
    public var payloadSHA256: String

    public init(cluster: String, lineage: String, kubernetesVersion: String?, etcdVersion: String, members: [String],
                takenOn: String, createdAt: Date, entries: [Entry] = [], payloadSize: Int = 0, payloadSHA256: String = "") {
        self.format = BackupManifest.currentFormat
        self.cluster = cluster
        self.lineage = lineage
        self.kubernetesVersion = kubernetesVersion
        self.etcdVersion = etcdVersion
        self.members = members
        self.takenOn = takenOn
        self.createdAt = createdAt
        self.entries = entries
        self.payloadSize = payloadSize
        self.payloadSHA256 = payloadSHA256
    }
}

/// Why an archive cannot be read.
public struct BackupArchiveError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The backup file format (README "Backups"): the line `bootstrap-backup 1`, one line of JSON (the
/// `BackupManifest`), then the payload: for each entry, a line `NAME SIZE` and SIZE bytes. The manifest holds
/// the payload's size and SHA-256, so a cut or altered file is refused before anything in it is used.
public enum BackupArchive {
    public static let magic = "bootstrap-backup 1\n"
    /// The snapshot's entry name; the PKI entries are their paths under /etc/kubernetes/pki.
    public static let snapshotEntry = "etcd/snapshot.db"

    public static func encode(_ manifest: BackupManifest, entries: [(name: String, data: Data)]) -> Data {
        var payload = Data()
        var m = manifest
        m.entries = []
        for (name, data) in entries {
            payload.append(Data("\(name) \(data.count)\n".utf8))
            payload.append(data)
            m.entries.append(.init(name: name, size: data.count))
        }
        m.payloadSize = payload.count
        m.payloadSHA256 = Hashing.sha256(payload)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        enc.dateEncodingStrategy = .custom { d, e in
            var c = e.singleValueContainer()
            try c.encode(Timestamp.iso8601(d))
        }
        var out = Data(magic.utf8)
        out.append((try? enc.encode(m)) ?? Data("{}".utf8))
        out.append(0x0a)
        out.append(payload)
        return out
    }

    /// Reads the manifest only (checks the magic line).
    public static func manifest(_ data: Data) throws -> (BackupManifest, payloadStart: Int) {
        let magicBytes = Data(magic.utf8)
        guard data.count >= magicBytes.count, data.prefix(magicBytes.count) == magicBytes else {
            throw BackupArchiveError("not a bootstrap backup (the first line is not `bootstrap-backup 1`)")
        }
        let start = data.startIndex + magicBytes.count
        guard let nl = data[start...].firstIndex(of: 0x0a) else {
            throw BackupArchiveError("the backup is truncated: its manifest line is incomplete")
        }
        let dec = JSONDecoder()
        dec.dateDecodingStrategy = .custom { d in
            let c = try d.singleValueContainer()
            let s = try c.decode(String.self)
            guard let date = Timestamp.parse(s) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO-8601 time: \(s)")
            }
            return date
        }
        let m: BackupManifest
        do { m = try dec.decode(BackupManifest.self, from: data[start..<nl]) } catch {
            throw BackupArchiveError("the backup's manifest is not valid: \(error)")
        }
        guard m.format == BackupManifest.currentFormat else {
            throw BackupArchiveError("backup format \(m.format) is not supported (this tool reads \(BackupManifest.currentFormat))")
        }
        return (m, nl + 1 - data.startIndex)
    }

    /// Reads and checks a whole archive: the payload must have the manifest's size and SHA-256.
    public static func decode(_ data: Data) throws -> (BackupManifest, [String: Data]) {
        let (m, offset) = try manifest(data)
        let payload = data.dropFirst(offset)
        if payload.count < m.payloadSize {
            throw BackupArchiveError("the backup is truncated: \(payload.count) of \(m.payloadSize) payload bytes")
        }
        if payload.count > m.payloadSize {
            throw BackupArchiveError("the backup has \(payload.count - m.payloadSize) bytes more than its manifest says")
        }
        let sum = Hashing.sha256(Data(payload))
        guard sum == m.payloadSHA256 else {
            throw BackupArchiveError("the backup's payload does not match its SHA-256 (\(sum), manifest says \(m.payloadSHA256)): the file was altered")
        }
        var entries: [String: Data] = [:]
        var i = payload.startIndex
        for e in m.entries {
            guard let nl = payload[i...].firstIndex(of: 0x0a),
                  String(decoding: payload[i..<nl], as: UTF8.self) == "\(e.name) \(e.size)",
                  payload.endIndex - (nl + 1) >= e.size
            else { throw BackupArchiveError("the backup's entry \(e.name) does not match its manifest") }
            entries[e.name] = Data(payload[(nl + 1)..<(nl + 1 + e.size)])
            i = nl + 1 + e.size
        }
        guard i == payload.endIndex else { throw BackupArchiveError("the backup has data after its last entry") }
        return (m, entries)
    }

    /// `NAME-YYYYMMDDTHHMMSSZ.bootstrap-backup`.
    public static func fileName(cluster: String, at date: Date) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func p(_ v: Int?, _ w: Int) -> String {
            let s = String(v ?? 0)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(cluster)-\(p(c.year, 4))\(p(c.month, 2))\(p(c.day, 2))T\(p(c.hour, 2))\(p(c.minute, 2))\(p(c.second, 2))Z.bootstrap-backup"
    }
}
