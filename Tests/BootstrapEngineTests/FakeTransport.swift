import BootstrapCore
import Foundation
@testable import BootstrapEngine
@_exported import BootstrapFakeHosts

/// Keeps the state in memory and counts writes.
final class MemoryStore: StatePersisting, @unchecked Sendable {
    let lock = NSLock()
    var written: [ClusterState] = []
    var writes: [ClusterState] { lock.withLock { written } }
    func persist(_ state: ClusterState) async throws -> ClusterState {
        var s = state
        s.serial += 1
        lock.withLock { written.append(s) }
        return s
    }
}

/// Collects events.
final class EventLog: @unchecked Sendable {
    let lock = NSLock()
    var events: [EngineEvent] = []
    var sink: EventSink { { e in self.lock.withLock { self.events.append(e) } } }
    var all: [EngineEvent] { lock.withLock { events } }

    var text: String {
        all.map { e -> String in
            switch e {
            case .command(let h, let c): return "\(h)$ \(c)"
            case .output(let h, _, let l): return "\(h)> \(l)"
            case .stepFailed(let h, let s, _, let err): return "\(h) \(s) FAILED \(err)"
            default: return String(describing: e)
            }
        }.joined(separator: "\n")
    }

    /// The `connected` and `facts` events from the `start`th event on, in order: "connected cp-1", "facts cp-1".
    func connectOrder(from start: Int = 0) -> [String] {
        all.dropFirst(start).compactMap { e -> String? in
            switch e {
            case .connected(let h, _): return "connected \(h)"
            case .facts(let h, _): return "facts \(h)"
            default: return nil
            }
        }
    }

    var stepsRun: [String] {
        all.compactMap { if case .stepFinished(let h, let s, _, true) = $0 { return "\(h)/\(s)" }; return nil }
    }
}
