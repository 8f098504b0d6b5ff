import BootstrapCore
import Foundation

/// The wait-ready phase: every plan node Ready, with progress while it waits.
extension ApplyEngine {
    /// Waits until every plan node is Ready; on time-out says which are not and why.
    func waitReady(cluster: ClusterSession) async throws {
        let cp = try await cluster.controlPlaneRunner()
        let names = Set(plan.spec.hosts.map(\.name))
        try await stepEvents.run(host: cp.name, step: "wait-ready") {
            let clock = ContinuousClock()
            let t0 = clock.now
            let deadline = t0 + options.readyTimeout
            var notReady: [String: String] = [:]
            var nextProgress = t0 + options.progressInterval
            while true {
                let result = try await cp.probe(NodeRecipes.nodesJSON, timeout: .seconds(60))
                if result.succeeded {
                    let status = NodeStatus.parse(result.stdout)
                    notReady = [:]
                    for n in names.sorted() {
                        if let node = status[n] {
                            if !node.ready { notReady[n] = node.reason }
                        } else {
                            notReady[n] = "not registered with the API server"
                        }
                    }
                    if notReady.isEmpty { return false }  // nothing changed on a host
                } else {
                    notReady = ["(API server)": result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)]
                }
                if clock.now >= nextProgress {
                    events(Self.readyProgress(host: cp.name, notReady: notReady, elapsed: clock.now - t0))
                    while nextProgress <= clock.now { nextProgress += options.progressInterval }
                }
                if clock.now >= deadline || options.cancellation.isCancelled {
                    let detail = notReady.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
                    throw EngineError.timeout("nodes not Ready after \(options.readyTimeout): \(detail)")
                }
                try await Task.sleep(for: options.readyPollInterval)
            }
        }
    }

    /// What wait-ready still waits for: the nodes not Ready yet (by name; their reasons are in the time-out
    /// error, should it come to that), or the API server when it did not answer.
    static func readyProgress(host: String, notReady: [String: String], elapsed: Duration) -> EngineEvent {
        if let api = notReady["(API server)"] {
            return .waiting(host: host, step: "wait-ready", message: "waiting for the API server to answer: \(api)",
                            awaiting: ["(API server)"], elapsed: elapsed)
        }
        let names = notReady.keys.sorted()
        let what = names.count == 1 ? "1 node" : "\(names.count) nodes"
        return .waiting(host: host, step: "wait-ready",
                        message: "waiting for \(what) to be Ready: \(names.joined(separator: ", "))",
                        awaiting: names, elapsed: elapsed)
    }

    /// What a step that waits says at each interval: the message, what it still waits for, and the pods
    /// Ready out of those wanted when it knows them.
    typealias Progress = (message: String, awaiting: [String], pods: ReleasePods.Count?)

    /// Runs `body` (a long remote command such as `helm upgrade --install --wait`) and, while it runs, sends a
    /// `.waiting` event every `options.progressInterval` with what `status` says then (it may look, on another
    /// session: `body` holds its own); none follows `body`'s return.
    @discardableResult
    func withProgress<T: Sendable>(host: String, step: String, status: @escaping @Sendable () async -> Progress,
                                   _ body: () async throws -> T) async throws -> T {
        let interval = options.progressInterval
        let events = self.events
        let ticker = Task {
            let clock = ContinuousClock()
            let t0 = clock.now
            var next = t0 + interval
            while !Task.isCancelled {
                do { try await Task.sleep(until: next, clock: clock) } catch { return }
                let at = clock.now
                let now = await status()
                if Task.isCancelled { return }
                events(.waiting(host: host, step: step, message: now.message, awaiting: now.awaiting,
                                elapsed: at - t0, pods: now.pods))
                // A slow look skips the ticks it overran rather than sending them late in a row.
                while next <= clock.now { next += interval }
            }
        }
        // The ticker is stopped and waited for before returning, so no line about the step follows its end.
        do {
            let result = try await body()
            ticker.cancel()
            await ticker.value
            return result
        } catch {
            ticker.cancel()
            await ticker.value
            throw error
        }
    }
}

/// Each node's Ready condition (with its reason when not) and kubelet version, from `kubectl get nodes -o json`.
enum NodeStatus {
    struct Node {
        var ready: Bool
        var reason: String
        /// `status.nodeInfo.kubeletVersion` (`v1.35.5`), "?" when not reported.
        var kubelet: String
    }

    static func parse(_ data: Data) -> [String: Node] {
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let items = obj["items"] as? [[String: Any]] else { return [:] }
        var out: [String: Node] = [:]
        for item in items {
            guard let name = (item["metadata"] as? [String: Any])?["name"] as? String else { continue }
            let status = item["status"] as? [String: Any]
            let conditions = (status?["conditions"] as? [[String: Any]]) ?? []
            let kubelet = ((status?["nodeInfo"] as? [String: Any])?["kubeletVersion"] as? String) ?? "?"
            if let ready = conditions.first(where: { $0["type"] as? String == "Ready" }) {
                let ok = ready["status"] as? String == "True"
                let why = [ready["reason"] as? String, ready["message"] as? String].compactMap { $0 }.joined(separator: ": ")
                out[name] = Node(ready: ok, reason: why.isEmpty ? "Ready is \(ready["status"] as? String ?? "Unknown")" : why,
                                 kubelet: kubelet)
            } else {
                out[name] = Node(ready: false, reason: "no Ready condition reported yet", kubelet: kubelet)
            }
        }
        return out
    }
}
