"""Role asg, entry point lifecycle (what join_workers.yml and scale_in.yml run), against moto_server with
the lab's lifecycle-hook extension (lab/lib/moto_lifecycle.py: moto alone never holds an instance in a
hook). Instances launched into Pending:Wait are let in service (CONTINUE) or replaced (ABANDON); an
instance outside a group, or no longer waiting, is left alone; check mode completes nothing; a scale-in
waits in Terminating:Wait until CONTINUE."""

import json
import re
import subprocess
import sys
import uuid

import boto3
import pytest
import yaml

from conftest import REPO, free_port, wait_http


@pytest.fixture(scope="module")
def lifecycle_moto(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("moto-lifecycle") / "moto.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, str(REPO / "lab" / "lib" / "moto_lifecycle.py"), "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_http(url, timeout=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def clients(lifecycle_moto):
    kw = dict(endpoint_url=lifecycle_moto, region_name="us-east-1", aws_access_key_id="testing",
              aws_secret_access_key="testing")
    return boto3.client("ec2", **kw), boto3.client("autoscaling", **kw)


@pytest.fixture
def group(clients):
    """A group of 3 instances waiting in its launch hook, with a terminate hook."""
    ec2, asg = clients
    name = "g%s" % uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.78.1.0/24")["Subnet"]["SubnetId"]
    ami = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.small"})
    asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": name},
                                  MinSize=0, MaxSize=5, DesiredCapacity=0, VPCZoneIdentifier=subnet)
    for hook, transition, default in (("kubeadm-aws-launch", "LAUNCHING", "ABANDON"),
                                      ("kubeadm-aws-terminate", "TERMINATING", "CONTINUE")):
        asg.put_lifecycle_hook(LifecycleHookName=hook, AutoScalingGroupName=name, HeartbeatTimeout=1800,
                               LifecycleTransition="autoscaling:EC2_INSTANCE_%s" % transition, DefaultResult=default)
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=3)
    static = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    return {"name": name, "static": static, "ids": sorted(states(asg, name))}


def states(asg, name):
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}


def complete(run_playbook, endpoint, outcomes, transition="launch", check=False):
    play = [{
        "name": "Complete lifecycle actions", "hosts": "localhost", "gather_facts": False,
        "module_defaults": {
            "group/amazon.aws.aws": {"endpoint_url": endpoint, "region": "us-east-1"},
            "group/community.aws.aws": {"endpoint_url": endpoint, "region": "us-east-1"},
        },
        "vars": {"cluster_settings_validated": True, "kubeadm_aws_cluster_name": "unit"},
        "tasks": [{"name": "Complete", "ansible.builtin.include_role": {
            "name": "sesacthon.kubeadm_aws.asg", "tasks_from": "lifecycle", "apply": {"run_once": True}},
            "vars": {"asg_lifecycle_outcomes": outcomes, "asg_lifecycle_transition": transition}}],
    }]
    return run_playbook(yaml.safe_dump(play), check=check)


def test_launch_actions_continue_abandon_and_leave_others_alone(run_playbook, lifecycle_moto, clients, group):
    _, asg = clients
    ok, bad, other = group["ids"]
    assert set(states(asg, group["name"]).values()) == {"Pending:Wait"}
    outcomes = {ok: "CONTINUE", bad: "ABANDON", group["static"]: "CONTINUE"}
    preview = complete(run_playbook, lifecycle_moto, outcomes, check=True)
    assert preview.returncode == 0, preview.stdout[-3000:]
    assert set(states(asg, group["name"]).values()) == {"Pending:Wait"}  # check mode completes nothing
    p = complete(run_playbook, lifecycle_moto, outcomes)
    assert p.returncode == 0, p.stdout[-3000:]
    assert sorted(re.findall(r"changed: \[localhost\] => \(item=(\S+) (\w+)\)", p.stdout)) == sorted(
        [(ok, "CONTINUE"), (bad, "ABANDON")]), p.stdout[-2000:]
    now = states(asg, group["name"])
    assert now[ok] == "InService" and now[other] == "Pending:Wait"
    # ABANDON: the instance is gone and the group launched a replacement, waiting in the hook in turn.
    assert bad not in now and len(now) == 3
    assert [s for i, s in now.items() if i not in (ok, other)] == ["Pending:Wait"]
    # Again: nothing waits for these outcomes any more (the static instance never did).
    again = complete(run_playbook, lifecycle_moto, outcomes)
    assert again.returncode == 0 and re.search(r"localhost\s+: ok=\d+\s+changed=0 ", again.stdout), again.stdout[-2000:]


def test_terminate_action_lets_the_instance_go(run_playbook, lifecycle_moto, clients, group):
    ec2, asg = clients
    first = group["ids"][0]
    p = complete(run_playbook, lifecycle_moto, {i: "CONTINUE" for i in group["ids"]})
    assert p.returncode == 0, p.stdout[-3000:]
    asg.set_desired_capacity(AutoScalingGroupName=group["name"], DesiredCapacity=2)
    leaving = [i for i, s in states(asg, group["name"]).items() if s == "Terminating:Wait"]
    assert len(leaving) == 1
    # The launch hook's outcome does not complete a termination.
    p = complete(run_playbook, lifecycle_moto, {leaving[0]: "CONTINUE"}, transition="launch")
    assert p.returncode == 0 and states(asg, group["name"])[leaving[0]] == "Terminating:Wait"
    p = complete(run_playbook, lifecycle_moto, {leaving[0]: "CONTINUE", first: "CONTINUE"}, transition="terminate")
    assert p.returncode == 0, p.stdout[-3000:]
    assert leaving[0] not in states(asg, group["name"])
    state = ec2.describe_instances(InstanceIds=[leaving[0]])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")


def test_completing_an_action_nobody_waits_for_is_refused(clients, group):
    _, asg = clients
    with pytest.raises(asg.exceptions.ClientError, match="No active Lifecycle Action"):
        asg.complete_lifecycle_action(AutoScalingGroupName=group["name"], LifecycleHookName="kubeadm-aws-terminate",
                                      LifecycleActionResult="CONTINUE", InstanceId=group["ids"][0])
    assert json.dumps(states(asg, group["name"]))
