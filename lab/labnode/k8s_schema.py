"""What the real API server checks and fills in on the objects a client writes, for the kinds the lab serves.

validate(): the field validation of the real server for the fields bootstrap and its users write (names,
labels, selectors, containers, ports, services, RBAC, PDBs, config keys), in its wording, plus strict field
validation (unknown fields) for the kinds with a schema here. default(): the server's defaulting (strategy,
update strategies, container pull policy, service cluster IP and node ports, ...), so that what a client reads
back looks like what a real server returns.

Errors are (field path, cause reason, message) triples; the REST layer turns them into 422 Invalid Status
objects (`Deployment.apps "x" is invalid: spec.selector: Required value`)."""
import base64
import ipaddress
import json
import re

ANY = None

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QNAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
IANA_SVC = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
MSG_1123 = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
            "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
MSG_1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
            "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
            "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
MSG_QNAME = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
MSG_LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
MSG_CONFIG_KEY = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
MSG_ENV = ("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and "
           "must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
           "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")
MSG_QUANTITY = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def _q(v):
    """How Go's %q / %v render a value in field errors."""
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# ------------------------------------------------------------------ schemas (field names, for strict validation)
def _o(*names, **nested):
    d = {n: ANY for n in names}
    d.update(nested)
    return d


META = _o("name", "generateName", "namespace", "labels", "annotations", "ownerReferences", "finalizers", "uid",
          "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
          "managedFields", "selfLink")
LS = _o("matchLabels", matchExpressions=[_o("key", "operator", "values")])
PROBE = _o("exec", "tcpSocket", "grpc", "initialDelaySeconds", "timeoutSeconds", "periodSeconds",
           "successThreshold", "failureThreshold", "terminationGracePeriodSeconds",
           httpGet=_o("path", "port", "host", "scheme", "httpHeaders"))
CONTAINER = _o("name", "image", "command", "args", "workingDir", "envFrom", "resizePolicy", "restartPolicy",
               "volumeDevices", "lifecycle", "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy",
               "securityContext", "stdin", "stdinOnce", "tty",
               ports=[_o("name", "containerPort", "hostPort", "protocol", "hostIP")],
               env=[_o("name", "value", "valueFrom")],
               resources=_o("limits", "requests", "claims"),
               volumeMounts=[_o("name", "readOnly", "mountPath", "subPath", "mountPropagation", "subPathExpr",
                                "recursiveReadOnly")],
               livenessProbe=PROBE, readinessProbe=PROBE, startupProbe=PROBE)
POD_SPEC = _o("volumes", "ephemeralContainers", "restartPolicy", "terminationGracePeriodSeconds",
              "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount",
              "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC",
              "shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity",
              "schedulerName", "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates",
              "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead", "topologySpreadConstraints",
              "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates", "resourceClaims", "resources",
              containers=[CONTAINER], initContainers=[CONTAINER],
              tolerations=[_o("key", "operator", "value", "effect", "tolerationSeconds")])
TEMPLATE = _o(metadata=META, spec=POD_SPEC)
TOP = ("apiVersion", "kind")
NP_PEER = _o(podSelector=LS, namespaceSelector=LS, ipBlock=_o("cidr", "except"))
NP_PORT = _o("protocol", "port", "endPort")
SCHEMAS = {
    "Deployment": _o(*TOP, "status", metadata=META, spec=_o(
        "replicas", "minReadySeconds", "revisionHistoryLimit", "paused", "progressDeadlineSeconds",
        selector=LS, template=TEMPLATE, strategy=_o("type", rollingUpdate=_o("maxUnavailable", "maxSurge")))),
    "DaemonSet": _o(*TOP, "status", metadata=META, spec=_o(
        "minReadySeconds", "revisionHistoryLimit", selector=LS, template=TEMPLATE,
        updateStrategy=_o("type", rollingUpdate=_o("maxUnavailable", "maxSurge")))),
    "StatefulSet": _o(*TOP, "status", metadata=META, spec=_o(
        "replicas", "volumeClaimTemplates", "serviceName", "podManagementPolicy", "revisionHistoryLimit",
        "minReadySeconds", "persistentVolumeClaimRetentionPolicy", "ordinals", selector=LS, template=TEMPLATE,
        updateStrategy=_o("type", rollingUpdate=_o("partition", "maxUnavailable")))),
    "Pod": _o(*TOP, "status", metadata=META, spec=POD_SPEC),
    "Service": _o(*TOP, "status", metadata=META, spec=_o(
        "selector", "clusterIP", "clusterIPs", "type", "externalIPs", "sessionAffinity", "loadBalancerIP",
        "loadBalancerSourceRanges", "externalName", "externalTrafficPolicy", "healthCheckNodePort",
        "publishNotReadyAddresses", "sessionAffinityConfig", "ipFamilies", "ipFamilyPolicy",
        "allocateLoadBalancerNodePorts", "loadBalancerClass", "internalTrafficPolicy", "trafficDistribution",
        ports=[_o("name", "protocol", "appProtocol", "port", "targetPort", "nodePort")])),
    "ConfigMap": _o(*TOP, "data", "binaryData", "immutable", metadata=META),
    "Secret": _o(*TOP, "data", "stringData", "type", "immutable", metadata=META),
    "Namespace": _o(*TOP, "status", metadata=META, spec=_o("finalizers")),
    "ServiceAccount": _o(*TOP, "secrets", "imagePullSecrets", "automountServiceAccountToken", metadata=META),
    "NetworkPolicy": _o(*TOP, metadata=META, spec=_o(
        "policyTypes", podSelector=LS, ingress=[_o(**{"from": [NP_PEER], "ports": [NP_PORT]})],
        egress=[_o(to=[NP_PEER], ports=[NP_PORT])])),
    "LimitRange": _o(*TOP, metadata=META, spec=_o(limits=[_o("type", "max", "min", "default", "defaultRequest",
                                                                "maxLimitRequestRatio")])),
    "Role": _o(*TOP, metadata=META, rules=[_o("verbs", "apiGroups", "resources", "resourceNames",
                                               "nonResourceURLs")]),
    "ClusterRole": _o(*TOP, "aggregationRule", metadata=META, rules=[_o("verbs", "apiGroups", "resources",
                                                                         "resourceNames", "nonResourceURLs")]),
    "RoleBinding": _o(*TOP, metadata=META, subjects=[_o("kind", "apiGroup", "name", "namespace")],
                      roleRef=_o("apiGroup", "kind", "name")),
    "ClusterRoleBinding": _o(*TOP, metadata=META, subjects=[_o("kind", "apiGroup", "name", "namespace")],
                             roleRef=_o("apiGroup", "kind", "name")),
    "PodDisruptionBudget": _o(*TOP, "status", metadata=META, spec=_o(
        "minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy", selector=LS)),
    "Lease": _o(*TOP, metadata=META, spec=_o("holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime",
                                             "leaseTransitions", "strategy", "preferredHolder")),
}


