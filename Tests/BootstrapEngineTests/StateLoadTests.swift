import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// What a state load refuses, and how it says so.
struct StateLoadTests {
    @Test func aNegativeSerialIsRefusedAsCorrupt() throws {
        var state = ClusterState(name: "lab", toolVersion: "t")
        state.serial = 3
        let good = try JSONEncoder.state.encode(state)
        #expect(try StateStore.decode(good, path: "s.json").serial == 3)
        state.serial = -1
        let bad = try JSONEncoder.state.encode(state)
        #expect(throws: StateError.corrupt(path: "s.json", detail: "bad value at serial")) {
            try StateStore.decode(bad, path: "s.json")
        }
    }

    @Test func aDirectoryIsNotAStateFile() async throws {
        let dir = NSTemporaryDirectory() + "bootstrap-state-dir-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = await #expect(throws: StateError.self) { try await StateStore(path: dir).load(expectName: nil) }
        #expect(error == .notAFile(path: dir, what: "a directory"))
        #expect(error?.description.hasPrefix("\(dir) is a directory, not a state file.") == true)
    }
}
