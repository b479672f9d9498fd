"""plugins/filter/autoscaling.py: which lifecycle actions to complete, the asg role's input checks, the
group's tags, the instances a group is terminating, the expired tokens to delete, the rotation threshold."""

import base64
import importlib
import sys

import pytest
from ansible.errors import AnsibleFilterError


@pytest.fixture(scope="module")
def f(collection_root):
    sys.path.insert(0, str(collection_root))
    try:
        yield importlib.import_module("ansible_collections.sesacthon.kubeadm_aws.plugins.filter.autoscaling")
    finally:
        sys.path.remove(str(collection_root))


def asg_instance(instance_id, state, group="prod-workers"):
    """An entry of amazon.aws.autoscaling_instance_info's auto_scaling_instances."""
    return {"instance_id": instance_id, "auto_scaling_group_name": group, "lifecycle_state": state,
            "availability_zone": "eu-west-1a", "health_status": "Healthy", "protected_from_scale_in": False}


def test_lifecycle_actions_only_for_instances_waiting_in_the_hook(f):
    instances = [asg_instance("i-2", "Pending:Wait"), asg_instance("i-1", "Pending:Wait", "other"),
                 asg_instance("i-3", "InService"), asg_instance("i-4", "Terminating:Wait")]
    outcomes = {"i-1": "CONTINUE", "i-2": "ABANDON", "i-3": "CONTINUE", "i-4": "CONTINUE", "i-static": "CONTINUE"}
    got = f.lifecycle_actions(instances, outcomes, "launch", "kubeadm-aws-launch")
    assert got == [
        {"instance_id": "i-1", "group": "other", "hook": "kubeadm-aws-launch", "result": "CONTINUE"},
        {"instance_id": "i-2", "group": "prod-workers", "hook": "kubeadm-aws-launch", "result": "ABANDON"},
    ]
    # i-static is in no group (DescribeAutoScalingInstances does not return it): nothing to do.
    assert f.lifecycle_actions(instances, {"i-4": "CONTINUE"}, "terminate", "t") == [
        {"instance_id": "i-4", "group": "prod-workers", "hook": "t", "result": "CONTINUE"}]
    assert f.lifecycle_actions([], {"i-1": "CONTINUE"}, "launch", "h") == []
    assert f.lifecycle_actions(None, None, "launch", "h") == []


