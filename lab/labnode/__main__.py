"""Dispatcher: `python3 -m labnode TOOL ARGS...` (installed wrappers exec this)."""
import importlib
import os
import sys

from labnode import TOOLS
from labnode.common import check_faults, set_process_name


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: python3 -m labnode TOOL [ARGS...]\n")
        return 2
    tool, argv = sys.argv[1], sys.argv[2:]
    modname = TOOLS.get(tool)
    if modname is None:
        sys.stderr.write("%s: command not found\n" % tool)
        return 127
    if tool.endswith("-daemon"):
        set_process_name(tool[:-len("-daemon")])  # ps/pgrep see "kubelet", "containerd"
    else:
        check_faults(tool, argv)
    try:
        mod = importlib.import_module("labnode." + modname)
    except ModuleNotFoundError as e:
        if e.name == "labnode." + modname:
            sys.stderr.write("%s: not implemented in this lab (labnode.%s missing)\n" % (tool, modname))
            return 127
        raise
    rc = 1
    try:
        rc = mod.main(tool, argv)
        rc = 0 if rc is None else int(rc)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        raise
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        rc = 141
    except KeyboardInterrupt:
        rc = 130
    finally:
        journal(tool, argv, rc)
    return rc


def journal(tool, argv, rc):
    """One line per finished tool call, `EXIT TOOL ARGS`, in /var/log/labnode/commands.log: what the host
    really ran, for tests that count (one init, one join) or prove that nothing changed."""
    if tool.endswith("-daemon"):
        return
    try:
        os.makedirs("/var/log/labnode", exist_ok=True)
        with open("/var/log/labnode/commands.log", "a") as f:
            f.write("%s %s %s\n" % (rc, tool, " ".join(argv)[:300]))
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
