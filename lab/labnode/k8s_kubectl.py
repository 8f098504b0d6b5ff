"""Simulated kubectl: get, apply (server-side or client-side), delete, label, taint, cordon, uncordon, drain,
wait, version, cluster-info. Talks to the lab API server named by --kubeconfig / $KUBECONFIG / ~/.kube/config."""
import json
import os
import re
import subprocess
import sys
import time

import yaml

from . import common
from . import k8s_client as C
from . import k8s_store as S


class Usage(Exception):
    pass


def err(msg, code=1):
    common.fail(msg, code)


# ------------------------------------------------------------------ argument parsing (kubectl style)
BOOL_FLAGS = {"--all-namespaces", "-A", "--server-side", "--force-conflicts", "--overwrite", "--ignore-not-found",
              "--ignore-daemonsets", "--delete-emptydir-data", "--delete-local-data", "--force", "--all",
              "--no-headers", "--client", "--wait", "--dry-run", "--disable-eviction", "--short",
              "--show-labels", "--watch", "-w", "--recursive", "-R", "--validate", "--show-managed-fields"}


def parse(argv):
    """(positionals, flags) where flags maps '--name' -> value (list for -f)."""
    pos, flags = [], {"-f": []}
    i = 0
    alias = {"--filename": "-f", "--namespace": "-n", "--output": "-o", "--selector": "-l",
             "--all-namespaces": "-A"}
    while i < len(argv):
        a = argv[i]
        if a == "--":
            pos += argv[i + 1:]
            break
        if a.startswith("-") and a != "-":
            name, eq, val = a.partition("=")
            name = alias.get(name, name)
            if name in BOOL_FLAGS or name == "-A":
                flags[name] = (val.lower() != "false") if eq else True
            else:
                if not eq:
                    if len(name) > 2 and not name.startswith("--"):      # -nkube-system, -ojson
                        name, val = name[:2], name[2:]
                    else:
                        i += 1
                        if i >= len(argv):
                            raise Usage("error: flag needs an argument: %s" % a)
                        val = argv[i]
                if name == "-f":
                    flags["-f"].append(val)
                else:
                    flags[name] = val
        else:
            pos.append(a)
        i += 1
    return pos, flags


