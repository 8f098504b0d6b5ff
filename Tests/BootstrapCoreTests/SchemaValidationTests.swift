import Foundation
import BootstrapTestSupport
import Testing
@testable import BootstrapCore

/// The `kubernetes-validate` tool (PyPI), as scripts/test-tools installs it.
enum KubernetesValidate {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// `$KUBERNETES_VALIDATE`, then `$BOOTSTRAP_TOOLS/bin` (default /opt/bootstrap-tools), then `PATH`.
    static var executable: String? {
        var candidates: [String] = []
        if let p = environment["KUBERNETES_VALIDATE"], !p.isEmpty { candidates.append(p) }
        candidates.append((environment["BOOTSTRAP_TOOLS"] ?? "/opt/bootstrap-tools") + "/bin/kubernetes-validate")
        for dir in (environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/kubernetes-validate") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// In CI a missing tool is a failure; elsewhere the tests that need it are skipped, saying why.
    static var shouldRun: Bool { executable != nil || environment["CI"] != nil }

    struct Outcome {
        var exitCode: Int32
        var output: String
        /// Lines saying an object passed.
        var passed: Int { output.split(separator: "\n").filter { $0.contains(" passed for resource ") }.count }
        /// Everything but the pass lines: errors, and warnings such as a schema not found.
        var problems: [String] {
            output.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("INFO ") && !$0.isEmpty }
        }
    }

    /// Runs the tool in strict mode (a field the schema does not define is an error) on `files`, against the
    /// schemas of Kubernetes `version`.
    static func run(_ tool: String, files: [URL], version: String) throws -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = ["--strict", "--kubernetes-version", version] + files.map(\.path)
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Outcome(exitCode: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// The version to validate each supported Kubernetes minor against: its newest pinned patch. The tool maps it
    /// to that minor's schemas; kubernetes-validate 1.37.0 has 1.25–1.37, so every minor we install (1.33–1.36)
    /// is checked against its own schemas. A minor it lacks makes it exit with "does not support": then raise
    /// the pin in scripts/test-tools.
    static var versions: [String] {
        KubernetesReleases.minors.map { m in "\(m).\(KubernetesReleases.supported[m]?.max() ?? 0)" }
    }
}

@Suite struct SchemaValidationTests {
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bootstrap-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func tool() throws -> String {
        try #require(KubernetesValidate.executable,
                     "kubernetes-validate not found (CI is set, so this fails): scripts/test-tools installs it")
    }

    /// Every object bootstrap generates (security objects for every namespace option, add-on extras) and the example
    /// app, as applied, validated against the schemas of every Kubernetes version bootstrap installs.
    @Test(.enabled(if: KubernetesValidate.shouldRun, "kubernetes-validate is not installed: run scripts/test-tools"))
    func generatedObjectsAndTheExampleAppMatchTheSchemas() async throws {
        try await onOwnThread {
            let tool = try SchemaValidationTests.tool()
            let p = try everythingPlan()
            let appPath = repoRoot.appendingPathComponent("Plans/apps/my-app.yaml")
            let appText = try String(contentsOf: appPath, encoding: .utf8)
            let objects = Manifests.applyOrder(try Manifests.desired(for: p, files: ["apps/my-app.yaml": appText]))
            let generated = GeneratedObjects.objects(for: p)
            // The fixture reaches every kind of object we generate.
            #expect(Set(generated.map(\.kind)) == ["Namespace", "NetworkPolicy", "LimitRange", "RoleBinding", "Service",
                                                    "ServiceAccount", "ClusterRoleBinding"])
            let appObjects = try Manifests.parse(appText, file: "apps/my-app.yaml")

            let dir = try SchemaValidationTests.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            // What `apply` uploads, and the example app as written.
            let objectsFile = dir.appendingPathComponent("objects.yaml")
            try Data(Manifests.document(objects).utf8).write(to: objectsFile)
            let appFile = dir.appendingPathComponent("my-app.yaml")
            try Data(appText.utf8).write(to: appFile)

            for version in KubernetesValidate.versions {
                let out = try KubernetesValidate.run(tool, files: [objectsFile, appFile], version: version)
                guard out.exitCode == 0 && out.problems.isEmpty else {
                    Issue.record("kubernetes-validate \(version) (exit \(out.exitCode)):\n\(out.problems.joined(separator: "\n"))")
                    continue
                }
                #expect(out.passed == objects.count + appObjects.count,
                        "expected \(objects.count + appObjects.count) objects to pass against \(version):\n\(out.output)")
            }
        }
    }

    /// The check bites: strict mode rejects a misspelt field, and an unknown kind is not waved through.
    @Test(.enabled(if: KubernetesValidate.shouldRun, "kubernetes-validate is not installed: run scripts/test-tools"))
    func theCheckRejectsWhatTheSchemasDoNotHave() async throws {
        try await onOwnThread {
            let tool = try SchemaValidationTests.tool()
            let p = try everythingPlan()
            var limits = try #require(GeneratedObjects.objects(for: p).first { $0.kind == "LimitRange" })
            limits.body = limits.body.merged(with: .object(["spec": .object(["limits": .array([.object([
                "type": "Container", "defaultRequests": .object(["cpu": "100m"]),
            ])])])]))
            let crd = KubeObject(body: .object(["apiVersion": "example.com/v1", "kind": "Widget",
                                                "metadata": .object(["name": "w"])]), source: "test")
            let dir = try SchemaValidationTests.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let file = dir.appendingPathComponent("bad.yaml")
            try Data(Manifests.document([limits, crd]).utf8).write(to: file)
            let out = try KubernetesValidate.run(tool, files: [file], version: KubernetesReleases.latest)
            #expect(out.exitCode != 0)
            #expect(out.problems.contains { $0.contains("'defaultRequests' was unexpected") }, "\(out.output)")
            #expect(out.problems.contains { $0.contains("Couldn't find schema for kind Widget") }, "\(out.output)")
            #expect(out.passed == 0)
        }
    }
}
