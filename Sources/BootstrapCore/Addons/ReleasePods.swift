/// How far a Helm release's `--wait` has got: its pods Ready out of the pods its workloads want, read from
/// `HelmRecipes.releaseWorkloads` (the status of every Deployment, StatefulSet and DaemonSet Helm made for it).
/// The same workloads Helm's `--wait` watches; pods an operator makes later (Prometheus, calico-node) are not
/// the release's and are not counted, as Helm does not wait for them either.
public enum ReleasePods {
    public struct Count: Sendable, Hashable {
        public var ready: Int
        public var total: Int
        public init(ready: Int, total: Int) {
            self.ready = ready
            self.total = total
        }
    }

    /// The columns `HelmRecipes.releaseWorkloads` asks kubectl for, in order.
    static let columns: [(header: String, path: String)] = [
        ("KIND", ".kind"),
        ("NAMESPACE", ".metadata.namespace"),
        ("NAME", ".metadata.name"),
        ("RELEASE", #".metadata.annotations.meta\.helm\.sh/release-name"#),
        ("RELEASE_NAMESPACE", #".metadata.annotations.meta\.helm\.sh/release-namespace"#),
        ("REPLICAS", ".spec.replicas"),
        ("READY_REPLICAS", ".status.readyReplicas"),
        ("DESIRED_SCHEDULED", ".status.desiredNumberScheduled"),
        ("NUMBER_READY", ".status.numberReady"),
    ]

    /// The pods of release `name` in `namespace` that are Ready, and how many its workloads want: a
    /// DaemonSet's `desiredNumberScheduled` and `numberReady`, a Deployment's or StatefulSet's `spec.replicas`
    /// (1 when unset, the API server's default) and `readyReplicas` (a rolling update's extra pods do not
    /// count above the total). nil when the output is not kubectl's table of those columns.
    public static func count(_ output: String, release name: String, namespace: String) -> Count? {
        var ready = 0
        var total = 0
        for line in output.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            // kubectl's table: the kind, then names, then counts (`<none>` for a field the object lacks).
            guard f.count == columns.count, ["Deployment", "StatefulSet", "DaemonSet", "<none>"].contains(f[0]),
                  f[5...].allSatisfy({ $0 == "<none>" || Int($0) != nil }) else { return nil }
            guard f[3] == name, f[4] == namespace else { continue }
            let number = { (s: String) -> Int? in Int(s) }
            let want: Int
            let have: Int
            if let desired = number(f[7]) {  // a DaemonSet: these status fields are always there
                want = desired
                have = number(f[8]) ?? 0
            } else {
                want = number(f[5]) ?? 1
                have = number(f[6]) ?? 0
            }
            total += max(want, 0)
            ready += min(max(have, 0), max(want, 0))
        }
        return Count(ready: ready, total: total)
    }

    /// What a release still waits for, as the progress line says it: `release monitoring/kube-prometheus-stack:
    /// 3 of 5 pods ready`; without a count (not read yet), what Helm waits for.
    public static func message(namespace: String, release name: String, _ count: Count?) -> String {
        guard let count else { return "release \(namespace)/\(name): waiting for its pods to be Ready (helm --wait)" }
        if count.total == 0 { return "release \(namespace)/\(name): no pods yet" }
        return "release \(namespace)/\(name): \(count.ready) of \(count.total) pod\(count.total == 1 ? "" : "s") ready"
    }
}
