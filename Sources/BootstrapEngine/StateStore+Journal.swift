import BootstrapCore
import Foundation
import Glibc

/// One change of the state that the journal records: what a finished step adds, small and whole.
public enum StateChange: Sendable, Hashable, Codable {
    /// A host step finished (`hosts.NAME.steps.STEP`).
    case hostStep(host: String, step: String, record: StepRecord)
    /// A cluster step finished (`cluster.steps.STEP`).
    case clusterStep(step: String, record: StepRecord)
    /// A host's whole record (nil: the host is gone).
    case host(name: String, record: HostRecord?)
    /// The cluster's whole record (secrets, endpoint, CA hash, cluster steps: small whatever the cluster's size).
    case cluster(ClusterRecord)
    /// A release's record (nil: uninstalled).
    case addon(key: String, record: AddonRecord?)

    public func apply(to state: inout ClusterState) {
        switch self {
        case .hostStep(let host, let step, let record): state.hosts[host]?.steps[step] = record
        case .clusterStep(let step, let record): state.cluster.steps[step] = record
        case .host(let name, let record): state.hosts[name] = record
        case .cluster(let record): state.cluster = record
        case .addon(let key, let record): state.addons[key] = record
        }
    }

    /// What changed from `a` to `b` as journal changes; nil when something changed that has none (the
    /// manifests, the backups, the format), or nothing did: then the state is written whole.
    public static func changes(from a: ClusterState, to b: ClusterState) -> [StateChange]? {
        guard a.formatVersion == b.formatVersion, a.lineage == b.lineage, a.toolVersion == b.toolVersion,
              a.manifests == b.manifests, a.backups == b.backups else { return nil }
        var out: [StateChange] = []
        if a.cluster != b.cluster { out.append(.cluster(b.cluster)) }
        if a.addons != b.addons {
            for key in Set(a.addons.keys).union(b.addons.keys).sorted() where a.addons[key] != b.addons[key] {
                out.append(.addon(key: key, record: b.addons[key]))
            }
        }
        if a.hosts != b.hosts {
            for name in b.hosts.keys.sorted() where a.hosts[name] != b.hosts[name] {
                out.append(.host(name: name, record: b.hosts[name]))
            }
            for name in a.hosts.keys.sorted() where b.hosts[name] == nil { out.append(.host(name: name, record: nil)) }
        }
        return out.isEmpty ? nil : out
    }
}

/// One journal record: the changes of one grouped write, on top of the state file with serial `base`.
/// Written as one line of JSON; a line without its newline (a write cut short by a crash) is not a record.
struct JournalRecord: Codable {
    var lineage: String
    var base: Int
    var serial: Int
    var changes: [StateChange]
}

/// The journal beside the state file (`FILE.journal`, 0600): finished steps are appended to it, fsynced,
/// instead of rewriting the whole state each time, so that a write costs what changed, not the size of the
/// cluster. The state file stays the one whole record: the journal is folded into it (a whole-file atomic
/// write, then the journal removed) at the end of a run, on the next whole write, and when a locked load
/// finds one left by a killed run. Every load reads the journal's records on top of the file: the records
/// made on the file's serial (`base`) and its lineage count, in order; records on another serial were folded
/// already (a crash between the fold's rename and the journal's removal) and are skipped; a last line cut
/// short is ignored (nothing relied on it: its write had not returned).
extension StateStore {
    public var journalPath: String { path + ".journal" }

    static var journalEncoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = JSONEncoder.state.dateEncodingStrategy
        return e
    }

    /// The journal's records that extend `state` (read from a file whose serial is `state.serial`), and the
    /// length of the journal's good part. A bad line followed by good ones is damage, not a cut-short write.
    static func readJournal(_ path: String, on state: ClusterState) throws -> (records: [JournalRecord], length: Int) {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return ([], 0) }
        var records: [JournalRecord] = []
        var offset = 0
        var good = 0
        var damaged = false
        let decoder = JSONDecoder.state
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let end = offset + line.count
            let complete = end < data.count  // followed by its newline
            defer { offset = end + 1 }
            if line.isEmpty && !complete { break }
            guard complete, let record = try? decoder.decode(JournalRecord.self, from: Data(line)) else {
                if complete { damaged = true }
                continue
            }
            if damaged {
                throw StateError.corrupt(path: path, detail: "a damaged journal record before byte \(offset)")
            }
            good = end + 1
            guard record.lineage == state.lineage, record.base == state.serial else { continue }
            records.append(record)
        }
        return (records, good)
    }

    /// `state` with the journal's records applied.
    static func applying(_ records: [JournalRecord], to state: ClusterState) -> ClusterState {
        var s = state
        for r in records {
            for c in r.changes { c.apply(to: &s) }
            s.serial = max(s.serial, r.serial)
        }
        return s
    }
}
