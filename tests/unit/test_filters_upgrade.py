"""plugins/filter/upgrade.py: which upgrades are refused (naming both versions or the node), and what is
left of an upgrade that was interrupted."""

import importlib
import sys

import pytest
from ansible.errors import AnsibleFilterError


@pytest.fixture(scope="module")
def f(collection_root):
    sys.path.insert(0, str(collection_root))
    try:
        yield importlib.import_module("ansible_collections.sesacthon.kubeadm_aws.plugins.filter.upgrade")
    finally:
        sys.path.remove(str(collection_root))


def node(name, kubelet, ready=True, unschedulable=False):
    return {"metadata": {"name": name}, "spec": {"unschedulable": True} if unschedulable else {},
            "status": {"nodeInfo": {"kubeletVersion": kubelet},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


NODES = [node("cp1", "v1.36.3"), node("w1", "v1.36.3"), node("w2", "v1.35.4")]


def test_the_next_minor(f):
    p = f.upgrade_plan("1.37.2", "v1.36.3", NODES)
    assert p["errors"] == [] and p["apply"] and p["pending"] == ["cp1", "w1", "w2"] and not p["done"]
    assert (p["current"], p["target"], p["kubelets"]["w2"]) == ("v1.36.3", "v1.37.2", "v1.35.4")


def test_a_patch_release(f):
    assert f.upgrade_plan("v1.36.5", "v1.36.3", NODES)["errors"] == []


@pytest.mark.parametrize("target, words", [
    ("1.38.0", ["v1.36.3 to v1.38.0 skips 1.37", "one minor at a time"]),
    ("1.39.1", ["skips 1.37, 1.38"]),
    ("1.35.9", ["v1.36.3 to v1.35.9 is a downgrade"]),
    ("1.36.1", ["v1.36.3 to v1.36.1 is a downgrade"]),
    ("2.0.0", ["another major version"]),
])
def test_refused(f, target, words):
    errors = f.upgrade_plan(target, "v1.36.3", NODES)["errors"]
    assert len(errors) >= 1
    for w in words:
        assert w in errors[0], errors


def test_kubelet_skew_and_readiness(f):
    old = [node("cp1", "v1.36.3"), node("w9", "v1.33.0")]
    assert any("w9 runs kubelet v1.33.0, more than 3 minors behind v1.37.2" in e for e in f.upgrade_plan("1.37.2", "v1.36.3", old)["errors"])
    assert f.upgrade_plan("1.36.5", "v1.36.3", old)["errors"] == []
    newer = [node("cp1", "v1.36.3"), node("w1", "v1.37.0")]
    assert any("newer than v1.36.5" in e for e in f.upgrade_plan("1.36.5", "v1.36.3", newer)["errors"])
    sick = [node("cp1", "v1.36.3"), node("w1", "v1.36.3", ready=False)]
    assert any("node w1 is not Ready" in e for e in f.upgrade_plan("1.37.2", "v1.36.3", sick)["errors"])


def test_an_interrupted_upgrade_continues(f):
    half = [node("cp1", "v1.37.2"), node("w1", "v1.37.2", unschedulable=True), node("w2", "v1.36.3")]
    p = f.upgrade_plan("1.37.2", "v1.37.2", half)
    assert p["errors"] == [] and not p["apply"] and p["pending"] == ["w2"] and p["cordoned"] == ["w1"] and not p["done"]
    done = f.upgrade_plan("1.37.2", "v1.37.2", [node("cp1", "v1.37.2"), node("w1", "v1.37.2")])
    assert done["done"] and done["pending"] == [] and done["errors"] == []


def test_bad_versions_are_named(f):
    with pytest.raises(AnsibleFilterError, match="target 'latest' is not a Kubernetes version"):
        f.upgrade_plan("latest", "v1.36.3")
    with pytest.raises(AnsibleFilterError, match="kubelet version of w1"):
        f.upgrade_plan("1.37.2", "v1.36.3", [node("w1", "")])
