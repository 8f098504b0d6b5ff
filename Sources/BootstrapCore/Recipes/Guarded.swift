/// How every mutating remote command runs (package managers, kubeadm init/join/reset, Helm, kubectl apply):
///
/// - under a host-wide lock of its kind (`/var/lib/bootstrap/NAME.lock`, `flock`), so that a re-run waits for
///   the same kind of command left running by an earlier, killed run instead of racing it. The lock file names
///   its holder; a waiter says whom it waits for, and gives up after the limit with that name (exit 75);
/// - with its output going to a file (`/var/lib/bootstrap/NAME.log`) and its input from /dev/null, so that a
///   lost SSH connection (`kill -9` of bootstrap) cannot kill it half-way with SIGPIPE: it finishes on its own,
///   and the output is printed when it ends;
/// - within its own time limit (`timeout`, exit 124), while a TERM to the wrapper (the SSH layer's way of
///   stopping a command on time-out or Ctrl-C) is passed on to it.
public struct RemoteGuard: Sendable, Hashable {
    /// The lock's name: `packages`, `kubeadm`, `helm`, `helm-NAMESPACE_RELEASE`, `objects`. Safe file-name characters only.
    public var lock: String
    /// What runs, for people and the lock file: `kubeadm join`, `apt-get install containerd`.
    public var what: String
    /// Seconds to wait for the lock, and then, separately, for the command to finish.
    public var seconds: Int
    /// The plan setting that sets `seconds` (`spec.timeouts.join`), for messages.
    public var setting: String?

    public init(lock: String, what: String, seconds: Int, setting: String? = nil) {
        self.lock = lock
        self.what = what
        self.seconds = seconds
        self.setting = setting
    }

    public static let lockBusyStatus: Int32 = 75
    public static let timedOutStatus: Int32 = 124
    public static let lockBusyMarker = "bootstrap: lock busy:"
    public static let timedOutMarker = "bootstrap: time limit:"

    public var lockPath: String { "\(NodeRecipes.bootstrapDirectory)/\(lock).lock" }
    public var logPath: String { "\(NodeRecipes.bootstrapDirectory)/\(lock).log" }

    /// How long the SSH layer lets the whole wrapper run: the lock wait, the command, and a little.
    public var sessionLimit: Int { Self.sessionLimit(seconds) }
    public static func sessionLimit(_ seconds: Int) -> Int { 2 * seconds + 60 }

    /// `inner` guarded: its script is the body; its steps name a failure, its shown text is what logs show.
    public func command(_ inner: ShellCommand, underLock: [String] = [], secrets: [Secret] = []) -> ShellCommand {
        var cmd = command(inner.script, underLock: underLock, secrets: inner.secrets + secrets)
        cmd.shown = inner.shown
        cmd.stepNames = inner.stepNames
        return cmd
    }

    /// `body` (shell text, already quoted) guarded. `underLock` lines run first, under the lock, with the
    /// command's standard input (to write a config file from it) and may `exit 0` to skip the body.
    public func command(_ body: String, underLock: [String] = [], secrets: [Secret] = []) -> ShellCommand {
        let lock = lockPath, log = logPath, s = String(seconds)
        let holder = "$(cat \(lock) 2>/dev/null || echo 'another command')"
        var lines = [
            "what=\(Shell.quote(what))",
            "mkdir -p -m 700 \(NodeRecipes.bootstrapDirectory)",
            "exec 9>>\(lock)",
            "if ! flock -n 9; then",
            "  echo \"bootstrap: waiting for \(holder) to release \(lock)\" >&2",
            "  if ! flock -w \(s) 9; then",
            "    echo \"\(Self.lockBusyMarker) \(lock) is still held after \(s)s by \(holder), so $what did not start."
                + " If that command hangs, stop it; if it is still working, let it finish; then run bootstrap again.\" >&2",
            "    exit \(Self.lockBusyStatus)",
            "  fi",
            "fi",
            "printf '%s (pid %s, since %s)\\n' \"$what\" \"$$\" \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" > \(lock)",
        ]
        lines += underLock
        lines += [
            "timeout -k 10 \(s) sh -c \(Shell.quote(body)) 9>&- </dev/null >\(log) 2>&1 &",
            "child=$!",
            "trap 'kill -TERM -- -$child 2>/dev/null || kill -TERM $child 2>/dev/null' TERM INT HUP",
            "rc=0; wait $child || rc=$?",
            "while kill -0 $child 2>/dev/null; do rc=0; wait $child || rc=$?; done",
            "trap - TERM INT HUP",
            "cat \(log)",
            "if [ $rc -eq \(Self.timedOutStatus) ]; then echo \"\(Self.timedOutMarker) $what did not finish within \(s)s"
                + (setting.map { " (\($0))" } ?? "") + "; its output: \(log)\" >&2; fi",
            "exit $rc",
        ]
        var cmd = ShellCommand(script: lines.joined(separator: "\n"), secrets: secrets)
        cmd.label = self.what
        return cmd
    }
}
