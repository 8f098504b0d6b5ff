import Foundation
import BootstrapTestSupport
import Testing

/// The built binary's command line itself: completions, unknown commands, help texts. No lab, no root.
@Suite struct CLITests {
    static func bootstrap(_ args: [String], env: [String: String] = [:]) throws -> Output {
        try runProgram(E2E.binary, args, env: env)
    }

    /// The subcommands `bootstrap --help` lists.
    static func listedSubcommands() throws -> [String] {
        let help = try bootstrap(["--help"]).stdout
        guard let start = help.range(of: "SUBCOMMANDS:") else { return [] }
        let section = help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
            .dropFirst().prefix { !$0.isEmpty }
        return section.compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let word = line.split(separator: " ").first else { return nil }
            return String(word)
        }
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptNamesEverySubcommand(shell: String) async throws {
        try await onOwnThread {
            let listed = try Self.listedSubcommands()
            // The help lists the documented commands (and no hidden ones).
            #expect(Set(listed) == ["plan", "apply", "destroy", "validate", "show", "backup", "restore", "force-unlock", "version",
                                    "completion"], "\(listed)")
            let out = try Self.bootstrap(["completion", shell])
            #expect(out.status == 0, "\(out.all)")
            #expect(out.stdout.count > 500)
            for sub in listed {
                #expect(out.stdout.contains(sub), "the \(shell) script does not name \(sub)")
            }
            // Options of subcommands are completed too.
            for option in ["auto-approve", "show-defaults", "kubernetes"] {
                #expect(out.stdout.contains(option), "the \(shell) script does not name \(option)")
            }
        }
    }

    @Test func completionScriptsLoadInBash() async throws {
        try await onOwnThread {
            let dir = NSTemporaryDirectory() + "bootstrap-completion-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let script = (dir as NSString).appendingPathComponent("bootstrap.bash")
            try Self.bootstrap(["completion", "bash"]).stdout.write(toFile: script, atomically: true, encoding: .utf8)
            // Sourcing it registers a completion function for `bootstrap`.
            let out = try runProgram("/bin/bash", ["-c", "source \(script) && complete -p bootstrap"])
            #expect(out.status == 0, "\(out.all)")
            #expect(out.stdout.contains("bootstrap"), "\(out.all)")
        }
    }

    @Test func unknownShellIsBadInput() async throws {
        try await onOwnThread {
            let out = try Self.bootstrap(["completion", "tcsh"])
            #expect(out.status == 2, "\(out.all)")
            #expect(out.stderr.contains("tcsh"))
        }
    }

    @Test func mistypedSubcommandGetsSuggestion() async throws {
        try await onOwnThread {
            let out = try Self.bootstrap(["aply", "-f", "plan.yaml"])
            #expect(out.status == 2, "\(out.all)")
            #expect(out.stderr.contains("unknown command 'aply'; did you mean 'apply'?"), "\(out.stderr)")
            #expect(out.stdout.isEmpty)
            // `help NAME` asks about a command: the same answer.
            let help = try Self.bootstrap(["help", "aply"])
            #expect(help.status == 2, "\(help.all)")
            #expect(help.stderr.contains("unknown command 'aply'; did you mean 'apply'?"), "\(help.stderr)")
            #expect(try Self.bootstrap(["help", "apply"]).stdout.contains("USAGE: bootstrap apply"))
            let far = try Self.bootstrap(["kubernetes"])
            #expect(far.status == 2)
            #expect(far.stderr.contains("unknown command 'kubernetes'"))
            #expect(!far.stderr.contains("did you mean"), "\(far.stderr)")
            // The benchmark commands are not in the product (they are `bootstrap-bench`, for scripts/bench).
            #expect(try Self.bootstrap(["bench-fixture", "--help"]).status == 2)
            #expect(try Self.bootstrap(["bench-ssh"]).status == 2)
        }
    }

    /// Where `lines` break a sentence: with 400 columns, a prose line (not indented; examples and lists are)
    /// ends only at its paragraph's end, so a next prose line that starts in lower case continues a sentence
    /// that a hard-coded newline cut.
    static func midSentenceBreaks(_ lines: [String]) -> [String] {
        var found: [String] = []
        for i in lines.indices.dropLast() {
            let a = lines[i], b = lines[i + 1]
            let indentA = a.prefix(while: { $0 == " " }).count
            let indentB = b.prefix(while: { $0 == " " }).count
            guard a.count > indentA, let first = b.dropFirst(indentB).first else { continue }
            if indentA == 0 && indentB == 0 && first.isLowercase && a.count < 300 && !a.hasSuffix(":") {
                found.append(a + "\n" + b)
            }
        }
        return found
    }

    /// A help text must not break a sentence at a hard-coded newline: the parser wraps each paragraph itself,
    /// so a newline inside a paragraph leaves a short line followed by the sentence's rest.
    @Test func helpTextsDoNotBreakMidSentence() async throws {
        try await onOwnThread {
            for sub in try Self.listedSubcommands() {
                let help = try Self.bootstrap([sub, "--help"], env: ["COLUMNS": "400"]).stdout
                let breaks = Self.midSentenceBreaks(help.components(separatedBy: "\n"))
                #expect(breaks.isEmpty, "bootstrap \(sub) --help breaks a sentence:\n\(breaks.joined(separator: "\n\n"))")
            }
        }
    }

    /// At the width the parser wraps to without a terminal (80 columns), an indented line (an example, a list)
    /// is never wrapped: the parser would continue it at the left margin, mid-sentence.
    @Test func helpTextsExamplesFitEightyColumns() async throws {
        try await onOwnThread {
            for sub in try Self.listedSubcommands() {
                let wide = try Self.bootstrap([sub, "--help"], env: ["COLUMNS": "400"]).stdout
                let narrow = Set(try Self.bootstrap([sub, "--help"], env: ["COLUMNS": "80"]).stdout.components(separatedBy: "\n"))
                let usage = wide.range(of: "\nUSAGE:").map { wide[..<$0.lowerBound] } ?? Substring(wide)
                for line in usage.components(separatedBy: "\n") where line.hasPrefix("  ") {
                    let whole = narrow.contains(line)
                    #expect(whole, "bootstrap \(sub) --help wraps this line at 80 columns:\n\(line)")
                }
            }
        }
    }

    /// Options that take a number say so (`--parallelism N`), not the property's name.
    @Test func numericOptionsNameTheirValue() async throws {
        try await onOwnThread {
            for sub in ["apply", "destroy", "plan"] {
                let help = try Self.bootstrap([sub, "--help"], env: ["COLUMNS": "400"]).stdout
                #expect(help.contains("--parallelism <N>"), "\(sub): \(help)")
                #expect(!help.contains("<parallelism>"), "\(sub): \(help)")
            }
        }
    }

    /// `apply` says what it lacks: no plan at all is not "not both".
    @Test func applyWithoutAPlanSaysWhatToGive() async throws {
        try await onOwnThread {
            let none = try Self.bootstrap(["apply"])
            #expect(none.status == 2, "\(none.all)")
            #expect(none.stderr.contains("give the plan: -f FILE, or a SAVED-PLAN from `bootstrap plan --out`"), "\(none.stderr)")
            #expect(!none.stderr.contains("not both"), "\(none.stderr)")
            let both = try Self.bootstrap(["apply", "-f", "a.yaml", "b.plan.json"])
            #expect(both.status == 2, "\(both.all)")
            #expect(both.stderr.contains("not both"), "\(both.stderr)")
        }
    }

    @Test func versionHelpSaysWhatItPrints() async throws {
        try await onOwnThread {
            let help = try Self.bootstrap(["version", "--help"]).stdout
            #expect(help.contains("with --kubernetes"), "\(help)")
            let plain = try Self.bootstrap(["version"]).stdout
            #expect(!plain.contains("kubernetes 1."))
            #expect(try Self.bootstrap(["version", "--kubernetes"]).stdout.contains("kubernetes 1.34.x (1.34.0–1.34.7 known)"))
        }
    }
}
