"""plugins/filter/node_inputs.py: the node labels and taints from EC2 tags and inventory variables -
parsing the tags, the messages that stop a run on bad input, and what goes to the kubelet and kubeadm."""

import importlib
import sys

import pytest


@pytest.fixture(scope="module")
def f(collection_root):
    sys.path.insert(0, str(collection_root))
    try:
        yield importlib.import_module("ansible_collections.sesacthon.kubeadm_aws.plugins.filter.node_inputs")
    finally:
        sys.path.remove(str(collection_root))


# The tags of a lab worker as the EC2 API (and the aws_ec2 inventory's ec2_tags) gives them.
WORKER_TAGS = {
    "Name": "kubeadm-aws-lab-w2",
    "kubeadm-aws/cluster": "lab",
    "kubeadm-aws/role": "worker",
    "kubernetes.io/cluster/lab": "owned",
    "k8s.io/taint/lab.sesacthon.io/dedicated": "infra:NoSchedule",
    "k8s.io/label/lab.sesacthon.io/tier": "backend",
    "k8s.io/label/node-role.kubernetes.io/infra": "",
    "k8s.io/taint/gpu": ":NoExecute",
}


# ---- tag_labels / tag_taints ----------------------------------------------------------------------
def test_tag_labels_takes_only_label_tags_sorted(f):
    labels = f.tag_labels(WORKER_TAGS)
    assert labels == {"lab.sesacthon.io/tier": "backend", "node-role.kubernetes.io/infra": ""}
    assert list(labels) == sorted(labels)


@pytest.mark.parametrize("tags", [None, {}, {"Name": "x", "k8s.io/labels/x": "y", "K8S.io/label/x": "y"}])
def test_no_label_tags(f, tags):
    assert f.tag_labels(tags) == {}
    assert f.tag_taints(tags) == []


def test_tag_taints(f):
    assert f.tag_taints(WORKER_TAGS) == [
        {"key": "gpu", "value": "", "effect": "NoExecute"},
        {"key": "lab.sesacthon.io/dedicated", "value": "infra", "effect": "NoSchedule"},
    ]


@pytest.mark.parametrize("text, value, effect", [
    ("infra:NoSchedule", "infra", "NoSchedule"),
    (":PreferNoSchedule", "", "PreferNoSchedule"),
    ("NoExecute", "", "NoExecute"),          # the effect alone
    ("infra", "", "infra"),                  # no effect: kept, reported by node_input_errors
    ("a:b:NoSchedule", "a:b", "NoSchedule"),  # split at the last ':'; the value is then invalid
    ("infra:", "infra", ""),
    ("", "", ""),
])
def test_taint_tag_values_are_never_dropped(f, text, value, effect):
    assert f.tag_taints({"k8s.io/taint/dedicated": text}) == [{"key": "dedicated", "value": value, "effect": effect}]


def test_tags_with_empty_keys_are_kept_for_the_check(f):
    tags = {"k8s.io/label/": "x", "k8s.io/taint/": "NoSchedule"}
    assert f.tag_labels(tags) == {"": "x"}
    assert f.tag_taints(tags) == [{"key": "", "value": "", "effect": "NoSchedule"}]
    errors = f.node_input_errors({"h": {"kubeadm_aws_tag_labels": f.tag_labels(tags),
                                        "kubeadm_aws_tag_taints": f.tag_taints(tags)}})
    assert len(errors) == 2 and all("the name is empty" in e for e in errors), errors


def test_tag_filters_refuse_a_non_dict(f):
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="expects the EC2 tags as a dict"):
        f.tag_labels(["k8s.io/label/x=y"])


# ---- node_input_errors ----------------------------------------------------------------------------
def hosts_from_tags(f, **tags_by_host):
    """hostvars as the inventory sets them from each host's tags."""
    return {h: {"kubeadm_aws_tag_labels": f.tag_labels(t), "kubeadm_aws_tag_taints": f.tag_taints(t)}
            for h, t in tags_by_host.items()}


def test_valid_inventory_has_no_errors(f):
    hv = hosts_from_tags(f, w1={"k8s.io/label/lab.sesacthon.io/tier": "backend"}, w2=WORKER_TAGS, cp1={})
    hv["cp1"]["kubeadm_aws_node_labels"] = {
        "node-restriction.kubernetes.io/pool": "control",  # administrators may set these in variables
        "topology.kubernetes.io/zone": "us-east-1a",
        "tier": 1, "spot": False, "node-role.kubernetes.io/etcd": None,
    }
    hv["cp1"]["kubeadm_aws_node_taints"] = [{"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"},
                                           {"key": "dedicated", "value": "etcd", "effect": "NoSchedule"}]
    assert f.node_input_errors(hv, ["w1", "w2", "cp1"]) == []
    assert f.node_input_errors(hv) == []


