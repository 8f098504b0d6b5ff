import BootstrapCore
import Foundation
import Testing
@testable import BootstrapEngine

/// The lock against another process (a shell holding the same file with util-linux `flock(1)`).
@Suite struct StateStoreProcessTests {
    func holdLock(_ path: String, seconds: Int) async throws -> Process {
        let p = Process()
        // One process: the shell opens the file, flock(1) locks that open file, the shell becomes `sleep`.
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "exec 9>>\"$1\" && flock --exclusive 9 && exec sleep \"$2\"", "sh", path, String(seconds)]
        try p.run()
        // Wait until the other process has the lock.
        let deadline = Date().addingTimeInterval(30)  // a precondition, not a timing: a loaded machine may take a while
        while Date() < deadline {
            let fd = open(path, O_RDONLY)
            if fd >= 0 {
                let busy = flock(fd, LOCK_EX | LOCK_NB) != 0
                close(fd)
                if busy { return p }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        p.terminate()
        throw StateError.io(path: path, operation: "flock(1) did not take", errno: 0)
    }

    @Test func anotherProcessHoldingTheLockRefusesUsWithItsDetails() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let holder = LockHolder(pid: 4242, hostname: "ops-box", command: "bootstrap apply -f lab.yaml",
                                startedAt: Date(timeIntervalSince1970: 1_800_000_000))
        try JSONEncoder.state.encode(holder).write(to: URL(fileURLWithPath: path + ".lock"))
        let other = try await holdLock(path + ".lock", seconds: 30)
        defer { other.terminate() }

        let store = StateStore(path: path)
        do {
            try await store.lock(command: "bootstrap apply", timeout: .milliseconds(300))
            Issue.record("locked while another process holds the lock")
        } catch let e as StateError {
            #expect(e == .locked(path: path, holder: holder))
            #expect(e.description.contains("`bootstrap apply -f lab.yaml` (pid 4242 on ops-box"))
        }
        // force-unlock without --force refuses a live holder.
        await #expect(throws: StateError.self) { try await store.forceUnlock(force: false) }
    }

    @Test func theLockIsFreeOnceTheHolderDies() async throws {
        let dir = TempDir()
        let path = dir.path + "/lab.state.json"
        let other = try await holdLock(path + ".lock", seconds: 30)
        let store = StateStore(path: path)
        await #expect(throws: StateError.self) { try await store.lock(command: "x") }
        other.terminate()
        try await store.lock(command: "x", timeout: .seconds(2))
        #expect(store.isLocked)
        store.unlock()
    }
}