def duration(s, default):
    if s is None:
        return default
    m = re.match(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$", str(s))
    if not m:
        total = 0.0
        for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", str(s)):
            total += float(n) * {"h": 3600, "m": 60, "s": 1}[u]
        if total:
            return total
        raise Usage('error: invalid argument "%s" for "--timeout" flag: time: invalid duration "%s"' % (s, s))
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


# ------------------------------------------------------------------ output
def age(obj):
    t = obj.get("metadata", {}).get("creationTimestamp")
    if not t:
        return "<unknown>"
    secs = max(0, int(common.now() - _utc(t)))
    if secs < 120:
        return "%ds" % secs
    if secs < 3600 * 3:
        return "%dm" % (secs // 60)
    if secs < 86400 * 2:
        return "%dh" % (secs // 3600)
    return "%dd" % (secs // 86400)


def _utc(t):
    import calendar
    return calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))


def table(rows, no_headers=False):
    if no_headers:
        rows = rows[1:]
    if not rows:
        return ""
    w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "".join("   ".join(str(r[i]).ljust(w[i]) for i in range(len(r))).rstrip() + "\n" for r in rows)


def node_status(n):
    ready = next((c for c in n["status"]["conditions"] if c["type"] == "Ready"), {})
    s = "Ready" if ready.get("status") == "True" else "NotReady"
    if n["spec"].get("unschedulable"):
        s += ",SchedulingDisabled"
    return s


def node_roles(n):
    roles = sorted(k.split("/", 1)[1] for k in n["metadata"]["labels"] if k.startswith("node-role.kubernetes.io/"))
    return ",".join(roles) or "<none>"


def pod_status(p):
    cs = p["status"].get("containerStatuses") or []
    for c in cs:
        w = (c.get("state") or {}).get("waiting")
        if w and p["status"]["phase"] == "Running":
            return w["reason"]
    return p["status"]["phase"]


def render(res, flags, single):
    items = res["items"]
    if not flags.get("--show-managed-fields"):
        # like kubectl: managedFields only on request
        items = [dict(i, metadata={k: v for k, v in i.get("metadata", {}).items() if k != "managedFields"})
                 for i in items]
    out = flags.get("-o")
    kind = res["kind"]
    if out == "json":
        if single:
            return json.dumps(items[0], indent=4) + "\n"
        return json.dumps({"apiVersion": "v1", "items": items, "kind": "List",
                           "metadata": {"resourceVersion": ""}}, indent=4) + "\n"
    if out == "yaml":
        doc = items[0] if single else {"apiVersion": "v1", "items": items, "kind": "List",
                                       "metadata": {"resourceVersion": ""}}
        return yaml.safe_dump(doc, default_flow_style=False)
    if out == "name":
        return "".join("%s/%s\n" % (kind.lower() + ("." + res["group"] if res["group"] else ""),
                                    i["metadata"]["name"]) for i in items)
    if out and out.startswith(("jsonpath=", "jsonpath-as-json=")):
        return jsonpath(out.split("=", 1)[1], items[0] if single else {"items": items})
    if out and out.startswith("custom-columns="):
        cols = [c.split(":", 1) for c in out.split("=", 1)[1].split(",")]
        rows = [[c[0] for c in cols]]
        for i in items:
            rows.append([jsonpath("{" + (c[1] if len(c) > 1 else "") + "}", i) or "<none>" for c in cols])
        return table(rows, flags.get("--no-headers"))
    if out not in (None, "wide"):
        raise Usage("error: unable to match a printer suitable for the output format \"%s\", allowed formats are: "
                    "custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,"
                    "jsonpath-file,name,template,templatefile,wide,yaml" % out)
    wide = out == "wide"
    allns = flags.get("-A") and res["namespaced"]
    nh = flags.get("--no-headers")
    if kind == "Node":
        hdr = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        if wide:
            hdr += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
        rows = [hdr]
        for n in items:
            r = [n["metadata"]["name"], node_status(n), node_roles(n), age(n), n["status"]["nodeInfo"]["kubeletVersion"]]
            if wide:
                ni = n["status"]["nodeInfo"]
                r += [n["status"]["addresses"][0]["address"], "<none>", ni["osImage"], ni["kernelVersion"],
                      ni["containerRuntimeVersion"]]
            rows.append(r)
        return table(rows, nh)
    if kind == "Pod":
        hdr = (["NAMESPACE"] if allns else []) + ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        if wide:
            hdr += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
        rows = [hdr]
        for p in items:
            cs = p["status"].get("containerStatuses") or []
            r = ([p["metadata"]["namespace"]] if allns else []) + [
                p["metadata"]["name"], "%d/%d" % (sum(1 for c in cs if c.get("ready")), len(cs)), pod_status(p),
                str(sum(c.get("restartCount", 0) for c in cs)), age(p)]
            if wide:
                r += [p["status"].get("hostIP") or "<none>", p["spec"].get("nodeName") or "<none>", "<none>", "<none>"]
            rows.append(r)
        return table(rows, nh)
    rows = [(["NAMESPACE"] if allns else []) + ["NAME", "AGE"]]
    for o in items:
        rows.append(([o["metadata"].get("namespace", "")] if allns else []) + [o["metadata"]["name"], age(o)])
    return table(rows, nh)


def jsonpath(expr, data):
    """Enough of kubectl's jsonpath for `{.items[*].metadata.name}` and `{.status.x}` style queries."""
    out = []
    for m in re.finditer(r"\{([^}]*)\}|([^{]+)", expr):
        if m.group(2):
            out.append(m.group(2).replace("\\n", "\n"))
            continue
        path = m.group(1).strip()
        vals = [data]
        for part in re.findall(r"\.([^.\[]+)|\[([^\]]*)\]", path):
            key, idx = part
            nxt = []
            for v in vals:
                if key:
                    if isinstance(v, dict) and key in v:
                        nxt.append(v[key])
                elif idx == "*":
                    nxt.extend(v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else [])
                elif idx.startswith("?"):
                    fm = re.match(r"\?\(@\.(\w+)==[\"']([^\"']*)[\"']\)", idx)
                    if fm and isinstance(v, list):
                        nxt.extend(x for x in v if isinstance(x, dict) and str(x.get(fm.group(1))) == fm.group(2))
                else:
                    try:
                        nxt.append(v[int(idx)])
                    except (ValueError, IndexError, KeyError, TypeError):
                        pass
            vals = nxt
        out.append(" ".join(json.dumps(v) if isinstance(v, (dict, list)) else str(v).lower()
                            if isinstance(v, bool) else str(v) for v in vals))
    return "".join(out)


# ------------------------------------------------------------------ manifests
def read_source(src):
    if src == "-":
        return sys.stdin.read(), "STDIN"
    if src.startswith(("http://", "https://")):
        p = subprocess.run(["curl", "-fsSL", src], capture_output=True, text=True)
        if p.returncode != 0:
            err('error: unable to read URL "%s", server reported %s' % (src, p.stderr.strip() or "an error"))
        return p.stdout, src
    if os.path.isdir(src):
        texts = []
        for n in sorted(os.listdir(src)):
            if n.endswith((".yaml", ".yml", ".json")):
                with open(os.path.join(src, n)) as f:
                    texts.append(f.read())
        return "\n---\n".join(texts), src
    try:
        with open(src) as f:
            return f.read(), src
    except FileNotFoundError:
        err('error: the path "%s" does not exist' % src)
    except IsADirectoryError:
        err('error: the path "%s" is a directory' % src)


def load_docs(sources, need_name=True):
    if not sources:
        err("error: must specify one of -f and -k")
    docs = []
    for src in sources:
        text, name = read_source(src)
        try:
            raw = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = " line %d:" % (mark.line + 1) if mark else ""
            err("error: error parsing %s: error converting YAML to JSON: yaml:%s %s"
                % (name, line, getattr(e, "problem", None) or str(e).splitlines()[0]))
        for d in raw:
            if d is None:
                continue
            if not isinstance(d, dict):
                err("error: error parsing %s: error converting YAML to JSON: yaml: cannot unmarshal %s into an object"
                    % (name, type(d).__name__))
            if d.get("kind") == "List" and isinstance(d.get("items"), list):
                sub = d["items"]
            else:
                sub = [d]
            for o in sub:
                missing = [f for f in ("apiVersion", "kind") if not o.get(f)]
                if missing:
                    err('error: error validating "%s": error validating data: [%s]; if you choose to ignore these '
                        'errors, turn validation off with --validate=false'
                        % (name, ", ".join("%s not set" % f for f in missing)))
                md = o.get("metadata")
                if need_name and (not isinstance(md, dict) or not md.get("name")):
                    err('error: error when retrieving current configuration of:\nResource: "%s", GroupVersionKind: '
                        '"%s, Kind=%s"\nName: "", Namespace: "%s"\nfrom server for: "%s": resource name may not be '
                        'empty' % (o["kind"].lower() + "s", o["apiVersion"], o["kind"],
                                   (md or {}).get("namespace", "default") if isinstance(md, dict) else "default", name))
                docs.append((o, name))
    return docs


# ------------------------------------------------------------------ commands
def kube(flags):
    try:
        return C.Kube(flags.get("--kubeconfig"), server=flags.get("--server") or flags.get("-s"))
    except C.ClientError as e:
        err(e.message)


def call(k, op, args):
    try:
        return k.call(op, args)
    except C.ClientError as e:
        err(e.message)


def cmd_get(pos, flags):
    if flags.get("--raw"):
        k = kube(flags)
        try:
            code, body = C.get_raw(k.server, flags["--raw"], ca=k.ca, headers=C.auth_headers(k.user))
        except C.ClientError as e:
            err(e.message)
        if code >= 400:
            err("Error from server (%s): %s" % ("NotFound" if code == 404 else "InternalError", body.strip()))
        common.out(body)
        return 0
    if not pos:
        err("You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of "
            "supported resources.\n\nerror: Required resource not specified.")
    resources = pos[0].split(",")
    names = pos[1:]
    if "/" in pos[0]:
        resources, names = [pos[0].split("/", 1)[0]], [pos[0].split("/", 1)[1]] + pos[1:]
    k = kube(flags)
    sel = flags.get("-l")
    outs, missing = [], []
    for r in resources:
        for name in (names or [None]):
            try:
                res = k.call("get", {"resource": r, "namespace": flags.get("-n"), "name": name,
                                     "allNamespaces": bool(flags.get("-A")), "selector": sel})
            except C.ClientError as e:
                if e.reason == "NotFound" and name is not None and flags.get("--ignore-not-found"):
                    continue
                if e.reason == "NotFound" and name is not None:
                    missing.append(e.message)
                    continue
                err(e.message)
            outs.append((res, name is not None and len(names) == 1))
    if len(outs) == 1:
        res, single = outs[0]
        if not res["items"] and not single:
            if flags.get("-o") in ("json", "yaml"):
                common.out(render(res, flags, False))
            else:
                ns = "" if not res["namespaced"] or flags.get("-A") else " in %s namespace" % (flags.get("-n") or "default")
                sys.stderr.write("No resources found%s.\n" % ns)
        else:
            common.out(render(res, flags, single))
    elif outs:
        merged = {"kind": outs[0][0]["kind"], "group": outs[0][0]["group"], "namespaced": outs[0][0]["namespaced"],
                  "items": sum((r["items"] for r, _ in outs), [])}
        common.out(render(merged, flags, False))
    if missing:
        err("\n".join(missing))
    return 0


def cmd_create(pos, flags):
    if flags["-f"]:
        return cmd_apply(pos, flags, create=True)
    if len(pos) >= 2 and pos[0] in ("namespace", "ns"):
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": pos[1]}}
        try:
            kube(flags).call("apply", {"docs": [obj], "source": "STDIN", "create": True})
        except C.ClientError as e:
            err(e.message.replace('error when creating "STDIN": ', ""))
        common.out("namespace/%s created\n" % pos[1])
        return 0
    err("error: must specify one of -f and -k" if not pos else
        'error: lab kubectl create supports -f FILE and "namespace NAME", not "%s"' % pos[0])


def cmd_rollout(pos, flags):
    if not pos or pos[0] != "status" or len(pos) < 2:
        err("error: lab kubectl rollout supports: rollout status KIND/NAME")
    ref = pos[1] if "/" in pos[1] else "%s/%s" % (pos[1], pos[2] if len(pos) > 2 else "")
    kind, name = ref.split("/", 1)
    k = kube(flags)
    timeout = duration(flags.get("--timeout"), 0) or 1e9
    deadline = time.time() + timeout
    while True:
        res = call(k, "get", {"resource": kind, "namespace": flags.get("-n"), "name": name})
        o = res["items"][0]
        st = o.get("status") or {}
        if res["kind"] == "DaemonSet":
            want, have = st.get("desiredNumberScheduled", 0), st.get("numberReady", 0)
            if have >= want:
                common.out('daemon set "%s" successfully rolled out\n' % name)
                return 0
            msg = 'Waiting for daemon set "%s" rollout to finish: %d of %d updated pods are available...' % (
                name, have, want)
        elif res["kind"] in ("Deployment", "StatefulSet"):
            want, have = int((o.get("spec") or {}).get("replicas", 1)), st.get("readyReplicas", 0)
            if have >= want:
                if res["kind"] == "Deployment":
                    common.out('deployment "%s" successfully rolled out\n' % name)
                else:
                    common.out("statefulset rolling update complete %d pods at revision %s-%s...\n"
                               % (want, name, S.short_hash(name, n=10)))
                return 0
            msg = 'Waiting for deployment "%s" rollout to finish: %d of %d updated replicas are available...' % (
                name, have, want)
        else:
            err('error: no status viewer has been implemented for %s' % res["kind"])
        if time.time() >= deadline:
            common.out(msg + "\n")
            err("error: timed out waiting for the condition")
        time.sleep(0.5)


def cmd_apply(pos, flags, create=False):
    docs = load_docs(flags["-f"])
    k = kube(flags)
    ss = flags.get("--server-side")
    dry = flags.get("--dry-run") not in (None, False, "none")
    rc = 0
    for obj, src in docs:
        if not ss and not create:
            # client-side apply keeps what was applied in an annotation (a three-way merge needs it next time)
            last = json.loads(json.dumps(obj))
            last.setdefault("metadata", {}).setdefault("annotations", {})
            last["metadata"]["annotations"].pop(S.LAST_APPLIED, None)
            obj.setdefault("metadata", {}).setdefault("annotations", {})[S.LAST_APPLIED] = \
                json.dumps(last, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            res = k.call("apply", {"docs": [obj], "source": src, "dryRun": dry, "create": create,
                                   "namespace": flags.get("-n"), "serverSide": bool(ss),
                                   "force": bool(flags.get("--force-conflicts")),
                                   "manager": "kubectl" if ss else "kubectl-client-side-apply"})
        except C.ClientError as e:
            sys.stderr.write(e.message + "\n")
            rc = 1
            continue
        for r in res:
            if not ss and not create and r.get("lastApplied") is False:
                sys.stderr.write("Warning: resource %s/%s is missing the %s annotation which is required by kubectl "
                                 "apply. kubectl apply should only be used on resources created declaratively by "
                                 "either kubectl create --save-config or kubectl apply. The missing annotation will "
                                 "be patched automatically.\n" % (r.get("resource", ""), r["ref"].split("/", 1)[1],
                                                                   S.LAST_APPLIED))
            status = "serverside-applied" if ss else ("created" if create else r["status"])
            if dry:
                status += " (server dry run)" if ss else " (dry run)"
            common.out("%s %s\n" % (r["ref"], status))
    return rc


def cmd_delete(pos, flags):
    k = kube(flags)
    ign = flags.get("--ignore-not-found")
    items = []
    if flags["-f"]:
        for obj, src in load_docs(flags["-f"]):
            items.append({"kind": obj["kind"], "apiVersion": obj["apiVersion"],
                          "namespace": obj["metadata"].get("namespace") or flags.get("-n") or "default",
                          "name": obj["metadata"]["name"]})
    else:
        if not pos:
            err("error: You must provide one or more resources by argument or filename.\nExample resource "
                "specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   "
                "'<resource>'")
        if "/" in pos[0]:
            pairs = [p.split("/", 1) for p in pos]
        else:
            if len(pos) < 2:
                err("error: resource(s) were provided, but no name was specified")
            pairs = [(pos[0], n) for n in pos[1:]]
        for r, n in pairs:
            items.append({"kind": r, "namespace": flags.get("-n"), "name": n})
    rc = 0
    gone_ns = set()
    for it in items:
        if it.get("apiVersion") and it.get("namespace") in gone_ns:
            # deleting a namespace takes its objects with it (real kubectl still reports them as deleted)
            g = it["apiVersion"].split("/")[0] if "/" in it["apiVersion"] else ""
            common.out('%s "%s" deleted\n' % (it["kind"].lower() + ("." + g if g else ""), it["name"]))
            continue
        if it["kind"] in ("Namespace", "namespace", "namespaces", "ns"):
            gone_ns.add(it["name"])
        try:
            res = k.call("delete", {"items": [it], "ignoreNotFound": ign})
        except C.ClientError as e:
            sys.stderr.write(e.message + "\n")
            rc = 1
            continue
        for line in res:
            common.out(line + "\n")
    return rc


def node_args(pos, cmd):
    if cmd in ("cordon", "drain"):       # these take node names directly
        pos = [x.split("/", 1)[1] if x.startswith(("node/", "nodes/")) else x for x in pos]
        if not pos:
            err("error: USAGE: %s NODE [flags]\nSee 'kubectl %s -h' for help and examples" % (cmd, cmd))
        return pos
    if pos and pos[0] in ("node", "nodes", "no"):
        pos = pos[1:]
    elif pos and "/" in pos[0] and pos[0].split("/")[0] in ("node", "nodes", "no"):
        pos = [pos[0].split("/", 1)[1]] + pos[1:]
    elif pos:
        err('error: lab kubectl %s only supports nodes, not "%s"' % (cmd, pos[0]))
    if not pos:
        err("error: resource(s) were provided, but no name was specified")
    return pos


def cmd_label(pos, flags):
    pos = node_args(pos, "label")
    name, specs = pos[0], pos[1:]
    if not specs:
        err("error: at least one label update is required")
    labels = {}
    for s in specs:
        if s.endswith("-") and "=" not in s:
            labels[s[:-1]] = None
        elif "=" in s:
            kk, v = s.split("=", 1)
            labels[kk] = v
        else:
            err("error: at least one label update is required")
    common.out(call(kube(flags), "label", {"name": name, "labels": labels,
                                           "overwrite": bool(flags.get("--overwrite"))}) + "\n")
    return 0


def cmd_taint(pos, flags):
    pos = node_args(pos, "taint")
    name, specs = pos[0], pos[1:]
    if not specs:
        err("error: at least one taint update is required")
    taints = []
    for s in specs:
        remove = s.endswith("-")
        s2 = s[:-1] if remove else s
        kv, _, effect = s2.partition(":")
        kk, _, v = kv.partition("=")
        if not remove and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            err('error: invalid taint spec: %s, unsupported taint effect' % s if effect else
                'error: invalid taint spec: %s' % s)
        taints.append({"key": kk, "value": v, "effect": effect, "remove": remove})
    common.out(call(kube(flags), "taint", {"name": name, "taints": taints,
                                           "overwrite": bool(flags.get("--overwrite"))}) + "\n")
    return 0


def cmd_cordon(pos, flags, on):
    pos = node_args(pos, "cordon")
    k = kube(flags)
    for n in pos:
        common.out(call(k, "cordon", {"name": n, "on": on}) + "\n")
    return 0


def cmd_drain(pos, flags):
    pos = node_args(pos, "drain")
    k = kube(flags)
    try:
        out = k.call("drain", {"name": pos[0], "ignoreDaemonsets": bool(flags.get("--ignore-daemonsets")),
                               "deleteEmptydirData": bool(flags.get("--delete-emptydir-data") or
                                                          flags.get("--delete-local-data")),
                               "force": bool(flags.get("--force"))})
    except C.ClientError as e:
        msg = e.message
        if msg.startswith("node/"):
            first, rest = msg.split("\n", 1)
            common.out(first + "\n")
            msg = rest
        err(msg)
    common.out(out + "\n")
    return 0


def cmd_wait(pos, flags):
    cond = flags.get("--for")
    if not cond:
        err("error: --for must be specified")
    timeout = duration(flags.get("--timeout"), 30.0)
    if not pos:
        err("error: resource(s) were provided, but no name was specified")
    resource = pos[0]
    names = pos[1:]
    if "/" in resource:
        resource, n = resource.split("/", 1)
        names = [n] + names
    if not names and not flags.get("--all") and not flags.get("-l"):
        err("error: resource(s) were provided, but no name was specified")
    k = kube(flags)
    sel = flags.get("-l")
    deadline = time.time() + timeout
    want_delete = cond == "delete"
    m = re.match(r"^condition=([^=]+)(?:=(.*))?$", cond or "")
    jp = re.match(r"^jsonpath=(\{[^}]*\}|[^=]+)(?:=(.*))?$", cond or "")
    if jp:
        expr = jp.group(1) if jp.group(1).startswith("{") else "{" + jp.group(1) + "}"
        jval = jp.group(2)
    elif not want_delete and not m:
        err("error: unrecognized condition: \"%s\"" % cond)
    ctype = m.group(1).lower() if m else None
    cval = (m.group(2) or "true").lower() if m else None
    while True:
        try:
            res = k.call("get", {"resource": resource, "namespace": flags.get("-n"),
                                 "allNamespaces": bool(flags.get("-A")), "selector": sel})
        except C.ClientError as e:
            err(e.message)
        items = res["items"]
        if names:
            have = {i["metadata"]["name"] for i in items}
            if want_delete and not (set(names) & have):
                for n in names:
                    common.out("%s/%s condition met\n" % (kind_ref(res), n))
                return 0
            miss = [n for n in names if n not in have]
            if miss and not want_delete:
                err('Error from server (NotFound): %s "%s" not found' % (S.plural(res["kind"]), miss[0]))
            items = [i for i in items if i["metadata"]["name"] in names]
        if not items and not want_delete:
            err("error: no matching resources found")
        if jp:
            pending = [i for i in items
                       if (jsonpath(expr, i) != jval if jval is not None else not jsonpath(expr, i))]
        else:
            pending = [i for i in items if want_delete or not condition(i, ctype, cval)]
        if not pending:
            for i in items:
                common.out("%s/%s condition met\n" % (kind_ref(res), i["metadata"]["name"]))
            return 0
        if time.time() >= deadline:
            for i in pending:
                sys.stderr.write("error: timed out waiting for the condition on %s/%s\n"
                                 % (S.plural(res["kind"]), i["metadata"]["name"]))
            return 1
        time.sleep(0.25)


def kind_ref(res):
    """`deployment.apps`, `pod`: how kubectl names a kind in its messages."""
    return res["kind"].lower() + ("." + res["group"] if res.get("group") else "")


def condition(obj, ctype, cval):
    conds = (obj.get("status") or {}).get("conditions") or []
    for c in conds:
        if c.get("type", "").lower() == ctype:
            return str(c.get("status", "")).lower() == cval
    return False


def cmd_version(pos, flags):
    v = "v" + (common.package_version("kubectl") or "1.34.1").split("-")[0]
    client = {"major": v[1:].split(".")[0], "minor": v[1:].split(".")[1], "gitVersion": v,
              "platform": "linux/amd64"}
    server = None
    if not flags.get("--client"):
        try:
            server = C.Kube(flags.get("--kubeconfig")).call("version", {})
        except C.ClientError as e:
            server = e
    if flags.get("-o") == "json":
        d = {"clientVersion": client, "kustomizeVersion": "v5.7.1"}
        if isinstance(server, dict):
            d["serverVersion"] = server
        common.out(json.dumps(d, indent=2) + "\n")
    else:
        common.out("Client Version: %s\nKustomize Version: v5.7.1\n" % v)
        if isinstance(server, dict):
            common.out("Server Version: %s\n" % server["gitVersion"])
    if isinstance(server, C.ClientError):
        err(server.message)
    return 0


def main(tool, argv):
    try:
        pos, flags = parse(argv)
    except Usage as e:
        err(str(e))
    if not pos:
        common.out("kubectl controls the Kubernetes cluster manager.\n")
        return 0
    cmd, rest = pos[0], pos[1:]
    try:
        if cmd == "get":
            return cmd_get(rest, flags)
        if cmd == "apply":
            return cmd_apply(rest, flags)
        if cmd == "create":
            return cmd_create(rest, flags)
        if cmd == "rollout":
            return cmd_rollout(rest, flags)
        if cmd == "delete":
            return cmd_delete(rest, flags)
        if cmd == "label":
            return cmd_label(rest, flags)
        if cmd == "taint":
            return cmd_taint(rest, flags)
        if cmd == "cordon":
            return cmd_cordon(rest, flags, True)
        if cmd == "uncordon":
            return cmd_cordon(rest, flags, False)
        if cmd == "drain":
            return cmd_drain(rest, flags)
        if cmd == "wait":
            return cmd_wait(rest, flags)
        if cmd == "version":
            return cmd_version(rest, flags)
        if cmd == "cluster-info":
            k = kube(flags)
            call(k, "version", {})
            common.out("Kubernetes control plane is running at %s\nCoreDNS is running at %s/api/v1/namespaces/"
                       "kube-system/services/kube-dns:dns/proxy\n\nTo further debug and diagnose cluster problems, "
                       "use 'kubectl cluster-info dump'.\n" % (k.server, k.server))
            return 0
    except Usage as e:
        err(str(e))
    err('error: unknown command "%s" for "kubectl"\n\nDid you mean this?\n\tget\n\tapply' % cmd if cmd == "gte" else
        'error: unknown command "%s" for "kubectl"' % cmd)