@pytest.mark.parametrize("key, value, fragment", [
    ("tier", "not a valid value!", "the value must be letters, digits"),
    ("-bad-key", "x", "the name '-bad-key' must be letters, digits"),
    ("tier", "a" * 64, "the value is 64 characters long, at most 63"),
    ("n" * 64, "x", "is 64 characters long, at most 63"),
    ("Example.COM/tier", "x", "the prefix 'Example.COM' must be a DNS subdomain"),
    ("a/b/c", "x", "a single '/'"),
    ("/tier", "x", "the prefix before '/' is empty"),
    ("example.com/", "x", "the name is empty"),
    ("tier", "-x", "starting and ending with a letter or digit"),
    (("a" * 60 + ".") * 4 + "example.com/tier", "x", "the prefix is 255 characters long, at most 253"),
])
def test_malformed_label_tag(f, key, value, fragment):
    hv = hosts_from_tags(f, **{"ip-10-0-0-5.ec2.internal": {"k8s.io/label/" + key: value}})
    errors = f.node_input_errors(hv)
    assert len(errors) == 1, errors
    assert errors[0].startswith("Host ip-10-0-0-5.ec2.internal: label '%s=%s' is malformed (from the EC2 tag "
                                "k8s.io/label/%s)" % (key, value, key)), errors
    assert fragment in errors[0]


def test_longest_valid_label(f):
    prefix = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters
    assert len(prefix) == 253
    key = prefix + "/" + "n" * 63
    hv = {"h": {"kubeadm_aws_node_labels": {key: "v" * 63}}}
    assert f.node_input_errors(hv) == []


def test_malformed_label_variable_names_the_variable(f):
    hv = {"h": {"kubeadm_aws_node_labels": {"tier": "a b"}}}
    assert f.node_input_errors(hv) == [
        "Host h: label 'tier=a b' is malformed (from kubeadm_aws_node_labels): the value must be letters, digits, "
        "'-', '_' and '.', starting and ending with a letter or digit."
    ]


@pytest.mark.parametrize("value, fragment", [
    (1.5, "not float"), ([1], "not list"), ({"a": 1}, "not dict"),
])
def test_label_values_of_other_types(f, value, fragment):
    errors = f.node_input_errors({"h": {"kubeadm_aws_node_labels": {"tier": value}}})
    assert len(errors) == 1 and fragment in errors[0] and "(quote it)" in errors[0], errors


def test_a_variable_overrides_a_bad_tag(f):
    """The labels a node gets are the variables merged over the tags: a tag the variable replaces is not
    applied, so it does not stop the run; the variable's value is what is checked."""
    hv = hosts_from_tags(f, h={"k8s.io/label/tier": "not valid!"})
    hv["h"]["kubeadm_aws_node_labels"] = {"tier": "backend"}
    assert f.node_input_errors(hv) == []
    hv["h"]["kubeadm_aws_node_labels"] = {"tier": "bad value"}
    assert "(from kubeadm_aws_node_labels)" in f.node_input_errors(hv)[0]


@pytest.mark.parametrize("key", [
    "node-restriction.kubernetes.io/pool",
    "kubernetes.io/hostname",
    "k8s.io/thing",
    "topology.kubernetes.io/zone",
    "foo.k8s.io/bar",
    "sub.node-restriction.kubernetes.io/x",
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
])
def test_reserved_label_keys_refused_from_tags(f, key):
    errors = f.node_input_errors(hosts_from_tags(f, w1={"k8s.io/label/" + key: "x"}))
    assert len(errors) == 1, errors
    assert errors[0].startswith("Host w1: label '%s=x' is not allowed (from the EC2 tag k8s.io/label/%s)" % (key, key))
    assert "set it in kubeadm_aws_node_labels instead" in errors[0]


def test_node_restriction_message(f):
    errors = f.node_input_errors(hosts_from_tags(f, w1={"k8s.io/label/node-restriction.kubernetes.io/pool": "x"}))
    assert "node-restriction.kubernetes.io/ keys are reserved for labels the nodes must not choose" in errors[0]


