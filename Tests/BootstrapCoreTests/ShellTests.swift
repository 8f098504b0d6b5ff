import Testing
@testable import BootstrapCore

@Suite struct ShellTests {
    @Test func quotesOnlyWhatNeedsQuoting() {
        #expect(Shell.quote("kubeadm") == "kubeadm")
        #expect(Shell.quote("10.244.0.0/16") == "10.244.0.0/16")
        #expect(Shell.quote("") == "''")
        #expect(Shell.quote("a b") == "'a b'")
        #expect(Shell.quote("it's") == "'it'\\''s'")
        #expect(Shell.quote("$(rm -rf /)") == "'$(rm -rf /)'")
        #expect(Shell.join(["echo", "x;y", "`z`"]) == "echo 'x;y' '`z`'")
    }

    @Test func commandDescriptionRedactsSecrets() {
        let token = Secret("abcdef.0123456789abcdef")
        let cmd = ShellCommand(["kubeadm", "join", "--token", token.revealed], secrets: [token])
        #expect(!cmd.description.contains(token.revealed))
        #expect(cmd.description.contains("<redacted>"))
        #expect("\(token)" == "<redacted>")
    }
}
