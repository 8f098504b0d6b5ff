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
    try:
        rc = mod.main(tool, argv)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 141
    except KeyboardInterrupt:
        return 130
    return 0 if rc is None else int(rc)


if __name__ == "__main__":
    sys.exit(main())