def unknown_fields(schema, obj, path=""):
    out = []
    if not isinstance(obj, dict) or not isinstance(schema, dict):
        return out
    for k, v in obj.items():
        p = path + "." + k if path else k
        if k not in schema:
            out.append(p)
            continue
        sub = schema[k]
        if isinstance(sub, list) and isinstance(v, list):
            for i, item in enumerate(v):
                out += unknown_fields(sub[0], item, "%s[%d]" % (p, i))
        elif isinstance(sub, dict):
            out += unknown_fields(sub, v, p)
    return out


# ------------------------------------------------------------------ validation
def _name_errors(kind, group, name):
    if kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        if name in (".", ".."):
            return ["may not be '%s'" % name]
        for c in ("/", "%"):
            if c in name:
                return ["may not contain '%s'" % c]
        return []
    if kind in ("Namespace",):
        return [MSG_1123] if not LABEL_1123.match(name) else (["must be no more than 63 characters"]
                                                               if len(name) > 63 else [])
    if kind == "Service":
        return [MSG_1035] if not LABEL_1035.match(name) else (["must be no more than 63 characters"]
                                                               if len(name) > 63 else [])
    if not SUBDOMAIN.match(name):
        return [MSG_SUBDOMAIN]
    if len(name) > 253:
        return ["must be no more than 253 characters"]
    return []


def _qualified_name_errors(key):
    errs = []
    prefix, _, name = key.rpartition("/")
    if "/" in key:
        if not prefix:
            errs.append("prefix part must be non-empty")
        elif not SUBDOMAIN.match(prefix) or len(prefix) > 253:
            errs.append("prefix part " + MSG_SUBDOMAIN)
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    elif not QNAME.match(name):
        errs.append(MSG_QNAME)
    if key.count("/") > 1:
        errs = ["a qualified name " + MSG_QNAME.split("name part ", 1)[1] + " with an optional DNS subdomain prefix "
                "and '/' (e.g. 'example.com/MyName')"]
    return errs


def _labels(path, labels, errs):
    if labels is None:
        return
    if not isinstance(labels, dict):
        errs.append((path, "FieldValueInvalid", "Invalid value: %s: must be a map" % _q(labels)))
        return
    for k, v in labels.items():
        for m in _qualified_name_errors(k):
            errs.append((path, "FieldValueInvalid", "Invalid value: %s: %s" % (_q(k), m)))
        if not isinstance(v, str):
            errs.append((path, "FieldValueInvalid", "Invalid value: %s: must be a string" % _q(v)))
        elif len(v) > 63:
            errs.append((path, "FieldValueInvalid", "Invalid value: %s: must be no more than 63 characters" % _q(v)))
        elif not LABEL_VALUE.match(v):
            errs.append((path, "FieldValueInvalid", "Invalid value: %s: %s" % (_q(v), MSG_LABEL_VALUE)))


