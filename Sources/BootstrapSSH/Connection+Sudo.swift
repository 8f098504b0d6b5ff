import BootstrapCore
import BootstrapTransport
import CLibSSH2
import Foundation
import Glibc

// How privileged commands go through `sudo -n` for a non-root user, and what sudo's refusals mean.
extension Connection {
    // MARK: - Sudo

    /// The command line sent to the server.
    func commandLine(_ command: ShellCommand) -> String {
        if command.privileged && !isRoot {
            return "sudo -n sh -c \(Shell.quote(command.script))"
        }
        return command.script
    }

    /// The command as one program for `exec`: `sh -c SCRIPT`, through `sudo -n` when needed.
    func wrappedCommandLine(_ command: ShellCommand) -> String {
        (command.privileged && !isRoot ? "sudo -n " : "") + "sh -c \(Shell.quote(command.script))"
    }

    /// Ends a command cut off by its time-out: TERM to its process group now, KILL two seconds later.
    func kill(processGroup pid: Int32, privileged: Bool) {
        guard pid > 1, let s = session else { return }
        let sudo = privileged ? "sudo -n " : ""
        let script = "\(sudo)kill -TERM -- -\(pid) 2>/dev/null; "
            + "(sleep 2; \(sudo)kill -KILL -- -\(pid)) </dev/null >/dev/null 2>&1 &"
        let deadline = Deadline.after(.seconds(5)) { self.closedError() }
        guard let channel = try? callPointer(deadline, what: "opening a channel", kind: .channel, {
            bs_channel_open_session(s)
        }) else { return }
        _ = try? exec(channel: channel, line: script, stdin: nil, deadline: deadline, output: nil, remote: nil)
        discard(channel, patient: false)
    }

    func checkSudo(_ result: CommandResult) throws {
        let err = result.stderrText
        if result.exitStatus == 1 && (err.contains("sudo: a password is required")
            || err.contains("sudo: a terminal is required") || err.contains("sudo: no tty present")) {
            throw SSHError(.sudoPasswordRequired, host: label,
                           message: "user \(endpoint.user) on \(endpoint.name) needs passwordless sudo "
                               + "(sudo -n asked for a password on \(label))")
        }
        if result.exitStatus == 127 && err.contains("sudo") && err.contains("not found") {
            throw SSHError(.sudoMissing, host: label,
                           message: "user \(endpoint.user) on \(endpoint.name) is not root and sudo is not installed")
        }
    }
}
