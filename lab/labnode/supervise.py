"""`python3 -m labnode.supervise NAME RESTART_SEC -- ARGV...`: systemd's Restart=always for a lab service.

Runs ARGV, records its pid in /run/labnode/NAME.main.pid, restarts it RESTART_SEC after it exits;
SIGTERM stops the child and the supervisor."""
import os
import signal
import subprocess
import sys
import time

from labnode import common


class _Forked:
    """The part of Popen the loop uses, for a child forked by the fork server's spawn()."""

    def __init__(self, pid):
        self.pid, self.returncode = pid, None

    def _reap(self, flags):
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:
            if self.returncode is None:
                self.returncode = 255
            return self.returncode
        if pid and self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self):
        return self.returncode if self.returncode is not None else self._reap(os.WNOHANG)

    def wait(self):
        return self.returncode if self.returncode is not None else self._reap(0)

    def terminate(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _let_handlers_run():
    """Python runs a signal's handler at its next check point, not when the signal arrives: a stop that arrived
    just before the signals were held has not reached state["stop"] yet. Entering a Python function is such a
    check point, so after this call every stop that arrived has been handled."""


def _start(argv, state):
    """Starts the service's main process and records it in state["child"]: forked when this supervisor has the
    labnode modules loaded (it was forked from the host's fork server), else a new process. Returns it, or None
    when a stop has come first.

    The stop signals are held from the last look at state["stop"] until state["child"] is the new process, so a
    `systemctl stop` (SIGTERM to the group) always finds one of two things: no new child started, or a new child
    that the supervisor's handler knows and stops. Otherwise a stop landing just before the fork would start a
    service nobody stops, and one landing just after it would run the supervisor's handler in the new process
    (which then ignores the stop): both wait for the stop's 5 s SIGKILL. The new process starts with the signals
    held and gets any stop once it has default handlers (spawn() resets them, then unblocks)."""
    fs = sys.modules.get("labnode.forkserver")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        _let_handlers_run()
        if state["stop"]:
            return None
        pid = fs.spawn(argv) if fs is not None else None
        if pid is not None:
            state["child"] = _Forked(pid)
        else:
            # an exec'd child must not inherit the held signals
            state["child"] = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                              preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, old))
        return state["child"]
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def main():
    name, restart_sec = sys.argv[1], float(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1:]
    main_pid = os.path.join(common.RUN_DIR, name + ".main.pid")
    common.set_process_name("lab-systemd")
    state = {"child": None, "stop": False}

    def term(signum, frame):
        state["stop"] = True
        c = state["child"]
        if c is not None and c.poll() is None:
            c.terminate()

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    while not state["stop"]:
        sys.stdout.write("%s lab-systemd: starting %s\n" % (time.strftime("%H:%M:%S"), name))
        sys.stdout.flush()
        child = _start(argv, state)
        if child is None:
            break
        # atomically: `systemctl start` and `is-active` poll this file (never see it empty)
        with open(main_pid + ".tmp", "w") as f:
            f.write("%d\n" % child.pid)
        os.rename(main_pid + ".tmp", main_pid)
        while True:
            try:
                rc = child.wait()
                break
            except InterruptedError:
                continue
        if state["stop"]:
            break
        sys.stdout.write("%s lab-systemd: %s.service: main process exited, code=exited, status=%d; "
                         "scheduling restart in %gs\n" % (time.strftime("%H:%M:%S"), name, rc, restart_sec))
        sys.stdout.flush()
        deadline = time.time() + restart_sec
        while not state["stop"] and time.time() < deadline:
            time.sleep(0.05)
    try:
        os.unlink(main_pid)
    except FileNotFoundError:
        pass


if __name__ == "__main__":
    main()
