"""RBAC of the simulated API server: the default cluster roles and bindings the real API server creates at
start (plus the `kubeadm:cluster-admins` binding `kubeadm init` makes), and the authorizer that answers from
the Role/ClusterRole/RoleBinding/ClusterRoleBinding objects in the store (requests and SelfSubjectAccessReviews).

Users are {"name": ..., "groups": [...]}. `system:masters` is allowed everything without looking at RBAC,
like the real server's superuser group."""

RO = ["get", "list", "watch"]
RW = ["create", "delete", "deletecollection", "patch", "update"]

# what `view` may read (the real role, flattened from its aggregated parts; secrets are not in it)
VIEW_RESOURCES = {
    "": ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
         "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/status",
         "bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
         "replicationcontrollers/status", "resourcequotas", "resourcequotas/status", "namespaces"],
    "apps": ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
             "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
             "statefulsets/scale", "statefulsets/status"],
    "autoscaling": ["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
    "batch": ["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
    "policy": ["poddisruptionbudgets", "poddisruptionbudgets/status"],
    "networking.k8s.io": ["ingresses", "ingresses/status", "networkpolicies"],
    "discovery.k8s.io": ["endpointslices"],
}
EDIT_RESOURCES = {
    "": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "pods/eviction", "configmaps",
         "endpoints", "persistentvolumeclaims", "replicationcontrollers", "replicationcontrollers/scale", "secrets",
         "serviceaccounts", "services", "services/proxy", "serviceaccounts/token"],
    "apps": ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
             "replicasets/scale", "statefulsets", "statefulsets/scale"],
    "autoscaling": ["horizontalpodautoscalers"],
    "batch": ["cronjobs", "jobs"],
    "policy": ["poddisruptionbudgets"],
    "networking.k8s.io": ["ingresses", "networkpolicies"],
    "discovery.k8s.io": ["endpointslices"],
}


def _rules(table, verbs):
    return [{"apiGroups": [g], "resources": list(rs), "verbs": list(verbs)} for g, rs in table.items()]


def default_cluster_roles():
    view = _rules(VIEW_RESOURCES, RO)
    edit = view + _rules(EDIT_RESOURCES, RW) + [{"apiGroups": [""], "resources": ["secrets"], "verbs": RO},
                                                {"apiGroups": [""], "resources": ["serviceaccounts"],
                                                 "verbs": ["impersonate"]}]
    admin = edit + [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                     "verbs": RO + RW},
                    {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"],
                     "verbs": ["create"]}]
    sar = ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]
    return {
        "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                          {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        "admin": admin, "edit": edit, "view": view,
        "system:discovery": [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                                  "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                              "verbs": ["get"]}],
        "system:basic-user": [{"apiGroups": ["authorization.k8s.io"], "resources": sar, "verbs": ["create"]},
                              {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
                               "verbs": ["create"]}],
        "system:public-info-viewer": [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version",
                                                           "/version/"], "verbs": ["get"]}],
    }


DEFAULT_BINDINGS = {
    "cluster-admin": ("cluster-admin", [("Group", "system:masters")]),
    "system:discovery": ("system:discovery", [("Group", "system:authenticated")]),
    "system:basic-user": ("system:basic-user", [("Group", "system:authenticated")]),
    "system:public-info-viewer": ("system:public-info-viewer", [("Group", "system:authenticated"),
                                                                ("Group", "system:unauthenticated")]),
    # kubeadm init: the admin.conf user's group
    "kubeadm:cluster-admins": ("cluster-admin", [("Group", "kubeadm:cluster-admins")]),
}


def default_objects():
    """The ClusterRoles and ClusterRoleBindings of a fresh cluster."""
    out = []
    for name, rules in default_cluster_roles().items():
        labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
        if name in ("admin", "edit", "view"):
            labels["rbac.authorization.k8s.io/aggregate-to-" + {"admin": "admin", "edit": "admin",
                                                                "view": "edit"}[name]] = "true"
        out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": name, "labels": labels,
                                 "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
                    "rules": rules})
    for name, (role, subjects) in DEFAULT_BINDINGS.items():
        out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}
                                 if not name.startswith("kubeadm:") else {}},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": k, "name": n}
                                 for k, n in subjects]})
    return out


# ------------------------------------------------------------------ identities
def service_account_user(ns, name):
    return {"name": "system:serviceaccount:%s:%s" % (ns, name),
            "groups": ["system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"]}


def user_for(name, groups=None):
    """The user the authenticator produces for a name (and groups, from a certificate's O= or impersonation)."""
    if name.startswith("system:serviceaccount:") and name.count(":") == 3 and not groups:
        _, _, ns, sa = name.split(":")
        return service_account_user(ns, sa)
    gs = list(groups or [])
    if name == "system:anonymous":
        return {"name": name, "groups": gs or ["system:unauthenticated"]}
    if "system:authenticated" not in gs:
        gs.append("system:authenticated")
    return {"name": name, "groups": gs}


