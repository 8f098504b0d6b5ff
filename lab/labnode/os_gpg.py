"""gpg: --dearmor (what the Kubernetes install guide uses), --show-keys/--list-packets minimal."""
import os
import sys

from labnode import assets


def main(tool, argv):
    dearmor = False
    output = None
    yes = False
    batch = False
    show = False
    files = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--dearmor", "--dearmour"):
            dearmor = True
        elif a in ("-o", "--output"):
            if i + 1 >= len(argv):
                sys.stderr.write("gpg: option \"%s\" requires an argument\n" % a)
                return 2
            output = argv[i + 1]
            i += 1
        elif a.startswith("--output="):
            output = a.split("=", 1)[1]
        elif a == "--yes":
            yes = True
        elif a == "--batch":
            batch = True
        elif a in ("--show-keys", "--import-options", "--with-fingerprint", "--with-colons", "--no-tty",
                   "-q", "--quiet", "--no-default-keyring", "--keyring", "--homedir", "--list-packets"):
            if a in ("--show-keys", "--list-packets"):
                show = True
            if a in ("--keyring", "--homedir", "--import-options"):
                i += 1
        elif a.startswith("-") and a != "-":
            sys.stderr.write("gpg: invalid option \"%s\"\n" % a)
            return 2
        else:
            files.append(a)
        i += 1
    if len(files) > 1:
        sys.stderr.write("usage: gpg [options] --dearmor [file]\n")
        return 2
    src = files[0] if files else "-"
    try:
        data = sys.stdin.buffer.read() if src == "-" else open(src, "rb").read()
    except OSError as e:
        sys.stderr.write("gpg: can't open '%s': %s\n" % (src, e.strerror))
        return 2
    if show:
        binary = assets.dearmor(data) if b"-----BEGIN PGP" in data[:200] else data
        if not binary or binary[:1] not in (b"\x99", b"\x98", b"\xc6"):
            sys.stderr.write("gpg: no valid OpenPGP data found.\n")
            return 2
        fp = assets.K8S_KEY_FINGERPRINT if binary == assets.k8s_key_binary() else "0" * 40
        sys.stdout.write("pub   rsa2048 2022-08-24 [SC] [expires: 2027-08-23]\n      %s\n"
                         "uid                      isv:kubernetes OBS Project <isv:kubernetes@build.opensuse.org>\n\n"
                         % fp)
        return 0
    if not dearmor:
        sys.stderr.write("gpg: this lab's gpg only supports --dearmor and --show-keys\n")
        return 2
    binary = assets.dearmor(data)
    if binary is None:
        sys.stderr.write("gpg: no valid OpenPGP data found.\n")
        return 2
    if output and output != "-":
        if os.path.exists(output) and not yes:
            if batch:
                sys.stderr.write("gpg: dearmoring failed: File exists\n")
            else:
                sys.stderr.write("File '%s' exists. Overwrite? (y/N) gpg: signal Interrupt caught ... exiting\n"
                                 "gpg: Sorry, no terminal at all requested - can't get input\n" % output)
            return 2
        try:
            with open(output, "wb") as f:
                f.write(binary)
        except OSError as e:
            sys.stderr.write("gpg: can't create '%s': %s\ngpg: dearmoring failed: %s\n"
                             % (output, e.strerror, e.strerror))
            return 2
    else:
        sys.stdout.buffer.write(binary)
    return 0
