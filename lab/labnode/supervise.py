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


def _start(argv):
    """The service's main process: forked when this supervisor has the labnode modules loaded (it was forked from
    the host's fork server), else a new process as before."""
    fs = sys.modules.get("labnode.forkserver")
    pid = fs.spawn(argv) if fs is not None else None
    return _Forked(pid) if pid is not None else subprocess.Popen(argv, stdin=subprocess.DEVNULL)


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
        child = _start(argv)
        state["child"] = child
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
