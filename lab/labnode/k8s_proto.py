"""Protobuf request bodies (application/vnd.kubernetes.protobuf), as kubectl's typed clients send them
(`kubectl create namespace|configmap|secret|serviceaccount|deployment|role…`, `kubectl auth can-i`).

The envelope is the 4 magic bytes "k8s\\0" and a runtime.Unknown {typeMeta{apiVersion, kind}, raw}; `raw` is the
object in the field numbering of the Kubernetes generated.proto files. Only the kinds below are described
(fields not described are skipped); decode() returns the object as the JSON form a client would have sent, or
raises ValueError for a kind the lab does not describe. Responses are always JSON (clients accept it)."""
import base64
import struct
import time

# field types: s string, i integer, b bool, y bytes (base64 in JSON), t Time, ios IntOrString, q Quantity,
# a dict (a message), ("map", key, value), and a leading "*" marks a repeated field.
TIME = "t"
LS_REQ = {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "*s")}
LABEL_SELECTOR = {1: ("matchLabels", ("map", "s", "s")), 2: ("matchExpressions", ("*", LS_REQ))}
OWNER_REF = {1: ("kind", "s"), 3: ("name", "s"), 4: ("uid", "s"), 5: ("apiVersion", "s"), 6: ("controller", "b"),
             7: ("blockOwnerDeletion", "b")}
META = {1: ("name", "s"), 2: ("generateName", "s"), 3: ("namespace", "s"), 5: ("uid", "s"),
        6: ("resourceVersion", "s"), 7: ("generation", "i"), 8: ("creationTimestamp", TIME),
        9: ("deletionTimestamp", TIME), 10: ("deletionGracePeriodSeconds", "i"),
        11: ("labels", ("map", "s", "s")), 12: ("annotations", ("map", "s", "s")),
        13: ("ownerReferences", ("*", OWNER_REF)), 14: ("finalizers", "*s")}
KEY_TO_PATH = {1: ("key", "s"), 2: ("path", "s"), 3: ("mode", "i")}
VOLUME = {1: ("name", "s"), 2: ("hostPath", {1: ("path", "s"), 2: ("type", "s")}),
          3: ("emptyDir", {1: ("medium", "s"), 2: ("sizeLimit", "q")}),
          6: ("secret", {1: ("secretName", "s"), 2: ("items", ("*", KEY_TO_PATH)), 3: ("defaultMode", "i"),
                         4: ("optional", "b")}),
          10: ("persistentVolumeClaim", {1: ("claimName", "s"), 2: ("readOnly", "b")}),
          19: ("configMap", {1: ("localObjectReference", None), 2: ("items", ("*", KEY_TO_PATH)),
                             3: ("defaultMode", "i"), 4: ("optional", "b")})}
PORT = {1: ("name", "s"), 2: ("hostPort", "i"), 3: ("containerPort", "i"), 4: ("protocol", "s"), 5: ("hostIP", "s")}
ENV = {1: ("name", "s"), 2: ("value", "s")}
RESOURCES = {1: ("limits", ("map", "s", "q")), 2: ("requests", ("map", "s", "q"))}
MOUNT = {1: ("name", "s"), 2: ("readOnly", "b"), 3: ("mountPath", "s"), 4: ("subPath", "s")}
CONTAINER = {1: ("name", "s"), 2: ("image", "s"), 3: ("command", "*s"), 4: ("args", "*s"), 5: ("workingDir", "s"),
             6: ("ports", ("*", PORT)), 7: ("env", ("*", ENV)), 8: ("resources", RESOURCES),
             9: ("volumeMounts", ("*", MOUNT)), 13: ("terminationMessagePath", "s"), 14: ("imagePullPolicy", "s"),
             16: ("stdin", "b"), 17: ("stdinOnce", "b"), 18: ("tty", "b"), 20: ("terminationMessagePolicy", "s")}
TOLERATION = {1: ("key", "s"), 2: ("operator", "s"), 3: ("value", "s"), 4: ("effect", "s"),
              5: ("tolerationSeconds", "i")}