def _selector(path, sel, errs, required=True):
    if sel is None:
        if required:
            errs.append((path, "FieldValueRequired", "Required value"))
        return
    if not isinstance(sel, dict):
        errs.append((path, "FieldValueInvalid", "Invalid value: must be an object"))
        return
    _labels(path + ".matchLabels", sel.get("matchLabels"), errs)
    for i, e in enumerate(sel.get("matchExpressions") or []):
        p = "%s.matchExpressions[%d]" % (path, i)
        op = e.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            errs.append((p + ".operator", "FieldValueNotSupported", 'Unsupported value: %s: supported values: "In", '
                         '"NotIn", "Exists", "DoesNotExist"' % _q(op)))
        elif op in ("In", "NotIn") and not e.get("values"):
            errs.append((p + ".values", "FieldValueRequired", "Required value: must be specified when `operator` "
                         "is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and e.get("values"):
            errs.append((p + ".values", "FieldValueForbidden", "Forbidden: may not be specified when `operator` is "
                         "'Exists' or 'DoesNotExist'"))


def _selector_matches(sel, labels):
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        op, k, vals = e.get("operator"), e.get("key"), e.get("values") or []
        if (op == "In" and labels.get(k) not in vals) or (op == "NotIn" and labels.get(k) in vals) or \
                (op == "Exists" and k not in labels) or (op == "DoesNotExist" and k in labels):
            return False
    return True


def parse_quantity(v):
    """A quantity as a float (cores, bytes), or None when it does not parse."""
    s = str(v)
    m = QUANTITY.match(s)
    if not m:
        return None
    num, suf = m.groups()
    try:
        n = float(num)
    except ValueError:
        return None
    mult = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
            "E": 1e18, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "Pi": 1024 ** 5,
            "Ei": 1024 ** 6}
    if suf in mult:
        return n * mult[suf]
    if suf[:1] in "eE":
        try:
            return n * 10 ** int(suf[1:] or "0")
        except ValueError:
            return None
    return None


def _int_field(path, v, errs, lo=None, hi=None, msg=None):
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int):
        errs.append((path, "FieldValueTypeInvalid", "Invalid value: %s: must be an integer" % _q(v)))
        return
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        errs.append((path, "FieldValueInvalid", "Invalid value: %d: %s" % (v, msg or (
            "must be greater than or equal to %d" % lo if hi is None else
            "must be between %d and %d, inclusive" % (lo, hi)))))


def _port_name(path, name, errs):
    if len(name) > 15:
        errs.append((path, "FieldValueInvalid", "Invalid value: %s: must be no more than 15 characters" % _q(name)))
    elif not IANA_SVC.match(name) or "--" in name:
        errs.append((path, "FieldValueInvalid", "Invalid value: %s: must contain only alpha-numeric characters "
                     "(a-z, 0-9), and hyphens (-)" % _q(name)))
    elif not re.search(r"[a-z]", name):
        errs.append((path, "FieldValueInvalid", "Invalid value: %s: must contain at least one letter (a-z)"
                     % _q(name)))


