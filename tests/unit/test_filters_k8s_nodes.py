"""plugins/filter/k8s_nodes.py: which nodes are Ready, and which labels a patch must still set, from the
Node objects kubernetes.core.k8s_info returns."""

import importlib
import sys

import pytest


@pytest.fixture(scope="module")
def f(collection_root):
    sys.path.insert(0, str(collection_root))
    try:
        yield importlib.import_module("ansible_collections.sesacthon.kubeadm_aws.plugins.filter.k8s_nodes")
    finally:
        sys.path.remove(str(collection_root))


def node(name, ready="True", labels=None, conditions=None):
    """A Node object as the API returns it (trimmed to the fields that matter)."""
    if conditions is None:
        conditions = [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            {"type": "DiskPressure", "status": "False"},
            {"type": "PIDPressure", "status": "False"},
            {"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "KubeletNotReady"},
        ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})},
        },
        "spec": {"providerID": "aws:///us-east-1a/i-0123"},
        "status": {"conditions": conditions, "nodeInfo": {"kubeletVersion": "v1.36.3"}},
    }


def test_ready_node_names(f):
    nodes = [
        node("ip-10-0-0-10.ec2.internal"),
        node("ip-10-0-0-21.ec2.internal", ready="False"),
        node("ip-10-0-0-22.ec2.internal", ready="Unknown"),
        node("ip-10-0-0-23.ec2.internal"),
    ]
    assert f.ready_node_names(nodes) == ["ip-10-0-0-10.ec2.internal", "ip-10-0-0-23.ec2.internal"]


def test_just_registered_nodes_are_not_ready(f):
    fresh = {"metadata": {"name": "n1"}}  # no status yet
    no_conditions = {"metadata": {"name": "n2"}, "status": {}}
    null_conditions = {"metadata": {"name": "n3"}, "status": {"conditions": None}}
    no_ready = node("n4", conditions=[{"type": "DiskPressure", "status": "False"}])
    assert f.ready_node_names([fresh, no_conditions, null_conditions, no_ready, node("n5")]) == ["n5"]


@pytest.mark.parametrize("value", [None, []])
def test_no_nodes(f, value):
    assert f.ready_node_names(value) == []


def test_ready_node_names_refuses_other_input(f):
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="expects a list of Node objects"):
        f.ready_node_names({"resources": []})
    with pytest.raises(AnsibleFilterError, match="is not a Node object"):
        f.ready_node_names(["n1"])


WANTED = {
    "cp1": {},
    "w1": {"node-role.kubernetes.io/worker": ""},
    "w2": {"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/infra": ""},
}


def test_labels_to_patch_first_run(f):
    nodes = [node("cp1", labels={"node-role.kubernetes.io/control-plane": ""}), node("w1"), node("w2")]
    assert f.labels_to_patch(nodes, WANTED) == {
        "w1": {"node-role.kubernetes.io/worker": ""},
        "w2": {"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/infra": ""},
    }


def test_labels_to_patch_rerun_is_empty(f):
    nodes = [node("cp1"), node("w1", labels=WANTED["w1"]), node("w2", labels={**WANTED["w2"], "extra": "kept"})]
    assert f.labels_to_patch(nodes, WANTED) == {}


def test_labels_to_patch_only_what_differs(f):
    current = {"w1": {"tier": "frontend", "zone": "a", "count": "3"}, "w2": {"tier": "backend"}}
    wanted = {"w1": {"tier": "backend", "zone": "a", "count": 3, "gpu": True}, "w2": {"tier": "backend"}}
    assert f.labels_to_patch(current, wanted) == {"w1": {"tier": "backend", "gpu": "true"}}


def test_labels_to_patch_unknown_node_is_kept(f):
    """A node the API does not have is returned, so the patch fails naming it."""
    assert f.labels_to_patch([node("w1")], {"w9": {"a": "b"}}) == {"w9": {"a": "b"}}
    assert f.labels_to_patch(None, {"w9": {"a": "b"}, "w8": None}) == {"w9": {"a": "b"}}


def test_labels_to_patch_nodes_without_labels(f):
    bare = {"metadata": {"name": "w1"}}
    assert f.labels_to_patch([bare], {"w1": {"a": "b"}}) == {"w1": {"a": "b"}}
    assert f.labels_to_patch([bare], {}) == {}
    assert f.labels_to_patch([], None) == {}


def test_labels_to_patch_refuses_other_input(f):
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="current labels"):
        f.labels_to_patch("w1", {})
    with pytest.raises(AnsibleFilterError, match="is not a Node object"):
        f.labels_to_patch([{"kind": "Node"}], {})
    with pytest.raises(AnsibleFilterError, match="wanted labels as a dict"):
        f.labels_to_patch({}, [])
    with pytest.raises(AnsibleFilterError, match="wanted labels of w1 are not a dict"):
        f.labels_to_patch({}, {"w1": ["a=b"]})


def test_every_filter_is_exported(f):
    assert set(f.FilterModule().filters()) == {"ready_node_names", "labels_to_patch"}