POD_SPEC = {1: ("volumes", ("*", VOLUME)), 2: ("containers", ("*", CONTAINER)), 3: ("restartPolicy", "s"),
            4: ("terminationGracePeriodSeconds", "i"), 5: ("activeDeadlineSeconds", "i"), 6: ("dnsPolicy", "s"),
            7: ("nodeSelector", ("map", "s", "s")), 8: ("serviceAccountName", "s"), 9: ("serviceAccount", "s"),
            10: ("nodeName", "s"), 11: ("hostNetwork", "b"), 12: ("hostPID", "b"), 13: ("hostIPC", "b"),
            14: ("securityContext", {}), 15: ("imagePullSecrets", ("*", {1: ("name", "s")})), 16: ("hostname", "s"),
            17: ("subdomain", "s"), 19: ("schedulerName", "s"), 20: ("initContainers", ("*", CONTAINER)),
            21: ("automountServiceAccountToken", "b"), 22: ("tolerations", ("*", TOLERATION)),
            24: ("priorityClassName", "s"), 25: ("priority", "i")}
TEMPLATE = {1: ("metadata", META), 2: ("spec", POD_SPEC)}
ROLLING = {1: ("maxUnavailable", "ios"), 2: ("maxSurge", "ios")}
DEPLOYMENT_SPEC = {1: ("replicas", "i"), 2: ("selector", LABEL_SELECTOR), 3: ("template", TEMPLATE),
                   4: ("strategy", {1: ("type", "s"), 2: ("rollingUpdate", ROLLING)}), 5: ("minReadySeconds", "i"),
                   6: ("revisionHistoryLimit", "i"), 7: ("paused", "b"), 9: ("progressDeadlineSeconds", "i")}
RESOURCE_ATTRS = {1: ("namespace", "s"), 2: ("verb", "s"), 3: ("group", "s"), 4: ("version", "s"),
                  5: ("resource", "s"), 6: ("subresource", "s"), 7: ("name", "s")}
NON_RESOURCE_ATTRS = {1: ("path", "s"), 2: ("verb", "s")}
POLICY_RULE = {1: ("verbs", "*s"), 2: ("apiGroups", "*s"), 3: ("resources", "*s"), 4: ("resourceNames", "*s"),
               5: ("nonResourceURLs", "*s")}
SUBJECT = {1: ("kind", "s"), 2: ("apiGroup", "s"), 3: ("name", "s"), 4: ("namespace", "s")}
ROLE_REF = {1: ("apiGroup", "s"), 2: ("kind", "s"), 3: ("name", "s")}
PRECONDITIONS = {1: ("uid", "s"), 2: ("resourceVersion", "s")}
DELETE_OPTIONS = {1: ("gracePeriodSeconds", "i"), 2: ("preconditions", PRECONDITIONS), 3: ("orphanDependents", "b"),
                  4: ("propagationPolicy", "s"), 5: ("dryRun", "*s")}

KINDS = {
    ("v1", "Namespace"): {1: ("metadata", META), 2: ("spec", {1: ("finalizers", "*s")})},
    ("v1", "ConfigMap"): {1: ("metadata", META), 2: ("data", ("map", "s", "s")), 3: ("binaryData", ("map", "s", "y")),
                          4: ("immutable", "b")},
    ("v1", "Secret"): {1: ("metadata", META), 2: ("data", ("map", "s", "y")), 3: ("type", "s"),
                       4: ("stringData", ("map", "s", "s")), 5: ("immutable", "b")},
    ("v1", "ServiceAccount"): {1: ("metadata", META), 3: ("imagePullSecrets", ("*", {1: ("name", "s")})),
                               4: ("automountServiceAccountToken", "b")},
    ("v1", "Pod"): {1: ("metadata", META), 2: ("spec", POD_SPEC)},
    ("apps/v1", "Deployment"): {1: ("metadata", META), 2: ("spec", DEPLOYMENT_SPEC)},
    ("policy/v1", "Eviction"): {1: ("metadata", META), 2: ("deleteOptions", DELETE_OPTIONS)},
    ("policy/v1", "PodDisruptionBudget"): {1: ("metadata", META), 2: ("spec", {
        1: ("minAvailable", "ios"), 2: ("selector", LABEL_SELECTOR), 3: ("maxUnavailable", "ios"),
        4: ("unhealthyPodEvictionPolicy", "s")})},
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {1: ("metadata", META), 2: ("spec", {
        1: ("resourceAttributes", RESOURCE_ATTRS), 2: ("nonResourceAttributes", NON_RESOURCE_ATTRS)})},
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): {1: ("metadata", META), 2: ("spec", {
        1: ("namespace", "s")})},
    ("authorization.k8s.io/v1", "SubjectAccessReview"): {1: ("metadata", META), 2: ("spec", {
        1: ("resourceAttributes", RESOURCE_ATTRS), 2: ("nonResourceAttributes", NON_RESOURCE_ATTRS),
        3: ("user", "s"), 4: ("groups", "*s"), 6: ("uid", "s")})},
    ("authentication.k8s.io/v1", "SelfSubjectReview"): {1: ("metadata", META)},
    ("rbac.authorization.k8s.io/v1", "Role"): {1: ("metadata", META), 2: ("rules", ("*", POLICY_RULE))},
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): {1: ("metadata", META), 2: ("rules", ("*", POLICY_RULE))},
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): {1: ("metadata", META), 2: ("subjects", ("*", SUBJECT)),
                                                      3: ("roleRef", ROLE_REF)},
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): {1: ("metadata", META), 2: ("subjects", ("*", SUBJECT)),
                                                             3: ("roleRef", ROLE_REF)},
    ("meta.k8s.io/v1", "DeleteOptions"): DELETE_OPTIONS,
    ("v1", "DeleteOptions"): DELETE_OPTIONS,
}
MAGIC = b"k8s\x00"