@pytest.mark.parametrize("key", [
    "node-role.kubernetes.io/infra", "node.kubernetes.io/exclude-from-external-load-balancers",
    "kubelet.kubernetes.io/x", "kubernetes.io.example.com/x", "example-k8s.io/x", "k8s.io.example/x",
])
def test_label_keys_tags_may_set(f, key):
    assert f.node_input_errors(hosts_from_tags(f, w1={"k8s.io/label/" + key: ""})) == []


def test_control_plane_role_refused_from_tags_allowed_from_variables(f):
    """A tag must not draw control-plane workloads (pinned to node-role.kubernetes.io/control-plane) to a
    worker; the inventory's administrators may still set it."""
    hv = hosts_from_tags(f, w1={"k8s.io/label/node-role.kubernetes.io/control-plane": "",
                                "k8s.io/taint/node-role.kubernetes.io/control-plane": "NoSchedule"})
    errors = f.node_input_errors(hv)
    assert len(errors) == 2, errors
    assert "what control-plane workloads are pinned to" in errors[0]
    assert errors[1].startswith("Host w1: taint 'node-role.kubernetes.io/control-plane:NoSchedule' is not allowed")
    hv["w1"] = {"kubeadm_aws_node_labels": {"node-role.kubernetes.io/control-plane": ""}}
    assert f.node_input_errors(hv) == []


def test_reserved_taint_keys_from_tags(f):
    hv = hosts_from_tags(f, w1={
        "k8s.io/taint/node.kubernetes.io/unreachable": "NoExecute",
        "k8s.io/taint/node-restriction.kubernetes.io/x": "NoSchedule",
        "k8s.io/taint/node-role.kubernetes.io/infra": "NoSchedule",  # allowed
    })
    errors = f.node_input_errors(hv)
    assert len(errors) == 2, errors
    assert errors[0].startswith("Host w1: taint 'node-restriction.kubernetes.io/x:NoSchedule' is not allowed")
    assert errors[1].startswith("Host w1: taint 'node.kubernetes.io/unreachable:NoExecute' is not allowed "
                                "(from the EC2 tag k8s.io/taint/node.kubernetes.io/unreachable)")
    assert "set it in kubeadm_aws_node_taints instead" in errors[1]


@pytest.mark.parametrize("text, fragment", [
    ("infra", "the effect 'infra' must be NoSchedule, PreferNoSchedule or NoExecute"),
    ("infra:noschedule", "the effect 'noschedule' must be"),
    ("a:b:NoSchedule", "the value must be letters"),
    ("", "the effect '' must be"),
    ("%s:NoSchedule" % ("v" * 64), "the value is 64 characters long"),
])
def test_malformed_taint_tag(f, text, fragment):
    errors = f.node_input_errors(hosts_from_tags(f, w2={"k8s.io/taint/dedicated": text}))
    assert len(errors) == 1, errors
    assert errors[0].startswith("Host w2: taint 'dedicated")
    assert "is malformed (from the EC2 tag k8s.io/taint/dedicated)" in errors[0]
    assert fragment in errors[0]


@pytest.mark.parametrize("taint, fragment", [
    ({"key": "gpu"}, "the effect None must be"),
    ({"effect": "NoSchedule"}, "the name is empty"),
    ({"key": "gpu", "effect": "NoSchedule", "operator": "Exists"}, "unknown fields operator"),
    ({"key": "gpu", "value": 2.5, "effect": "NoSchedule"}, "not float"),
    ("gpu:NoSchedule", "each taint is a dict"),
])
def test_malformed_taint_variable(f, taint, fragment):
    errors = f.node_input_errors({"cp1": {"kubeadm_aws_node_taints": [taint]}})
    assert len(errors) == 1, errors
    assert errors[0].startswith("Host cp1: taint ")
    assert "kubeadm_aws_node_taints" in errors[0] and fragment in errors[0], errors


def test_wrong_variable_types(f):
    errors = f.node_input_errors({"h": {"kubeadm_aws_node_labels": ["tier=x"], "kubeadm_aws_node_taints": {"a": 1}}})
    assert errors == [
        "Host h: kubeadm_aws_node_labels must be a dict of label key: value, got list",
        "Host h: kubeadm_aws_node_taints must be a list of {key, value, effect}, got dict",
    ]


