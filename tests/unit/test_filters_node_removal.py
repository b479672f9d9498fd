"""plugins/filter/node_removal.py: which node a removal targets and when it is refused, the etcd quorum
rule as the playbooks see it, and which pods keep a drain from finishing."""

import importlib
import sys

import pytest
from ansible.errors import AnsibleFilterError


@pytest.fixture(scope="module")
def f(collection_root):
    sys.path.insert(0, str(collection_root))
    try:
        yield importlib.import_module("ansible_collections.sesacthon.kubeadm_aws.plugins.filter.node_removal")
    finally:
        sys.path.remove(str(collection_root))


def node(name, ip, cp=False, ready=True, instance="i-0123456789abcdef0"):
    labels = {"kubernetes.io/hostname": name}
    if cp:
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"providerID": "aws:///us-east-1a/%s" % instance},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]}}


CP1, CP2, W1, W2 = "ip-10-0-0-11.ec2.internal", "ip-10-0-0-12.ec2.internal", "ip-10-0-0-21.ec2.internal", "ip-10-0-0-22.ec2.internal"
HOSTVARS = {
    CP1: {"ec2_instance_id": "i-cp1", "ec2_private_ip_address": "10.0.0.11"},
    CP2: {"ec2_instance_id": "i-cp2", "ec2_private_ip_address": "10.0.0.12"},
    W1: {"ec2_instance_id": "i-w1", "ec2_private_ip_address": "10.0.0.21"},
}
GROUPS = {"kube_control_plane": [CP1, CP2], "kube_workers": [W1], "kube_cluster": [CP1, CP2, W1]}
NODES = [node(CP1, "10.0.0.11", cp=True), node(CP2, "10.0.0.12", cp=True), node(W1, "10.0.0.21"),
         node(W2, "10.0.0.22", ready=False, instance="i-w2")]
RECORDS = [{"node_name": W2, "role": "worker", "instance_id": "i-w2"},
           {"node_name": "ip-10-0-0-23.ec2.internal", "role": "worker", "instance_id": "i-w3"}]


def test_a_running_worker(f):
    t = f.removal_target(W1, HOSTVARS, GROUPS, NODES, RECORDS, "lb.example.com:6443")
    assert t["errors"] == [] and t["known"] and t["in_inventory"] and t["node_exists"] and t["ready"]
    assert (t["role"], t["instance_id"], t["address"]) == ("worker", "i-w1", "10.0.0.21")


def test_a_worker_whose_instance_is_gone_is_known_from_its_node_object(f):
    t = f.removal_target(W2, HOSTVARS, GROUPS, NODES, RECORDS)
    assert t["errors"] == [] and not t["in_inventory"] and t["node_exists"] and not t["ready"]
    assert (t["role"], t["instance_id"], t["address"]) == ("worker", "i-w2", "10.0.0.22")


def test_a_node_known_only_from_ssm(f):
    t = f.removal_target("ip-10-0-0-23.ec2.internal", HOSTVARS, GROUPS, NODES, RECORDS)
    assert t["errors"] == [] and t["known"] and not t["node_exists"] and t["instance_id"] == "i-w3"


def test_an_unknown_node_is_refused_naming_the_known_ones(f):
    t = f.removal_target("ip-10-0-0-99.ec2.internal", HOSTVARS, GROUPS, NODES, RECORDS)
    assert not t["known"] and len(t["errors"]) == 1
    assert "unknown node ip-10-0-0-99.ec2.internal" in t["errors"][0] and W2 in t["errors"][0]
    assert "no node given" in f.removal_target("", HOSTVARS, GROUPS, NODES, RECORDS)["errors"][0]
    assert "no node given" in f.removal_target(None, HOSTVARS, GROUPS)["errors"][0]


def test_a_control_plane_with_another_left(f):
    t = f.removal_target(CP2, HOSTVARS, GROUPS, NODES, RECORDS, "lb.example.com:6443")
    assert t["errors"] == [] and t["role"] == "control-plane" and t["control_planes_left"] == [CP1]


def test_the_last_control_plane_is_refused(f):
    groups = {"kube_control_plane": [CP1], "kube_workers": [W1], "kube_cluster": [CP1, W1]}
    t = f.removal_target(CP1, HOSTVARS, groups, [node(CP1, "10.0.0.11", cp=True), node(W1, "10.0.0.21")], [])
    assert any("last control plane" in e for e in t["errors"]), t


