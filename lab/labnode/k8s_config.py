"""Strict decoding of kubeadm configuration files (kubeadm.k8s.io/v1beta3 and v1beta4).

Unknown apiVersions, kinds and fields are errors, worded like kubeadm's decoder."""
import re

import yaml

ANY = None      # any scalar / value
MAP = "map"     # free-form string map


def _common_reg(v):
    return {"name": ANY, "criSocket": ANY, "taints": ["list", {"key": ANY, "value": ANY, "effect": ANY,
                                                             "timeAdded": ANY}],
            "kubeletExtraArgs": MAP if v == "v1beta3" else ["list", {"name": ANY, "value": ANY}],
            "ignorePreflightErrors": ["list", ANY], "imagePullPolicy": ANY,
            **({"imagePullSerial": ANY} if v == "v1beta4" else {})}


def _component(v, extra=None):
    d = {"extraArgs": MAP if v == "v1beta3" else ["list", {"name": ANY, "value": ANY}],
         "extraVolumes": ["list", {"name": ANY, "hostPath": ANY, "mountPath": ANY, "readOnly": ANY,
                                   "pathType": ANY}]}
    if v == "v1beta4":
        d["extraEnvs"] = ["list", {"name": ANY, "value": ANY, "valueFrom": MAP}]
    d.update(extra or {})
    return d


def schemas(v):
    endpoint = {"advertiseAddress": ANY, "bindPort": ANY}
    token = {"token": ANY, "description": ANY, "ttl": ANY, "expires": ANY, "usages": ["list", ANY],
             "groups": ["list", ANY]}
    timeouts = {"controlPlaneComponentHealthCheck": ANY, "kubeletHealthCheck": ANY, "kubernetesAPICall": ANY,
                "etcdAPICall": ANY, "tlsBootstrap": ANY, "discovery": ANY, "upgradeManifests": ANY}
    init = {"bootstrapTokens": ["list", token], "nodeRegistration": _common_reg(v),
            "localAPIEndpoint": endpoint, "certificateKey": ANY, "skipPhases": ["list", ANY],
            "patches": {"directory": ANY}}
    if v == "v1beta4":
        init.update({"timeouts": timeouts, "dryRun": ANY})
    etcd_local = {"imageRepository": ANY, "imageTag": ANY, "dataDir": ANY, "extraArgs": _component(v)["extraArgs"],
                  "serverCertSANs": ["list", ANY], "peerCertSANs": ["list", ANY]}
    if v == "v1beta4":
        etcd_local["extraEnvs"] = ["list", {"name": ANY, "value": ANY, "valueFrom": MAP}]
    cluster = {
        "etcd": {"local": etcd_local, "external": {"endpoints": ["list", ANY], "caFile": ANY, "certFile": ANY,
                                                   "keyFile": ANY}},
        "networking": {"serviceSubnet": ANY, "podSubnet": ANY, "dnsDomain": ANY},
        "kubernetesVersion": ANY, "controlPlaneEndpoint": ANY,
        "apiServer": _component(v, {"certSANs": ["list", ANY],
                                    **({"timeoutForControlPlane": ANY} if v == "v1beta3" else {})}),
        "controllerManager": _component(v), "scheduler": _component(v),
        "dns": {"imageRepository": ANY, "imageTag": ANY, **({"disabled": ANY} if v == "v1beta4" else {})},
        "certificatesDir": ANY, "imageRepository": ANY, "featureGates": MAP, "clusterName": ANY,
    }
    if v == "v1beta4":
        cluster.update({"proxy": {"disabled": ANY}, "encryptionAlgorithm": ANY, "certificateValidityPeriod": ANY,
                        "caCertificateValidityPeriod": ANY})
    discovery = {"bootstrapToken": {"token": ANY, "apiServerEndpoint": ANY, "caCertHashes": ["list", ANY],
                                    "unsafeSkipCAVerification": ANY},
                 "file": {"kubeConfigPath": ANY}, "tlsBootstrapToken": ANY}
    if v == "v1beta3":
        discovery["timeout"] = ANY
    join = {"caCertPath": ANY, "discovery": discovery, "nodeRegistration": _common_reg(v),
            "controlPlane": {"localAPIEndpoint": endpoint, "certificateKey": ANY}, "skipPhases": ["list", ANY],
            "patches": {"directory": ANY}}
    if v == "v1beta4":
        join.update({"timeouts": timeouts, "dryRun": ANY})
    reset = {"cleanupTmpDir": ANY, "certificatesDir": ANY, "criSocket": ANY, "force": ANY,
             "ignorePreflightErrors": ["list", ANY], "skipPhases": ["list", ANY]}
    out = {"InitConfiguration": init, "ClusterConfiguration": cluster, "JoinConfiguration": join}
    if v == "v1beta4":
        out["ResetConfiguration"] = reset
        out["UpgradeConfiguration"] = MAP
    return out


