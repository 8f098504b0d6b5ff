import Foundation

extension Manifests {
    /// The bytes of a file, or nil when it cannot be read. Core does no I/O: the caller gives the reader (the CLI's
    /// reads off the cooperative pool).
    public typealias Reader = (_ path: String) async -> Data?

    /// Where a manifest path of the plan is on disk: absolute as it is, relative against the plan's directory.
    public static func path(of manifest: String, in plan: ClusterPlan) -> String {
        Validation.resolve(manifest, against: plan.source.baseDirectory)
    }

    /// Everything bootstrap applies for the plan (`desired`), each manifest file of `spec.manifests` read
    /// through `read`. A file that cannot be read, or that is not valid, is a problem naming the file as the plan
    /// gives it (and the line, where the YAML says).
    public static func load(for plan: ClusterPlan, read: Reader) async throws(ManifestProblem) -> [KubeObject] {
        var files: [String: String] = [:]
        for manifest in plan.spec.manifests where files[manifest] == nil {
            let path = path(of: manifest, in: plan)
            guard let data = await read(path) else {
                throw ManifestProblem(file: manifest, message: "cannot be read (looked for \(path))")
            }
            files[manifest] = String(decoding: data, as: UTF8.self)
        }
        return try desired(for: plan, files: files)
    }
}