ANONYMOUS = {"name": "system:anonymous", "groups": ["system:unauthenticated"]}


# ------------------------------------------------------------------ authorizer
def _subject_matches(s, user):
    kind = s.get("kind")
    if kind == "User":
        return s.get("name") == user["name"]
    if kind == "Group":
        return s.get("name") in user["groups"]
    if kind == "ServiceAccount":
        return user["name"] == "system:serviceaccount:%s:%s" % (s.get("namespace", ""), s.get("name"))
    return False


def _rule_allows(rule, attrs):
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs["verb"] not in verbs:
        return False
    if attrs.get("path") is not None:
        for u in rule.get("nonResourceURLs") or []:
            if u == "*" or u == attrs["path"] or (u.endswith("*") and attrs["path"].startswith(u[:-1])):
                return True
        return False
    if rule.get("nonResourceURLs"):
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs["group"] not in groups:
        return False
    res = attrs["resource"] + ("/" + attrs["subresource"] if attrs.get("subresource") else "")
    resources = rule.get("resources") or []
    ok = "*" in resources or res in resources or (attrs.get("subresource") and
                                                  attrs["resource"] + "/*" in resources) or \
        (attrs.get("subresource") and "*/" + attrs["subresource"] in resources)
    if not ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.get("name") in names


def _role_rules(objects, kind, ns, name):
    key = "rbac.authorization.k8s.io|%s|%s|%s" % (kind, ns or "", name)
    o = objects.get(key)
    if o is None:
        return []
    rules = list(o.get("rules") or [])
    agg = (o.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    if kind == "ClusterRole" and agg:
        for other in objects.values():
            if other.get("kind") != "ClusterRole":
                continue
            labels = other["metadata"].get("labels") or {}
            for sel in agg:
                want = sel.get("matchLabels") or {}
                if want and all(labels.get(k) == v for k, v in want.items()):
                    rules += other.get("rules") or []
                    break
    return rules


def allowed(st, user, attrs):
    """(allowed, reason) for a request by `user`. attrs: verb, and either path (a non-resource URL) or
    group/resource/subresource/namespace/name."""
    if "system:masters" in user["groups"]:
        return True, ""
    objs = st["objects"]
    for o in objs.values():
        kind = o.get("kind")
        if kind not in ("ClusterRoleBinding", "RoleBinding") or o["apiVersion"].split("/")[0] != \
                "rbac.authorization.k8s.io":
            continue
        if kind == "RoleBinding":
            ns = o["metadata"].get("namespace")
            if attrs.get("path") is not None or ns != attrs.get("namespace"):
                continue
        if not any(_subject_matches(s, user) for s in o.get("subjects") or []):
            continue
        ref = o.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            rules = _role_rules(objs, "ClusterRole", "", ref.get("name"))
        else:
            rules = _role_rules(objs, "Role", o["metadata"].get("namespace"), ref.get("name"))
        for r in rules:
            if _rule_allows(r, attrs):
                return True, 'RBAC: allowed by %s "%s" of %s "%s" to %s "%s"' % (
                    kind, o["metadata"]["name"], ref.get("kind"), ref.get("name"),
                    "Group" if any(s.get("kind") == "Group" for s in o.get("subjects") or []) else "User",
                    user["name"])
    return False, ""


def forbidden_message(user, attrs):
    """The real server's wording of a 403."""
    if attrs.get("path") is not None:
        return 'forbidden: User "%s" cannot %s path "%s"' % (user["name"], attrs["verb"], attrs["path"])
    res = attrs["resource"] + ("/" + attrs["subresource"] if attrs.get("subresource") else "")
    what = '%s%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s"' % (
        res, ' "%s"' % attrs["name"] if attrs.get("name") else "", user["name"], attrs["verb"], res, attrs["group"])
    if attrs.get("namespace"):
        return what + ' in the namespace "%s"' % attrs["namespace"]
    return what + " at the cluster scope"


def rules_review(st, user, ns):
    """SelfSubjectRulesReview status: the rules that apply to `user` in namespace `ns`."""
    if "system:masters" in user["groups"]:
        return {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
    res_rules, nonres = [], []
    objs = st["objects"]
    for o in objs.values():
        kind = o.get("kind")
        if kind not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if kind == "RoleBinding" and o["metadata"].get("namespace") != ns:
            continue
        if not any(_subject_matches(s, user) for s in o.get("subjects") or []):
            continue
        ref = o.get("roleRef") or {}
        rules = _role_rules(objs, ref.get("kind"), "" if ref.get("kind") == "ClusterRole"
                            else o["metadata"].get("namespace"), ref.get("name"))
        for r in rules:
            if r.get("nonResourceURLs"):
                nonres.append({"verbs": r.get("verbs", []), "nonResourceURLs": r["nonResourceURLs"]})
            else:
                rr = {k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames") if r.get(k)}
                res_rules.append(rr)
    return {"resourceRules": res_rules, "nonResourceRules": nonres, "incomplete": False}
