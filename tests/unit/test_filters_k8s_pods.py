"""plugins/filter/k8s_pods.py: which nodes run a Ready (or not Ready) pod."""

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
from k8s_pods import pod_node_names  # noqa: E402


def _pod(node, ready):
    conditions = [{"type": "Initialized", "status": "True"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": "True" if ready else "False"})
    return {"metadata": {"name": "etcd-" + str(node)}, "spec": {"nodeName": node}, "status": {"conditions": conditions}}


def test_ready_and_unready_members():
    pods = [_pod("cp-b", True), _pod("cp-a", True), _pod("cp-c", False), _pod("cp-d", None)]
    assert pod_node_names(pods) == ["cp-a", "cp-b"]
    assert pod_node_names(pods, ready=False) == ["cp-c", "cp-d"]


def test_unscheduled_and_empty():
    pending = {"metadata": {"name": "x"}, "spec": {}, "status": {}}
    assert pod_node_names([pending]) == []
    assert pod_node_names([pending], ready=False) == []
    assert pod_node_names([]) == []
    assert pod_node_names(None) == []


def test_wrong_input_is_named():
    with pytest.raises(AnsibleFilterError, match="expects a list of Pod objects, got str"):
        pod_node_names("etcd")