def test_the_control_plane_that_is_the_api_endpoint_is_refused(f):
    for endpoint in ("10.0.0.11:6443", CP1 + ":6443"):
        t = f.removal_target(CP1, HOSTVARS, GROUPS, NODES, RECORDS, endpoint)
        assert any("serves the cluster's API endpoint %s" % endpoint in e for e in t["errors"]), t
    assert f.removal_target(CP2, HOSTVARS, GROUPS, NODES, RECORDS, "10.0.0.11:6443")["errors"] == []
    assert f.removal_target(CP1, HOSTVARS, GROUPS, NODES, RECORDS, "[fd00::1]:6443")["errors"] == []


def test_a_control_plane_known_only_by_its_label(f):
    groups = {"kube_control_plane": [CP1], "kube_workers": [W1], "kube_cluster": [CP1, W1]}
    t = f.removal_target(CP2, HOSTVARS, groups, NODES, [], "lb:6443")
    assert t["role"] == "control-plane" and not t["in_inventory"] and t["control_planes_left"] == [CP1]


def test_etcd_removal_problem(f):
    members = [{"name": CP1, "healthy": True, "peer_urls": ["https://10.0.0.11:2380"]},
               {"name": CP2, "healthy": True, "peer_urls": ["https://10.0.0.12:2380"]},
               {"name": "", "healthy": False, "learner": False, "peer_urls": ["https://10.0.0.13:2380"]}]
    assert "below the quorum of 2" in f.etcd_removal_problem(members, CP2)
    assert f.etcd_removal_problem(members, CP2, force=True) == ""
    assert f.etcd_removal_problem(members, "ip-10-0-0-13.ec2.internal", "10.0.0.13") == ""
    assert f.etcd_removal_problem(members, W1, "10.0.0.21") == ""
    assert "last voting etcd member" in f.etcd_removal_problem(members[:1], CP1)
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        f.etcd_removal_problem("members", CP1)


def pod(ns, name, owner=None, mirror=False, phase="Running"):
    meta = {"namespace": ns, "name": name}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x"}]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    return {"metadata": meta, "status": {"phase": phase}}


def test_drain_blocking_pods(f):
    pods = [pod("kube-system", "kube-proxy-x", owner="DaemonSet"), pod("kube-system", "etcd-cp1", mirror=True),
            pod("web", "web-7d9-b", owner="ReplicaSet"), pod("web", "web-7d9-a", owner="ReplicaSet"),
            pod("jobs", "done-1", owner="Job", phase="Succeeded"), pod("default", "bare")]
    assert f.drain_blocking_pods(pods) == ["default/bare", "web/web-7d9-a", "web/web-7d9-b"]
    assert f.drain_blocking_pods([]) == [] and f.drain_blocking_pods(None) == []
    with pytest.raises(AnsibleFilterError, match="expects Pod objects"):
        f.drain_blocking_pods(["x"])


# ------------------------------------------------------------------------------------------------
# stale_node_records
# ------------------------------------------------------------------------------------------------
def test_stale_records_are_those_whose_instance_is_gone(f):
    records = [{"node_name": W1, "instance_id": "i-1", "status": "joined"},
               {"node_name": W2, "instance_id": "i-2", "status": "failed"},
               {"node_name": CP1, "instance_id": "i-3", "status": "joined"}]
    instances = [{"instance_id": "i-1", "state": {"name": "running"}}, {"instance_id": "i-3"}]
    assert [r["node_name"] for r in f.stale_node_records(records, instances)] == [W2]


def test_stale_records_take_ids_or_describe_instances_shapes(f):
    records = [{"node_name": W1, "instance_id": "i-1"}, {"node_name": W2, "instance_id": "i-2"}]
    assert f.stale_node_records(records, ["i-1", {"InstanceId": "i-2"}]) == []
    assert [r["node_name"] for r in f.stale_node_records(records, [])] == [W1, W2]


def test_a_record_without_an_instance_id_is_never_stale(f):
    assert f.stale_node_records([{"node_name": W1}, {"node_name": W2, "instance_id": ""}], []) == []


def test_stale_records_refuse_what_is_not_a_list_of_records(f):
    with pytest.raises(AnsibleFilterError):
        f.stale_node_records("i-1", [])
    with pytest.raises(AnsibleFilterError):
        f.stale_node_records(["ip-10-0-0-1"], [])
