@testable import BootstrapCore
import Foundation
import Testing

struct BackupArchiveTests {
    static let manifest = BackupManifest(
        cluster: "lab", lineage: "0b7c6d1e-lineage", kubernetesVersion: "1.31.2", etcdVersion: "3.6.4",
        members: ["cp-1", "cp-2"], takenOn: "cp-1", createdAt: Date(timeIntervalSince1970: 1_795_291_240))
    static let entries: [(name: String, data: Data)] = [
        (BackupArchive.snapshotEntry, Data((0..<5000).map { UInt8($0 % 251) })),
        ("pki/ca.key", Data("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n".utf8)),
        ("pki/etcd/ca.crt", Data("cert\n".utf8)),
        ("pki/empty", Data()),
    ]

    @Test func roundTrip() throws {
        let data = BackupArchive.encode(Self.manifest, entries: Self.entries)
        #expect(data.starts(with: Data("bootstrap-backup 1\n".utf8)))
        let (m, files) = try BackupArchive.decode(data)
        #expect(m.cluster == "lab" && m.lineage == "0b7c6d1e-lineage" && m.members == ["cp-1", "cp-2"])
        #expect(m.etcdVersion == "3.6.4" && m.kubernetesVersion == "1.31.2" && m.createdAt == Self.manifest.createdAt)
        #expect(m.entries.map(\.name) == Self.entries.map(\.name))
        #expect(m.entries.map(\.size) == [5000, Self.entries[1].data.count, 5, 0])
        for e in Self.entries { #expect(files[e.name] == e.data) }
        let (_, start) = try BackupArchive.manifest(data)
        #expect(m.payloadSize == data.count - start)
        #expect(m.payloadSHA256 == Hashing.sha256(data.dropFirst(start)))
        // The manifest line is plain JSON with the time in ISO 8601.
        let line = String(decoding: data.dropFirst(19).prefix { $0 != 0x0a }, as: UTF8.self)
        #expect(line.contains("\"createdAt\":\"2026-11-21T") && line.contains("\"payloadSHA256\":\"\(m.payloadSHA256)\""))
    }

    @Test func truncationIsDetected() throws {
        let data = BackupArchive.encode(Self.manifest, entries: Self.entries)
        for cut in [data.count - 1, data.count / 2, 200, 25, 10] {
            #expect(throws: BackupArchiveError.self) { try BackupArchive.decode(data.prefix(cut)) }
        }
        do {
            _ = try BackupArchive.decode(data.prefix(data.count - 10))
            Issue.record("a truncated archive was accepted")
        } catch let e as BackupArchiveError {
            #expect(e.description.contains("truncated"), "\(e)")
        }
        var longer = data
        longer.append(0)
        #expect(throws: BackupArchiveError.self) { try BackupArchive.decode(longer) }
    }

    @Test func tamperingIsDetected() throws {
        let data = BackupArchive.encode(Self.manifest, entries: Self.entries)
        let (_, start) = try BackupArchive.manifest(data)
        for offset in [start, start + 100, data.count - 1] {
            var bad = data
            bad[offset] ^= 0x01
            do {
                _ = try BackupArchive.decode(bad)
                Issue.record("an altered byte at \(offset) was accepted")
            } catch let e as BackupArchiveError {
                #expect(e.description.contains("does not match its SHA-256"), "\(e)")
            }
        }
        var badMagic = data
        badMagic[0] = UInt8(ascii: "B")
        #expect(throws: BackupArchiveError.self) { try BackupArchive.decode(badMagic) }
        #expect(throws: BackupArchiveError.self) { try BackupArchive.decode(Data()) }
    }

    @Test func fileName() {
        #expect(BackupArchive.fileName(cluster: "lab", at: Date(timeIntervalSince1970: 1_795_291_240.771))
                == "lab-20261121T200040Z.bootstrap-backup")
        #expect(BackupArchive.fileName(cluster: "x", at: Date(timeIntervalSince1970: 0)) == "x-19700101T000000Z.bootstrap-backup")
    }

    /// The state lists backups; a state without any is written and read as before backups existed.
    @Test func stateListsBackups() throws {
        var s = ClusterState(name: "lab", toolVersion: "test")
        let empty = try JSONEncoder().encode(s)
        #expect(!String(decoding: empty, as: UTF8.self).contains("backups"))
        #expect(try JSONDecoder().decode(ClusterState.self, from: empty).backups == [])
        s.backups.append(BackupRecord(path: "/x/lab-20261121T200040Z.bootstrap-backup",
                                      createdAt: Date(timeIntervalSince1970: 1_795_291_240), size: 10, sha256: "ab"))
        let full = try JSONEncoder().encode(s)
        #expect(try JSONDecoder().decode(ClusterState.self, from: full) == s)
    }
}
