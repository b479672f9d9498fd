"""Bad input stops playbooks/site.yml in its first play, before any host changes, with a message
naming the problem. Runs on the bare lab nodes (molecule prepare step, before converge)."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import recap, run_playbook, tags_of

MARKER = "/etc/modules-load.d/kubernetes.conf"  # the first file os_prep writes


def _nodes_untouched(instances) -> None:
    for i in instances:
        container = tags_of(i)["lab/container"]
        probe = subprocess.run(["docker", "exec", container, "test", "-e", MARKER], capture_output=True)
        assert probe.returncode != 0, f"{container} was changed: {MARKER} exists"


def _assert_stopped_early(proc, message: str, instances) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert message in out, f"expected {message!r} in:\n{out[-3000:]}"
    hosts = recap(proc.stdout)
    assert hosts, out[-2000:]
    assert all(h["changed"] == 0 for h in hosts.values()), hosts
    assert "Prepare the nodes" not in proc.stdout, "the run went past the input checks"
    _nodes_untouched(instances)


@pytest.fixture(scope="module", autouse=True)
def bare(instances):
    _nodes_untouched(instances)


def test_no_cluster_name(instances, lab_env):
    p = run_playbook("site.yml", "-e", "kubeadm_aws_cluster_name=")
    _assert_stopped_early(p, "kubeadm_aws_cluster_name '' is not a valid cluster name", instances)


def test_unsupported_kubernetes_version(instances, lab_env):
    p = run_playbook("site.yml", "-e", "kubeadm_aws_kubernetes_version=1.29.4")
    _assert_stopped_early(p, "kubeadm_aws_kubernetes_version '1.29.4' is not supported", instances)


def test_bad_role_variable(instances, lab_env):
    p = run_playbook("site.yml", "-e", "container_runtime_source=tarball")
    _assert_stopped_early(p, "value of container_runtime_source must be one of: release, distro, docker, got: tarball",
                          instances)


def test_empty_control_plane_group(instances, ec2, lab_env):
    cps = [i for i in instances if tags_of(i)["kubeadm-aws/role"] == "control-plane"]
    ids = [i["InstanceId"] for i in cps]
    ec2.create_tags(Resources=ids, Tags=[{"Key": "kubeadm-aws/role", "Value": "etcd"}])
    try:
        p = run_playbook("site.yml")
        _assert_stopped_early(p, "The inventory group 'kube_control_plane' is empty",
                              instances)
    finally:
        ec2.create_tags(Resources=ids, Tags=[{"Key": "kubeadm-aws/role", "Value": "control-plane"}])


@pytest.mark.parametrize(
    "tag,value,message",
    [
        ("k8s.io/label/tier", "not a valid value!", "label 'tier=not a valid value!' is malformed"),
        ("k8s.io/label/-bad-key", "x", "label '-bad-key=x' is malformed"),
        ("k8s.io/taint/dedicated", "infra", "is malformed (from the EC2 tag k8s.io/taint/"),
        ("k8s.io/label/node-role.kubernetes.io/control-plane", "", "what control-plane workloads are pinned to"),
    ],
)
def test_malformed_label_or_taint_tag(instances, ec2, lab_env, tag, value, message):
    worker = next(i for i in instances if tags_of(i)["kubeadm-aws/role"] == "worker")
    ec2.create_tags(Resources=[worker["InstanceId"]], Tags=[{"Key": tag, "Value": value}])
    try:
        p = run_playbook("site.yml")
        _assert_stopped_early(p, message, instances)
        assert worker["PrivateDnsName"] in p.stdout  # the message names the host
    finally:
        ec2.delete_tags(Resources=[worker["InstanceId"]], Tags=[{"Key": tag}])


# Settings that kubeadm, the API server or the controller manager would refuse late or take with
# another meaning: each is refused in the first play, naming the variable (plugins/filter/settings_checks.py).
@pytest.mark.parametrize(
    "extra,message",
    [
        ("kubeadm_aws_token_ttl=0", "kubeadm_aws_token_ttl '0' is not a usable token lifetime"),
        ("kubeadm_aws_token_ttl=forever", "kubeadm_aws_token_ttl 'forever' is not a usable token lifetime"),
        ("kubeadm_aws_token_ttl=1d", "kubeadm_aws_token_ttl '1d' is not a usable token lifetime"),
        ("kubeadm_aws_token_min_ttl=7200", "kubeadm_aws_token_min_ttl (7200 s) must be less than kubeadm_aws_token_ttl"),
        ("kubeadm_aws_control_plane_endpoint=api.example.com",
         "kubeadm_aws_control_plane_endpoint 'api.example.com' must be host:port"),
        ("kubeadm_aws_pod_subnet=banana", "kubeadm_aws_pod_subnet 'banana' is not an IPv4 network"),
        ("kubeadm_aws_pod_subnet=10.96.0.0/16",
         "kubeadm_aws_pod_subnet 10.96.0.0/16 and kubeadm_aws_service_subnet 10.96.0.0/12 overlap"),
        ("kubeadm_aws_service_subnet=10.0.0.0/8", "kubeadm_aws_service_subnet 10.0.0.0/8 is too large"),
        ("kubeadm_aws_cluster_name=other", "does not match kubeadm_aws_cluster_name 'other'"),
        ("kubeadm_aws_region=eu-west-1", "but kubeadm_aws_region is eu-west-1"),
    ],
)
def test_bad_setting(instances, lab_env, extra, message):
    p = run_playbook("site.yml", "-e", extra)
    _assert_stopped_early(p, message, instances)


def test_unknown_role_tag(instances, ec2, lab_env):
    worker = next(i for i in instances if tags_of(i)["kubeadm-aws/role"] == "worker")
    ec2.create_tags(Resources=[worker["InstanceId"]], Tags=[{"Key": "kubeadm-aws/role", "Value": "wroker"}])
    try:
        p = run_playbook("site.yml")
        _assert_stopped_early(p, f"Host {worker['PrivateDnsName']}: tag kubeadm-aws/role=wroker is not one of", instances)
    finally:
        ec2.create_tags(Resources=[worker["InstanceId"]], Tags=[{"Key": "kubeadm-aws/role", "Value": "worker"}])


def test_inventory_without_hosts_fails(instances, lab_env):
    """KUBEADM_AWS_CLUSTER naming no cluster: the inventory is empty, and the run fails instead of
    skipping every play and exiting 0."""
    p = run_playbook("site.yml", env={"KUBEADM_AWS_CLUSTER": "no-such-cluster"})
    out = p.stdout + p.stderr
    assert p.returncode != 0, out[-2000:]
    assert "The inventory holds no host in group 'kube_cluster'" in out, out[-2000:]
    _nodes_untouched(instances)


def test_version_other_than_the_recorded_cluster_is_refused(instances, ssm, lab_env):
    """A cluster SSM records at another version (init/state's kubernetes_version, what the first play reads
    when the cluster's own kubeadm-config cannot be read): site.yml neither upgrades nor downgrades, it
    names both versions and points to playbooks/upgrade.yml. The first control plane's kubeadm-config is
    compared the same way on a running cluster (tests/faults/test_running_cluster.py)."""
    name = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}/init/state"
    cp1 = next(i for i in instances if tags_of(i)["kubeadm-aws/role"] == "control-plane")
    ssm.put_parameter(Name=name, Type="String", Overwrite=True, Value=json.dumps({
        "schema": 1, "state": "initialized", "holder": f"{cp1['PrivateDnsName']}/test-bad-input",
        "kubernetes_version": "v1.35.2", "initialized_at": "2026-01-01T00:00:00Z"}))
    try:
        p = run_playbook("site.yml")
        _assert_stopped_early(p, "kubeadm_aws_kubernetes_version 1.36.3 differs from the version the cluster runs, "
                                 "v1.35.2 (SSM init/state)", instances)
        assert "playbooks/upgrade.yml -e kubeadm_aws_kubernetes_version=1.36.3" in p.stdout
        version = ssm.get_parameter(Name=name)["Parameter"]["Version"]
        assert version == 1, "init/state was written by the refused run"
    finally:
        ssm.delete_parameter(Name=name)