def _containers(path, cs, errs, volumes, required=True):
    if not cs:
        if required:
            errs.append((path, "FieldValueRequired", "Required value"))
        return
    seen = set()
    for i, c in enumerate(cs):
        p = "%s[%d]" % (path, i)
        if not isinstance(c, dict):
            errs.append((p, "FieldValueInvalid", "Invalid value: must be an object"))
            continue
        name = c.get("name")
        if not name:
            errs.append((p + ".name", "FieldValueRequired", "Required value"))
        elif not LABEL_1123.match(name) or len(name) > 63:
            errs.append((p + ".name", "FieldValueInvalid", "Invalid value: %s: %s" % (_q(name), MSG_1123)))
        elif name in seen:
            errs.append((p + ".name", "FieldValueDuplicate", "Duplicate value: %s" % _q(name)))
        seen.add(name)
        if not c.get("image") and path.endswith("containers") and "initContainers" not in path:
            errs.append((p + ".image", "FieldValueRequired", "Required value"))
        pol = c.get("imagePullPolicy")
        if pol is not None and pol not in ("Always", "IfNotPresent", "Never"):
            errs.append((p + ".imagePullPolicy", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"Always", "IfNotPresent", "Never"' % _q(pol)))
        port_names = set()
        for j, port in enumerate(c.get("ports") or []):
            pp = "%s.ports[%d]" % (p, j)
            _int_field(pp + ".containerPort", port.get("containerPort"), errs, 1, 65535)
            if port.get("containerPort") is None:
                errs.append((pp + ".containerPort", "FieldValueRequired", "Required value"))
            if port.get("hostPort") is not None:
                _int_field(pp + ".hostPort", port.get("hostPort"), errs, 1, 65535)
            if port.get("name"):
                _port_name(pp + ".name", port["name"], errs)
                if port["name"] in port_names:
                    errs.append((pp + ".name", "FieldValueDuplicate", "Duplicate value: %s" % _q(port["name"])))
                port_names.add(port["name"])
            proto = port.get("protocol")
            if proto is not None and proto not in ("TCP", "UDP", "SCTP"):
                errs.append((pp + ".protocol", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                             '"SCTP", "TCP", "UDP"' % _q(proto)))
        for j, e in enumerate(c.get("env") or []):
            n = e.get("name") if isinstance(e, dict) else None
            if not n:
                errs.append(("%s.env[%d].name" % (p, j), "FieldValueRequired", "Required value"))
            elif not ENV_NAME.match(n):
                errs.append(("%s.env[%d].name" % (p, j), "FieldValueInvalid", "Invalid value: %s: %s"
                             % (_q(n), MSG_ENV)))
        res = c.get("resources") or {}
        lims, reqs = res.get("limits") or {}, res.get("requests") or {}
        for part, d in (("limits", lims), ("requests", reqs)):
            for k, v in d.items():
                if parse_quantity(v) is None:
                    errs.append(("%s.resources.%s[%s]" % (p, part, k), "FieldValueInvalid",
                                 "Invalid value: %s: %s" % (_q(v), MSG_QUANTITY)))
        for k, v in reqs.items():
            if k in lims and parse_quantity(v) is not None and parse_quantity(lims[k]) is not None and \
                    parse_quantity(v) > parse_quantity(lims[k]):
                errs.append(("%s.resources.requests" % p, "FieldValueInvalid", "Invalid value: %s: must be less than "
                             "or equal to %s limit of %s" % (_q(str(v)), k, lims[k])))
        for j, m in enumerate(c.get("volumeMounts") or []):
            mp = "%s.volumeMounts[%d]" % (p, j)
            if not m.get("name"):
                errs.append((mp + ".name", "FieldValueRequired", "Required value"))
            elif m["name"] not in volumes:
                errs.append((mp + ".name", "FieldValueNotFound", "Not found: %s" % _q(m["name"])))
            if not m.get("mountPath"):
                errs.append((mp + ".mountPath", "FieldValueRequired", "Required value"))
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            pr = c.get(probe)
            if not isinstance(pr, dict):
                continue
            for h in ("httpGet", "tcpSocket"):
                port = (pr.get(h) or {}).get("port")
                if isinstance(port, str) and port not in port_names:
                    if not port.isdigit():
                        errs.append(("%s.%s.%s.port" % (p, probe, h), "FieldValueInvalid",
                                     "Invalid value: %s: must contain at least one letter or number (a-z, 0-9)"
                                     % _q(port) if not re.search(r"[a-z0-9]", port) else
                                     "Invalid value: %s: must be a named port of the container" % _q(port)))


def _pod_spec(path, spec, errs, restart_always=False):
    if not isinstance(spec, dict):
        errs.append((path, "FieldValueRequired", "Required value"))
        return
    volumes = set()
    for i, v in enumerate(spec.get("volumes") or []):
        n = v.get("name") if isinstance(v, dict) else None
        if not n:
            errs.append(("%s.volumes[%d].name" % (path, i), "FieldValueRequired", "Required value"))
        elif n in volumes:
            errs.append(("%s.volumes[%d].name" % (path, i), "FieldValueDuplicate", "Duplicate value: %s" % _q(n)))
        volumes.add(n)
    _containers(path + ".containers", spec.get("containers"), errs, volumes)
    _containers(path + ".initContainers", spec.get("initContainers"), errs, volumes, required=False)
    rp = spec.get("restartPolicy")
    if rp is not None:
        if rp not in ("Always", "OnFailure", "Never"):
            errs.append((path + ".restartPolicy", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"Always", "OnFailure", "Never"' % _q(rp)))
        elif restart_always and rp != "Always":
            errs.append((path + ".restartPolicy", "FieldValueNotSupported", 'Unsupported value: %s: supported '
                         'values: "Always"' % _q(rp)))
    dp = spec.get("dnsPolicy")
    if dp is not None and dp not in ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"):
        errs.append((path + ".dnsPolicy", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                     '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"' % _q(dp)))
    for i, t in enumerate(spec.get("tolerations") or []):
        p = "%s.tolerations[%d]" % (path, i)
        op = t.get("operator")
        if op is not None and op not in ("Exists", "Equal"):
            errs.append((p + ".operator", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"Equal", "Exists"' % _q(op)))
        if op == "Exists" and t.get("value"):
            errs.append((p + ".operator", "FieldValueInvalid", "Invalid value: %s: value must be empty when "
                         "`operator` is 'Exists'" % _q(t.get("value"))))
        eff = t.get("effect")
        if eff and eff not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append((p + ".effect", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"NoSchedule", "PreferNoSchedule", "NoExecute"' % _q(eff)))
    _labels(path + ".nodeSelector", spec.get("nodeSelector"), [])


def _workload(kind, obj, old, errs):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.append(("spec", "FieldValueRequired", "Required value"))
        return
    if kind != "DaemonSet":
        _int_field("spec.replicas", spec.get("replicas"), errs, 0)
    sel = spec.get("selector")
    _selector("spec.selector", sel, errs)
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        errs.append(("spec.template", "FieldValueRequired", "Required value"))
        return
    tl = (tmpl.get("metadata") or {}).get("labels") or {}
    _labels("spec.template.metadata.labels", tl, errs)
    if isinstance(sel, dict):
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            errs.append(("spec.selector", "FieldValueInvalid", "Invalid value: v1.LabelSelector{MatchLabels:"
                         "map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty "
                         "selector is invalid for deployment"))
        elif not _selector_matches(sel, tl):
            errs.append(("spec.template.metadata.labels", "FieldValueInvalid", "Invalid value: map[string]string{%s}: "
                         "`selector` does not match template `labels`" % ", ".join(
                             "%s:%s" % (json.dumps(k), json.dumps(v)) for k, v in sorted(tl.items()))))
    _pod_spec("spec.template.spec", tmpl.get("spec"), errs, restart_always=True)
    if kind == "Deployment":
        strat = spec.get("strategy") or {}
        t = strat.get("type")
        if t is not None and t not in ("Recreate", "RollingUpdate"):
            errs.append(("spec.strategy.type", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"Recreate", "RollingUpdate"' % _q(t)))
        if t == "Recreate" and strat.get("rollingUpdate"):
            errs.append(("spec.strategy.rollingUpdate", "FieldValueForbidden", "Forbidden: may not be specified "
                         "when strategy `type` is 'Recreate'"))
    if kind == "DaemonSet":
        t = (spec.get("updateStrategy") or {}).get("type")
        if t is not None and t not in ("OnDelete", "RollingUpdate"):
            errs.append(("spec.updateStrategy.type", "FieldValueNotSupported", 'Unsupported value: %s: supported '
                         'values: "OnDelete", "RollingUpdate"' % _q(t)))
    if old is not None:
        osel = (old.get("spec") or {}).get("selector")
        if osel is not None and sel is not None and osel != sel:
            errs.append(("spec.selector", "FieldValueInvalid", "Invalid value: %s: field is immutable"
                         % _labelselector_go(sel)))
        if kind == "StatefulSet":
            a = {k: v for k, v in (old.get("spec") or {}).items() if k not in STS_MUTABLE}
            b = {k: v for k, v in spec.items() if k not in STS_MUTABLE}
            if a != b:
                errs.append(("spec", "FieldValueForbidden", "Forbidden: updates to statefulset spec for fields other "
                             "than 'replicas', 'ordinals', 'template', 'updateStrategy', "
                             "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))


STS_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
               "minReadySeconds", "revisionHistoryLimit"}


def _labelselector_go(sel):
    ml = sel.get("matchLabels")
    mls = "map[string]string{%s}" % ", ".join('"%s":"%s"' % kv for kv in sorted(ml.items())) if ml else \
        "map[string]string(nil)"
    return "v1.LabelSelector{MatchLabels:%s, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}" % mls


def _service(st, obj, old, errs):
    spec = obj.get("spec") or {}
    typ = spec.get("type", "ClusterIP")
    if typ not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errs.append(("spec.type", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                     '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"' % _q(typ)))
    ports = spec.get("ports") or []
    if typ != "ExternalName" and not ports and spec.get("clusterIP") != "None":
        errs.append(("spec.ports", "FieldValueRequired", "Required value"))
    names = set()
    used = used_node_ports(st, skip=(obj["metadata"].get("namespace"), obj["metadata"].get("name")))
    for i, p in enumerate(ports):
        pp = "spec.ports[%d]" % i
        if len(ports) > 1 and not p.get("name"):
            errs.append((pp + ".name", "FieldValueRequired", "Required value"))
        if p.get("name"):
            if not LABEL_1123.match(p["name"]):
                errs.append((pp + ".name", "FieldValueInvalid", "Invalid value: %s: %s" % (_q(p["name"]), MSG_1123)))
            if p["name"] in names:
                errs.append((pp + ".name", "FieldValueDuplicate", "Duplicate value: %s" % _q(p["name"])))
            names.add(p["name"])
        if p.get("port") is None:
            errs.append((pp + ".port", "FieldValueRequired", "Required value"))
        _int_field(pp + ".port", p.get("port"), errs, 1, 65535)
        proto = p.get("protocol", "TCP")
        if proto not in ("TCP", "UDP", "SCTP"):
            errs.append((pp + ".protocol", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"SCTP", "TCP", "UDP"' % _q(proto)))
        tp = p.get("targetPort")
        if isinstance(tp, int):
            _int_field(pp + ".targetPort", tp, errs, 1, 65535)
        elif isinstance(tp, str):
            _port_name(pp + ".targetPort", tp, errs)
        np = p.get("nodePort")
        if np is not None:
            if typ not in ("NodePort", "LoadBalancer"):
                errs.append((pp + ".nodePort", "FieldValueForbidden", "Forbidden: may not be used when `type` is "
                             "'%s'" % typ))
            elif isinstance(np, int) and not 30000 <= np <= 32767:
                errs.append((pp + ".nodePort", "FieldValueInvalid", "Invalid value: %d: provided port is not in the "
                             "valid range. The range of valid ports is 30000-32767" % np))
            elif np in used:
                errs.append((pp + ".nodePort", "FieldValueInvalid", "Invalid value: %d: provided port is already "
                             "allocated" % np))
    if old is not None:
        oc = (old.get("spec") or {}).get("clusterIP")
        nc = spec.get("clusterIP")
        if nc and oc and nc != oc and typ != "ExternalName":
            errs.append(("spec.clusterIPs[0]", "FieldValueInvalid", "Invalid value: []string{%s}: may not change "
                         "once set" % json.dumps(nc)))


def used_node_ports(st, skip=None):
    out = set()
    for o in st["objects"].values():
        if o.get("kind") != "Service":
            continue
        if skip and (o["metadata"].get("namespace"), o["metadata"]["name"]) == skip:
            continue
        for p in (o.get("spec") or {}).get("ports") or []:
            if p.get("nodePort"):
                out.add(p["nodePort"])
    return out


def _config_data(obj, errs, secret=False):
    keys = set()
    for field in ("data", "binaryData") + (("stringData",) if secret else ()):
        d = obj.get(field)
        if d is None:
            continue
        if not isinstance(d, dict):
            errs.append((field, "FieldValueInvalid", "Invalid value: must be a map"))
            continue
        for k, v in d.items():
            if not CONFIG_KEY.match(k) or k in (".", ".."):
                errs.append(("%s[%s]" % (field, k), "FieldValueInvalid", "Invalid value: %s: %s"
                             % (_q(k), MSG_CONFIG_KEY)))
            if k in keys and not secret:
                errs.append(("data[%s]" % k, "FieldValueDuplicate", "Duplicate value: %s" % _q(k)))
            keys.add(k)


def _rbac(kind, obj, old, errs):
    if kind in ("Role", "ClusterRole"):
        for i, r in enumerate(obj.get("rules") or []):
            p = "rules[%d]" % i
            if not r.get("verbs"):
                errs.append((p + ".verbs", "FieldValueRequired", "Required value: verbs must contain at least one "
                             "value"))
            if r.get("nonResourceURLs"):
                if kind == "Role":
                    errs.append((p + ".nonResourceURLs", "FieldValueInvalid", "Invalid value: %s: namespaced rules "
                                 "cannot apply to non-resource URLs" % json.dumps(r["nonResourceURLs"])))
                if r.get("apiGroups") or r.get("resources"):
                    errs.append((p + ".nonResourceURLs", "FieldValueInvalid", "Invalid value: %s: rules cannot "
                                 "apply to both regular resources and non-resource URLs"
                                 % json.dumps(r["nonResourceURLs"])))
            else:
                if "apiGroups" not in r or r.get("apiGroups") is None:
                    errs.append((p + ".apiGroups", "FieldValueRequired", "Required value: resource rules must "
                                 "supply at least one api group"))
                if not r.get("resources"):
                    errs.append((p + ".resources", "FieldValueRequired", "Required value: resource rules must "
                                 "supply at least one resource"))
        return
    ref = obj.get("roleRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        errs.append(("roleRef.name", "FieldValueRequired", "Required value"))
    else:
        allowed = ("Role", "ClusterRole") if kind == "RoleBinding" else ("ClusterRole",)
        if ref.get("kind") not in allowed:
            errs.append(("roleRef.kind", "FieldValueNotSupported", 'Unsupported value: %s: supported values: %s'
                         % (_q(ref.get("kind")), ", ".join('"%s"' % a for a in allowed))))
        if ref.get("apiGroup", "rbac.authorization.k8s.io") != "rbac.authorization.k8s.io":
            errs.append(("roleRef.apiGroup", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"rbac.authorization.k8s.io"' % _q(ref.get("apiGroup"))))
    for i, s in enumerate(obj.get("subjects") or []):
        p = "subjects[%d]" % i
        if not s.get("name"):
            errs.append((p + ".name", "FieldValueRequired", "Required value"))
        k = s.get("kind")
        if k not in ("ServiceAccount", "User", "Group"):
            errs.append((p + ".kind", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"ServiceAccount", "User", "Group"' % _q(k)))
        elif k == "ServiceAccount" and not s.get("namespace") and kind == "ClusterRoleBinding":
            errs.append((p + ".namespace", "FieldValueRequired", "Required value"))
        elif k in ("User", "Group") and s.get("apiGroup", "rbac.authorization.k8s.io") != \
                "rbac.authorization.k8s.io":
            errs.append((p + ".apiGroup", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"rbac.authorization.k8s.io"' % _q(s.get("apiGroup"))))
    if old is not None and isinstance(ref, dict):
        oref = old.get("roleRef") or {}
        norm = lambda r: (r.get("apiGroup", "rbac.authorization.k8s.io"), r.get("kind"), r.get("name"))
        if norm(oref) != norm(ref):
            errs.append(("roleRef", "FieldValueInvalid", "Invalid value: rbac.RoleRef{APIGroup:%s, Kind:%s, Name:%s}: "
                         "cannot change roleRef" % (json.dumps(ref.get("apiGroup", "rbac.authorization.k8s.io")),
                                                    json.dumps(ref.get("kind")), json.dumps(ref.get("name")))))


def _pdb(obj, errs):
    spec = obj.get("spec") or {}
    if "minAvailable" in spec and "maxUnavailable" in spec:
        errs.append(("spec", "FieldValueInvalid", "Invalid value: policy.PodDisruptionBudgetSpec{...}: "
                     "minAvailable and maxUnavailable cannot be both set"))
    for f in ("minAvailable", "maxUnavailable"):
        v = spec.get(f)
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            errs.append(("spec." + f, "FieldValueInvalid", "Invalid value: %d: must be greater than or equal to 0"
                         % v))
        elif isinstance(v, str):
            m = re.match(r"^(\d+)%$", v)
            if not m:
                errs.append(("spec." + f, "FieldValueInvalid", 'Invalid value: %s: a valid percent string must be a '
                             'numeric string followed by an ending \'%%\' (e.g. \'1%%\',  or \'93%%\', regex used for '
                             'validation is \'[0-9]+%%\')' % _q(v)))
            elif int(m.group(1)) > 100:
                errs.append(("spec." + f, "FieldValueInvalid", "Invalid value: %s: must be no greater than 100%%"
                             % _q(v)))
    _selector("spec.selector", spec.get("selector"), errs, required=False)


def _network_policy(obj, errs):
    spec = obj.get("spec") or {}
    for i, t in enumerate(spec.get("policyTypes") or []):
        if t not in ("Ingress", "Egress"):
            errs.append(("spec.policyTypes[%d]" % i, "FieldValueNotSupported", 'Unsupported value: %s: supported '
                         'values: "Ingress", "Egress"' % _q(t)))
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            for j, port in enumerate(rule.get("ports") or []):
                p = "spec.%s[%d].ports[%d]" % (direction, i, j)
                proto = port.get("protocol", "TCP")
                if proto not in ("TCP", "UDP", "SCTP"):
                    errs.append((p + ".protocol", "FieldValueNotSupported", 'Unsupported value: %s: supported '
                                 'values: "TCP", "UDP", "SCTP"' % _q(proto)))
                if isinstance(port.get("port"), int):
                    _int_field(p + ".port", port["port"], errs, 1, 65535)
            for j, peer in enumerate(rule.get(peers) or []):
                cidr = (peer.get("ipBlock") or {}).get("cidr")
                if cidr is not None:
                    try:
                        ipaddress.ip_network(cidr, strict=False)
                    except ValueError:
                        errs.append(("spec.%s[%d].%s[%d].ipBlock.cidr" % (direction, i, peers, j),
                                     "FieldValueInvalid", "Invalid value: %s: must be a valid CIDR value, (e.g. "
                                     "10.9.8.0/24 or 2001:db8::/64)" % _q(cidr)))


def _limit_range(obj, errs):
    for i, lim in enumerate((obj.get("spec") or {}).get("limits") or []):
        p = "spec.limits[%d]" % i
        t = lim.get("type")
        if t not in ("Pod", "Container", "PersistentVolumeClaim"):
            errs.append((p + ".type", "FieldValueNotSupported", 'Unsupported value: %s: supported values: '
                         '"Container", "PersistentVolumeClaim", "Pod"' % _q(t)))
        for f in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            for k, v in (lim.get(f) or {}).items():
                if parse_quantity(v) is None:
                    errs.append(("%s.%s[%s]" % (p, f, k), "FieldValueInvalid", "Invalid value: %s: %s"
                                 % (_q(v), MSG_QUANTITY)))
        for k, v in (lim.get("defaultRequest") or {}).items():
            d = (lim.get("default") or {}).get(k)
            if d is not None and parse_quantity(v) is not None and parse_quantity(d) is not None and \
                    parse_quantity(v) > parse_quantity(d):
                errs.append(("%s.defaultRequest[%s]" % (p, k), "FieldValueInvalid", "Invalid value: %s: default "
                             "request value must be less than or equal to default limit value" % _q(v)))


def validate(st, kind, group, obj, old, strict=False, only_unknown=False):
    """[(field, reason, message)] the real server would answer with for `obj` (old: the current object on an
    update). Strict: unknown fields are errors too (reason FieldValueNotDeclared); only_unknown: only those."""
    errs = []
    md = obj.get("metadata") or {}
    schema = SCHEMAS.get(kind) if group in ("", "apps", "rbac.authorization.k8s.io", "networking.k8s.io",
                                            "policy", "coordination.k8s.io") else None
    if strict and schema is not None:
        for f in unknown_fields(schema, obj):
            errs.append((f, "FieldValueNotDeclared", 'unknown field "%s"' % f))
        if errs or only_unknown:
            return errs
    name = md.get("name") or ""
    if name:
        for m in _name_errors(kind, group, name):
            errs.append(("metadata.name", "FieldValueInvalid", "Invalid value: %s: %s" % (_q(name), m)))
    _labels("metadata.labels", md.get("labels"), errs)
    ann = md.get("annotations")
    if isinstance(ann, dict):
        for k, v in ann.items():
            for m in _qualified_name_errors(k):
                errs.append(("metadata.annotations", "FieldValueInvalid", "Invalid value: %s: %s" % (_q(k), m)))
            if not isinstance(v, str):
                errs.append(("metadata.annotations", "FieldValueInvalid", "Invalid value: %s: must be a string"
                             % _q(v)))
        if sum(len(k) + len(str(v)) for k, v in ann.items()) > 256 * 1024:
            errs.append(("metadata.annotations", "FieldValueTooLong", "Too long: must have at most 262144 bytes"))
    if group == "apps" and kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"):
        _workload(kind, obj, old, errs)
    elif kind == "Pod" and group == "":
        _pod_spec("spec", obj.get("spec"), errs)
    elif kind == "Service" and group == "":
        _service(st, obj, old, errs)
    elif kind in ("ConfigMap", "Secret") and group == "":
        _config_data(obj, errs, secret=kind == "Secret")
        if old is not None and old.get("immutable"):
            for f in ("data", "binaryData") if kind == "ConfigMap" else ("data",):
                if (obj.get(f) or {}) != (old.get(f) or {}):
                    errs.append((f, "FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set"))
        if kind == "Secret" and old is not None and obj.get("type", "Opaque") != old.get("type", "Opaque"):
            errs.append(("type", "FieldValueInvalid", "Invalid value: %s: field is immutable"
                         % _q(obj.get("type", "Opaque"))))
        if kind == "Secret":
            for k, v in (obj.get("data") or {}).items():
                try:
                    base64.b64decode(str(v), validate=True)
                except ValueError:
                    errs.append(("data[%s]" % k, "FieldValueInvalid", "Invalid value: illegal base64 data"))
    elif group == "rbac.authorization.k8s.io":
        _rbac(kind, obj, old, errs)
    elif kind == "PodDisruptionBudget":
        _pdb(obj, errs)
    elif kind == "NetworkPolicy":
        _network_policy(obj, errs)
    elif kind == "LimitRange":
        _limit_range(obj, errs)
    elif kind == "Lease":
        _int_field("spec.leaseDurationSeconds", (obj.get("spec") or {}).get("leaseDurationSeconds"), errs, 1)
    return errs


# ------------------------------------------------------------------ defaulting
def _image_policy(image):
    ref = (image or "").split("@")[0]
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
    if "@" in (image or ""):
        return "IfNotPresent"
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_probe(p):
    if not isinstance(p, dict):
        return
    p.setdefault("timeoutSeconds", 1)
    p.setdefault("periodSeconds", 10)
    p.setdefault("successThreshold", 1)
    p.setdefault("failureThreshold", 3)
    if isinstance(p.get("httpGet"), dict):
        p["httpGet"].setdefault("scheme", "HTTP")


def default_pod_spec(spec):
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(c, dict):
            continue
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("imagePullPolicy", _image_policy(c.get("image")))
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            _default_probe(c.get(probe))
    for v in spec.get("volumes") or []:
        if isinstance(v, dict):
            for src in ("configMap", "secret"):
                if isinstance(v.get(src), dict):
                    v[src].setdefault("defaultMode", 420)
    for t in spec.get("tolerations") or []:
        if isinstance(t, dict) and t.get("key") and "operator" not in t:
            t["operator"] = "Equal"


def _alloc_cluster_ip(st, obj):
    subnet = (st.get("cluster") or {}).get("serviceSubnet") or "10.96.0.0/12"
    net = ipaddress.ip_network(subnet.split(",")[0], strict=False)
    used = {(o.get("spec") or {}).get("clusterIP") for o in st["objects"].values() if o.get("kind") == "Service"}
    import hashlib
    h = int(hashlib.sha256(("%s/%s" % (obj["metadata"].get("namespace"), obj["metadata"]["name"])).encode())
            .hexdigest(), 16)
    size = min(net.num_addresses - 2, 1 << 16)
    for i in range(size):
        ip = str(net.network_address + 11 + (h + i) % (size - 11))
        if ip not in used:
            return ip
    return None


def default(st, kind, obj, old=None):
    """The real server's defaulting for `obj` (in place); `old`: the object it updates (a Service keeps its
    allocated cluster IP and node ports when the update does not name them)."""
    if not isinstance(obj, dict):
        return obj
    if kind == "Service" and old is not None and isinstance(obj.get("spec"), dict):
        ospec, nspec = old.get("spec") or {}, obj["spec"]
        if ospec.get("clusterIP") and not nspec.get("clusterIP") and nspec.get("type", "ClusterIP") != "ExternalName":
            nspec["clusterIP"] = ospec["clusterIP"]
            if ospec.get("clusterIPs") and not nspec.get("clusterIPs"):
                nspec["clusterIPs"] = ospec["clusterIPs"]
        for p in nspec.get("ports") or []:
            if isinstance(p, dict) and not p.get("nodePort") and nspec.get("type") in ("NodePort", "LoadBalancer"):
                was = next((q for q in ospec.get("ports") or [] if q.get("port") == p.get("port")), None)
                if was and was.get("nodePort"):
                    p["nodePort"] = was["nodePort"]
    spec = obj.get("spec")
    md = obj.setdefault("metadata", {})
    if kind == "Namespace":
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md.get("name")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    elif kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet") and isinstance(spec, dict):
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            strat = spec.setdefault("strategy", {})
            strat.setdefault("type", "RollingUpdate")
            if strat["type"] == "RollingUpdate":
                ru = strat.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", "25%")
                ru.setdefault("maxSurge", "25%")
        elif kind == "DaemonSet":
            us = spec.setdefault("updateStrategy", {})
            us.setdefault("type", "RollingUpdate")
            if us["type"] == "RollingUpdate":
                ru = us.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", 1)
                ru.setdefault("maxSurge", 0)
        elif kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            us = spec.setdefault("updateStrategy", {})
            us.setdefault("type", "RollingUpdate")
            if us["type"] == "RollingUpdate":
                us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
            spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        tmpl = spec.get("template")
        if isinstance(tmpl, dict):
            tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)
            default_pod_spec(tmpl.get("spec"))
    elif kind == "Pod":
        default_pod_spec(spec)
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        if spec["type"] != "ExternalName":
            spec.setdefault("sessionAffinity", "None")
            if not spec.get("clusterIP"):
                ip = _alloc_cluster_ip(st, obj)
                if ip:
                    spec["clusterIP"] = ip
            if spec.get("clusterIP") and not spec.get("clusterIPs"):
                spec["clusterIPs"] = [spec["clusterIP"]]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        used = used_node_ports(st, skip=(md.get("namespace"), md.get("name")))
        for i, p in enumerate(spec.get("ports") or []):
            if not isinstance(p, dict):
                continue
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
            if spec["type"] in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
                for cand in range(30000 + sum(map(ord, md.get("name", ""))) % 2000, 32768):
                    if cand not in used:
                        p["nodePort"] = cand
                        used.add(cand)
                        break
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        sd = obj.pop("stringData", None)
        if isinstance(sd, dict):
            data = obj.setdefault("data", {})
            for k, v in sd.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        for s in obj.get("subjects") or []:
            if isinstance(s, dict) and s.get("kind") in ("User", "Group"):
                s.setdefault("apiGroup", "rbac.authorization.k8s.io")
    return obj