@pytest.mark.parametrize("args, message", [
    (([], {"i-1": "GO"}, "launch", "h"), "not CONTINUE or ABANDON"),
    (([], {}, "boot", "h"), "launch or terminate"),
    (([], {}, "launch", ""), "hook's name is empty"),
    (("text", {}, "launch", "h"), "expected a list"),
])
def test_lifecycle_actions_bad_input(f, args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        f.lifecycle_actions(*args)


GOOD = {"image_id": "ami-0123456789abcdef0", "subnet_ids": ["subnet-1"], "min_size": 0, "max_size": 5,
        "desired_capacity": 2, "mode": "callback",
        "callback_url": "https://awx.example.com/api/v2/job_templates/42/callback/",
        "callback_host_config_key": "0123456789abcdef", "tags": {"k8s.io/label/tier": "backend"},
        "launch_hook_timeout": 1800, "terminate_hook_timeout": 900, "user_data": "#!/bin/sh\n", "user_data_limit": 1024}


@pytest.mark.parametrize("change, message", [
    ({"image_id": ""}, "asg_image_id must be an AMI id"),
    ({"subnet_ids": []}, "asg_subnet_ids must name at least one subnet"),
    ({"min_size": 6}, "asg_min_size (6) must be 0..asg_max_size (5)"),
    ({"desired_capacity": 9}, "asg_desired_capacity (9) is outside"),
    ({"callback_url": "https://awx.example.com/api/v2/job_templates/x/launch/"}, "provisioning callback"),
    ({"callback_host_config_key": ""}, "host config key"),
    ({"callback_host_config_key": "has space in it"}, "host config key"),
    ({"mode": "pull"}, "leave it empty"),
    ({"mode": "push"}, "asg_mode must be callback or pull"),
    ({"tags": {"kubeadm-aws/role": "control-plane"}}, "set by the role itself"),
    ({"tags": {"kubernetes.io/cluster/other": "owned"}}, "set by the role itself"),
    ({"launch_hook_timeout": 10}, "30..7200"),
    ({"user_data": "x" * 1025}, "1025 bytes, more than 1024"),
])
def test_asg_input_errors_names_each_problem(f, change, message):
    assert f.asg_input_errors(GOOD) == []
    errors = f.asg_input_errors({**GOOD, **change})
    assert len(errors) == 1 and message in errors[0], errors


def test_asg_input_errors_checks_only_what_it_is_given(f):
    # The user_data entry point has no AMI, subnets or sizes.
    assert f.asg_input_errors({"mode": "pull", "callback_host_config_key": "", "user_data": "#!/bin/sh\n"}) == []
    with pytest.raises(AnsibleFilterError):
        f.asg_input_errors(["not", "a", "dict"])


def test_asg_propagated_tags(f):
    tags = f.asg_propagated_tags({"k8s.io/taint/dedicated": "infra:NoSchedule", "kubeadm-aws/role": "x"}, "prod")
    assert all(t.pop("propagate_at_launch") is True for t in tags)
    assert tags == [{"Name": "prod-worker"}, {"k8s.io/taint/dedicated": "infra:NoSchedule"},
                    {"kubeadm-aws/cluster": "prod"}, {"kubeadm-aws/role": "worker"},
                    {"kubernetes.io/cluster/prod": "owned"}]
    with pytest.raises(AnsibleFilterError, match="cluster name is empty"):
        f.asg_propagated_tags({}, "")


def test_terminating_nodes(f):
    instances = [asg_instance("i-1", "Terminating:Wait"), asg_instance("i-2", "Terminating:Wait"),
                 asg_instance("i-3", "InService")]
    ec2 = [{"instance_id": "i-1", "private_dns_name": "ip-10-0-0-1.eu-west-1.compute.internal"},
           {"instance_id": "i-2", "private_dns_name": "ip-10-0-0-2.eu-west-1.compute.internal"}]
    nodes = [{"metadata": {"name": "renamed-node"}, "spec": {"providerID": "aws:///eu-west-1a/i-1"}},
             {"metadata": {"name": "ip-10-0-0-9.eu-west-1.compute.internal"}, "spec": {}}]
    assert f.terminating_nodes(instances, ec2, nodes) == [
        {"instance_id": "i-1", "group": "prod-workers", "node": "renamed-node", "joined": True},
        # Never joined (its join failed): nothing to drain, the group may terminate it.
        {"instance_id": "i-2", "group": "prod-workers", "node": "ip-10-0-0-2.eu-west-1.compute.internal",
         "joined": False},
    ]
    assert f.terminating_nodes([], [], None) == []


def token_secret(token_id, description, expiration):
    def b64(text):
        return base64.b64encode(text.encode()).decode()
    data = {"token-id": b64(token_id), "token-secret": b64("0123456789abcdef")}
    if description is not None:
        data["description"] = b64(description)
    if expiration is not None:
        data["expiration"] = b64(expiration)
    return {"kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": "bootstrap-token-%s" % token_id, "namespace": "kube-system"}, "data": data}


def test_expired_bootstrap_tokens_only_the_collections(f):
    mine = "sesacthon.kubeadm_aws join token"
    secrets = [
        token_secret("aaaaaa", mine, "2026-01-01T10:00:00Z"),  # expired
        token_secret("bbbbbb", mine, "2026-01-01T14:00:00Z"),  # still valid
        token_secret("cccccc", "someone else's", "2026-01-01T09:00:00Z"),  # not ours
        token_secret("dddddd", mine, None),  # never expires
        token_secret("eeeeee", mine, "2026-01-01T12:00:00+00:00"),  # expires right now
        {"kind": "Secret", "type": "Opaque", "metadata": {"name": "other"}, "data": {}},
    ]
    assert f.expired_bootstrap_tokens(secrets, mine, "2026-01-01T12:00:00Z") == [
        "bootstrap-token-aaaaaa", "bootstrap-token-eeeeee"]
    assert f.expired_bootstrap_tokens(None, mine) == []
    with pytest.raises(AnsibleFilterError, match="description"):
        f.expired_bootstrap_tokens(secrets, "")


@pytest.mark.parametrize("ttl, seconds", [("2h", 3600), (7200, 3600), ("90m", 2700), ("1h30m", 2700), ("45s", 22)])
def test_token_rotation_min_ttl(f, ttl, seconds):
    assert f.token_rotation_min_ttl(ttl) == seconds


@pytest.mark.parametrize("ttl", ["0", "", "soon"])
def test_token_rotation_min_ttl_refuses(f, ttl):
    with pytest.raises(AnsibleFilterError):
        f.token_rotation_min_ttl(ttl)