def test_duplicate_taint_between_tag_and_variable(f):
    hv = hosts_from_tags(f, w1={"k8s.io/taint/gpu": "yes:NoSchedule"})
    hv["w1"]["kubeadm_aws_node_taints"] = [{"key": "gpu", "value": "no", "effect": "NoSchedule"},
                                          {"key": "gpu", "effect": "NoExecute"}]  # other effect: fine
    errors = f.node_input_errors(hv)
    assert errors == [
        "Host w1: taint 'gpu=no:NoSchedule' (from kubeadm_aws_node_taints) is given twice, also from the EC2 tag "
        "k8s.io/taint/gpu: Kubernetes allows one taint per key and effect."
    ]


def test_every_problem_of_every_host_in_host_order(f):
    hv = hosts_from_tags(f, 
        b={"k8s.io/label/tier": "bad value", "k8s.io/taint/x": "NoWay"},
        a={"k8s.io/label/node-restriction.kubernetes.io/x": "y"},
        c={"k8s.io/label/fine": "ok"},
    )
    errors = f.node_input_errors(hv, ["a", "b", "c"])
    assert [e.split(":")[0] for e in errors] == ["Host a", "Host b", "Host b"]


def test_null_and_missing_variables_are_empty(f):
    hv = {"h": {"kubeadm_aws_tag_labels": None, "kubeadm_aws_node_taints": None}, "g": {}}
    assert f.node_input_errors(hv, ["h", "g", "not-in-hostvars"]) == []


def test_node_input_errors_argument_checks(f):
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="expects hostvars"):
        f.node_input_errors(["h"])
    with pytest.raises(AnsibleFilterError, match="list of host names"):
        f.node_input_errors({}, "h1")


# ---- split_node_labels / kubelet_extra_args / kubeadm_taints ---------------------------------------
def test_split_node_labels(f):
    labels = {
        "lab.sesacthon.io/tier": "backend",
        "node-role.kubernetes.io/worker": "",
        "node.kubernetes.io/pool": "a",
        "kubelet.kubernetes.io/x": "1",
        "sub.node.kubernetes.io/y": "2",
        "topology.kubernetes.io/zone": "us-east-1a",
        "kubernetes.io/role": "x",
        "k8s.io/z": "z",
        "node-restriction.kubernetes.io/pool": "p",
        "kubernetes.io.example.com/ok": "3",
        "count": 4,
        "gpu": True,
        "empty": None,
    }
    assert f.split_node_labels(labels) == {
        "self": {"count": "4", "empty": "", "gpu": "true", "kubelet.kubernetes.io/x": "1",
                 "kubernetes.io.example.com/ok": "3", "lab.sesacthon.io/tier": "backend",
                 "node.kubernetes.io/pool": "a", "sub.node.kubernetes.io/y": "2"},
        "controlled": {"k8s.io/z": "z", "kubernetes.io/role": "x", "node-restriction.kubernetes.io/pool": "p",
                       "node-role.kubernetes.io/worker": "", "topology.kubernetes.io/zone": "us-east-1a"},
    }


def test_split_node_labels_empty(f):
    assert f.split_node_labels({}) == {"self": {}, "controlled": {}}
    assert f.split_node_labels(None) == {"self": {}, "controlled": {}}


def test_kubelet_extra_args(f):
    args = {"node-ip": "10.213.0.21", "node-labels": "tier=backend", "cloud-provider": "", "v": 2, "x": None}
    assert f.kubelet_extra_args(args) == [
        {"name": "node-ip", "value": "10.213.0.21"},
        {"name": "node-labels", "value": "tier=backend"},
        {"name": "v", "value": "2"},
    ]
    assert f.kubelet_extra_args({}) == [] and f.kubelet_extra_args(None) == []


def test_kubeadm_taints(f):
    taints = [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        {"key": "gpu", "value": "", "effect": "NoExecute"},
        {"key": "dedicated", "value": "infra", "effect": "NoSchedule"},
        {"key": "gpu", "value": "x", "effect": "NoExecute"},  # same key and effect: the first wins
    ]
    assert f.kubeadm_taints(taints) == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        {"key": "gpu", "effect": "NoExecute"},
        {"key": "dedicated", "value": "infra", "effect": "NoSchedule"},
    ]
    assert f.kubeadm_taints([]) == [] and f.kubeadm_taints(None) == []


def test_every_filter_is_exported(f):
    assert set(f.FilterModule().filters()) == {
        "tag_labels", "tag_taints", "node_input_errors", "split_node_labels", "kubelet_extra_args", "kubeadm_taints"}