class ConfigError(Exception):
    pass


def _gvk(api_version, kind):
    g, _, ver = api_version.partition("/")
    return 'schema.GroupVersionKind{Group:"%s", Version:"%s", Kind:"%s"}' % (g, ver, kind)


def _check(obj, schema, path, errors):
    if schema is ANY:
        return
    if schema == MAP:
        if obj is not None and not isinstance(obj, dict):
            errors.append('json: cannot unmarshal %s into Go struct field .%s of type map[string]string'
                          % (_jt(obj), path))
        return
    if isinstance(schema, list):
        if obj is None:
            return
        if not isinstance(obj, list):
            errors.append("json: cannot unmarshal %s into Go struct field .%s of type []" % (_jt(obj), path))
            return
        for i, item in enumerate(obj):
            _check(item, schema[1], path, errors)
        return
    if obj is None:
        return
    if not isinstance(obj, dict):
        errors.append("json: cannot unmarshal %s into Go struct field .%s of type struct" % (_jt(obj), path))
        return
    for k, val in obj.items():
        if k not in schema:
            errors.append('unknown field "%s"' % (path + "." + k if path else k))
            continue
        _check(val, schema[k], path + "." + k if path else k, errors)


def _jt(v):
    return {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(v), "number")


def parse(text, allowed):
    """Decode a kubeadm config file; returns {kind: doc}. `allowed`: kinds this command accepts."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise ConfigError("error converting YAML to JSON: yaml: %s" % str(e).replace("\n", " "))
    out = {}
    for d in docs:
        if not isinstance(d, dict):
            raise ConfigError("couldn't get version/kind; json parse error: json: cannot unmarshal %s into Go "
                              "value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; "
                              "Kind string \"json:\\\"kind,omitempty\\\"\" }" % _jt(d))
        av, kind = d.get("apiVersion"), d.get("kind")
        if not av or not kind:
            raise ConfigError("Object 'Kind' is missing in '%s'" % yaml.safe_dump(d, default_flow_style=True).strip()
                              if not kind else "Object 'apiVersion' is missing in '%s'"
                              % yaml.safe_dump(d, default_flow_style=True).strip())
        if av.startswith("kubeadm.k8s.io/"):
            ver = av.split("/", 1)[1]
            if ver in ("v1alpha1", "v1alpha2", "v1alpha3", "v1beta1", "v1beta2"):
                raise ConfigError('your configuration file uses an old API spec: "%s". Please use kubeadm v1.22 '
                                  'instead and run \'kubeadm config migrate --old-config old.yaml --new-config '
                                  'new.yaml\', which will write the new, similar spec using a newer API version.'
                                  % av)
            if ver not in ("v1beta3", "v1beta4"):
                raise ConfigError('no kind "%s" is registered for version "%s" in scheme '
                                  '"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"' % (kind, av))
            sch = schemas(ver)
            if kind not in sch:
                raise ConfigError('no kind "%s" is registered for version "%s" in scheme '
                                  '"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"' % (kind, av))
            body = {k: v for k, v in d.items() if k not in ("apiVersion", "kind")}
            errors = []
            _check(body, sch[kind], "", errors)
            strict = [e for e in errors if e.startswith("unknown field")]
            other = [e for e in errors if not e.startswith("unknown field")]
            if other:
                raise ConfigError("error unmarshaling configuration %s: %s" % (_gvk(av, kind), other[0]))
            if strict:
                raise ConfigError("error unmarshaling configuration %s: strict decoding error: %s"
                                  % (_gvk(av, kind), ", ".join(strict)))
        elif (av, kind) in (("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
                            ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration")):
            pass
        else:
            raise ConfigError('no kind "%s" is registered for version "%s" in scheme '
                              '"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"' % (kind, av))
        if kind in out:
            raise ConfigError("found multiple %s documents" % kind)
        out[kind] = d
    warnings = []
    for k in [k for k in out if k not in allowed]:
        warnings.append("[config] WARNING: Ignored YAML document with GroupVersionKind %s, Kind=%s"
                        % (out[k]["apiVersion"], k))
        del out[k]
    return out, warnings


def args_map(v, val):
    """extraArgs/kubeletExtraArgs of either version as a dict."""
    if isinstance(val, list):
        return {a.get("name"): a.get("value") for a in val}
    return dict(val or {})


DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def duration(s):
    """Go duration string ("24h0m0s", "2h", "90m", "0") -> seconds."""
    s = str(s).strip()
    if s in ("0", "0s"):
        return 0
    m = DURATION.match(s)
    if not s or not m or not any(m.groups()):
        raise ConfigError('time: invalid duration "%s"' % s)
    h, mi, se = (float(x) if x else 0.0 for x in m.groups())
    return h * 3600 + mi * 60 + se