def _varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7


def _fields(buf):
    """(field number, wire type, value) of a message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported protobuf wire type %d" % wt)
        yield num, wt, v


def _int(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(t, wt, v):
    if t == "s":
        return bytes(v).decode()
    if t == "y":
        return base64.b64encode(bytes(v)).decode()
    if t == "i":
        return _int(v) if wt == 0 else struct.unpack("<q", v)[0]
    if t == "b":
        return bool(v)
    if t == "q":
        return next((bytes(x).decode() for n, _, x in _fields(v) if n == 1), "0")
    if t == TIME:
        secs = next((_int(x) for n, _, x in _fields(v) if n == 1), 0)
        if not secs:
            return None
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))
    if t == "ios":
        typ, iv, sv = 0, 0, ""
        for n, _, x in _fields(v):
            if n == 1:
                typ = x
            elif n == 2:
                iv = _int(x)
            elif n == 3:
                sv = bytes(x).decode()
        return sv if typ == 1 else iv
    raise ValueError("unknown field type %r" % (t,))


def _message(schema, buf):
    out = {}
    for num, wt, v in _fields(buf):
        spec = schema.get(num)
        if spec is None:
            continue
        name, t = spec
        if t is None:
            if name == "localObjectReference":        # ConfigMapVolumeSource embeds {name}
                out.update(_message({1: ("name", "s")}, v))
            continue
        if isinstance(t, dict):
            out[name] = _message(t, v)
        elif isinstance(t, tuple) and t[0] == "map":
            k = val = None
            for n2, wt2, x in _fields(v):
                if n2 == 1:
                    k = _scalar(t[1], wt2, x)
                elif n2 == 2:
                    val = _message(t[2], x) if isinstance(t[2], dict) else _scalar(t[2], wt2, x)
            out.setdefault(name, {})[k] = val if val is not None else ("" if t[2] in ("s", "y", "q") else val)
        elif isinstance(t, tuple) and t[0] == "*":
            out.setdefault(name, []).append(_message(t[1], v))
        elif isinstance(t, str) and t.startswith("*"):
            out.setdefault(name, []).append(_scalar(t[1:], wt, v))
        else:
            x = _scalar(t, wt, v)
            # Go encodes every non-pointer field, zero or not; JSON (omitempty) would not carry them
            if (x == "" and t == "s") or (x is False and name not in POINTERS) or \
                    (x == 0 and t == "i" and name not in POINTERS):
                continue
            out[name] = x
    return out


# optional (pointer) fields: their zero value is a value
POINTERS = {"replicas", "revisionHistoryLimit", "progressDeadlineSeconds", "terminationGracePeriodSeconds",
            "activeDeadlineSeconds", "deletionGracePeriodSeconds", "gracePeriodSeconds", "priority",
            "tolerationSeconds", "defaultMode", "mode", "immutable", "automountServiceAccountToken", "optional",
            "controller", "blockOwnerDeletion", "orphanDependents", "hostUsers"}


def decode(body):
    """The object in a protobuf request body, as JSON would carry it."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf message (no k8s\\0 prefix)")
    av = kind = ""
    raw = b""
    for num, _, v in _fields(memoryview(body)[4:]):
        if num == 1:
            for n2, _, x in _fields(v):
                if n2 == 1:
                    av = bytes(x).decode()
                elif n2 == 2:
                    kind = bytes(x).decode()
        elif num == 2:
            raw = v
    schema = KINDS.get((av, kind))
    if schema is None:
        raise ValueError("the lab does not decode protobuf bodies of %s %s; send JSON" % (av, kind))
    return dict({"apiVersion": av, "kind": kind}, **_message(schema, raw))
