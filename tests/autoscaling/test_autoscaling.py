"""Autoscaling on the lab (docs/autoscaling.md), in order: the group's user data, a scale-out of two
instances joining concurrently through the AWX callback, a launch whose join fails (ABANDON, SSM failed),
a scale-in (drained, Node deleted, CONTINUE), the token rotation, and pull mode (an instance joining
itself, no controller run). Launch-to-Ready times are written to <LAB_STATE_DIR>/autoscaling-times.json."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import (CLUSTER, GROUP, HOST_CONFIG_KEY, PREFIX, asg_args, callback_job, run_playbook, tags_of,
                      tail, wait_for)

TIMES: dict[str, list[float]] = {}


def states(autoscaling) -> dict[str, str]:
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return {i["InstanceId"]: i["LifecycleState"] for g in groups for i in g["Instances"]}


def instance(ec2, instance_id: str) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def node_ready(core, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        node = core.read_node(name)
    except ApiException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def record(ssm, name: str) -> dict | None:
    try:
        return json.loads(ssm.get_parameter(Name="%s/nodes/%s" % (PREFIX, name))["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def scale_to(autoscaling, n: int) -> float:
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=n)
    return time.time()


def new_instances(autoscaling, before: set[str], count: int, state: str = "Pending:Wait") -> list[str]:
    def found():
        now = {i: s for i, s in states(autoscaling).items() if i not in before and s == state}
        return sorted(now) if len(now) >= count else None
    return wait_for(found, timeout=60, interval=1, what="%d new instance(s) in %s" % (count, state))


def callbacks_from(recorder, ips: set[str], timeout: float = 300) -> dict[str, dict]:
    def got():
        with recorder.lock:
            seen = {r["ip"]: r for r in recorder.requests if r["ip"] in ips}
        return seen if set(seen) == ips else None
    return wait_for(got, timeout=timeout, interval=2, what="provisioning callbacks from %s" % sorted(ips))


def tagged(ec2, ids: list[str]) -> bool:
    """Every instance is tagged lab/container (the launcher did it): the lab inventory can reach it."""
    res = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return all("lab/container" in tags_of(i) for r in res for i in r["Instances"])


def run_jobs(jobs) -> list:
    results = [None] * len(jobs)

    def one(k):
        results[k] = jobs[k].execute(jobs[k].inventory_path)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def save_times(lab_env) -> None:
    out = Path(lab_env["LAB_STATE_DIR"]) / "autoscaling-times.json"
    out.write_text(json.dumps(TIMES, indent=2))


def scale_out(autoscaling, ec2, core, ssm, launcher, callback_endpoint, awx, lab_env, count: int, label: str):
    """desired += count; every new instance calls back; AWX's jobs (one per host, simultaneous) join them."""
    before = set(states(autoscaling))
    t0 = scale_to(autoscaling, len(before) + count)
    ids = new_instances(autoscaling, before, count)
    info = {i: instance(ec2, i) for i in ids}
    requests = callbacks_from(callback_endpoint["recorder"], {v["PrivateIpAddress"] for v in info.values()})
    for r in requests.values():
        assert r["path"] == "/api/v2/job_templates/42/callback/" and r["content_type"] == "application/json", r
        assert json.loads(r["body"]) == {"host_config_key": HOST_CONFIG_KEY}, r
    wait_for(lambda: tagged(ec2, ids), timeout=60, interval=1, what="lab/container tags")
    # AWX matches the caller's address to a host of the inventory and limits the job to it.
    jobs = [callback_job(awx, info[i]["PrivateDnsName"]) for i in ids]
    results = run_jobs(jobs)
    for job, result, i in zip(jobs, results, ids):
        assert result.status == "successful", "%s: %s" % (i, job.stdout())
        assert job.processed_hosts() - {"localhost"} == {info[i]["PrivateDnsName"]}
    ready = {}
    for i in ids:
        name = info[i]["PrivateDnsName"]
        wait_for(lambda: node_ready(core, name), timeout=120, what="%s Ready" % name)
        ready[i] = time.time() - t0
    TIMES.setdefault(label, []).extend(round(v, 1) for v in ready.values())
    save_times(lab_env)
    return ids, info


def user_data_of(ec2) -> str:
    version = ec2.describe_launch_template_versions(LaunchTemplateName=GROUP, Versions=["$Latest"])[
        "LaunchTemplateVersions"][0]
    return base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()


def assert_no_join_material_in(user_data: str, ssm) -> None:
    """Nothing shaped like a bootstrap token or a CA hash, nor the stored bundle's values once there is one."""
    assert not re.search(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b", user_data), user_data
    assert not re.search(r"\b[0-9a-f]{64}\b", user_data), user_data
    try:
        value = ssm.get_parameter(Name=PREFIX + "/join/worker", WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return
    bundle = json.loads(value)
    assert bundle["token"] not in user_data and bundle["token"].split(".")[1] not in user_data
    assert not any(h.split(":")[-1] in user_data for h in bundle["ca_cert_hashes"])


def test_01_user_data_is_a_small_stub_without_secrets(group, ec2, ssm):
    user_data = user_data_of(ec2)
    assert len(user_data.encode()) <= 1024, len(user_data.encode())
    assert "/api/v2/job_templates/42/callback/" in user_data
    # A cluster without static workers holds no worker bundle before its first join or rotation
    # (join material is refreshed only when a join will happen); test_02 checks against the bundle again.
    assert_no_join_material_in(user_data, ssm)


def test_02_two_instances_join_concurrently(group, launcher, autoscaling, ec2, core, ssm, callback_endpoint, awx,
                                            lab_env):
    ids, info = scale_out(autoscaling, ec2, core, ssm, launcher, callback_endpoint, awx, lab_env, 2, "two at once")
    now = states(autoscaling)
    for i in ids:
        assert now[i] == "InService", now  # the jobs completed the launch actions: CONTINUE
        name = info[i]["PrivateDnsName"]
        node = core.read_node(name)
        assert node.spec.provider_id == "aws:///%s/%s" % (info[i]["Placement"]["AvailabilityZone"], i)
        assert node.metadata.labels.get("lab.sesacthon.io/tier") == "backend"
        assert "node-role.kubernetes.io/worker" in node.metadata.labels
        assert any(t.key == "lab.sesacthon.io/dedicated" and t.value == "infra" and t.effect == "NoSchedule"
                   for t in node.spec.taints or [])
        assert record(ssm, name)["status"] == "joined"
    # The joins published the worker bundle: the user data holds none of it.
    ssm.get_parameter(Name=PREFIX + "/join/worker")
    assert_no_join_material_in(user_data_of(ec2), ssm)


def test_03_a_failed_join_abandons_the_launch(group, launcher, autoscaling, ec2, ssm, callback_endpoint, awx):
    before = set(states(autoscaling))
    scale_to(autoscaling, len(before) + 1)
    (new,) = new_instances(autoscaling, before, 1)
    inst = instance(ec2, new)
    callbacks_from(callback_endpoint["recorder"], {inst["PrivateIpAddress"]})
    wait_for(lambda: tagged(ec2, [new]), timeout=60, interval=1, what="lab/container tag")
    # An image the node cannot pull: the join fails after the pull.
    job = callback_job(awx, inst["PrivateDnsName"],
                       {"kubeadm_join_pull_extra_images": ["registry.k8s.io/lab/does-not-exist:v0.0.0"],
                        "kubeadm_join_pull_timeout": 60})
    (result,) = run_jobs([job])
    assert result.status == "failed", job.stdout()
    assert record(ssm, inst["PrivateDnsName"])["status"] == "failed"
    # ABANDON: the instance is terminated, and the group launches a replacement to keep its capacity.
    now = states(autoscaling)
    assert new not in now, now
    assert instance(ec2, new)["State"]["Name"] in ("shutting-down", "terminated")
    replacement = [i for i, s in now.items() if i not in before]
    assert len(replacement) == 1 and now[replacement[0]] == "Pending:Wait", now
    # Back to two: the replacement, not yet in service, is the one the group takes away; it never joined, so
    # the scale-in job lets it go at once.
    scale_to(autoscaling, len(before))
    assert states(autoscaling)[replacement[0]] == "Terminating:Wait"
    # The lab inventory reaches an instance through its lab/container tag, which the launcher sets once
    # its machine runs (on EC2 the instance is simply there).
    wait_for(lambda: tagged(ec2, replacement), timeout=120, interval=1, what="lab/container tag")
    p = run_playbook("scale_in.yml", "-e", "asg_name=%s" % GROUP)
    assert p.returncode == 0, tail(p)
    assert replacement[0] not in states(autoscaling)


def test_04_scale_in_drains_removes_and_continues(group, launcher, autoscaling, ec2, core, ssm):
    from kubernetes.client.exceptions import ApiException

    before = states(autoscaling)
    scale_to(autoscaling, len(before) - 1)
    leaving = [i for i, s in states(autoscaling).items() if s == "Terminating:Wait"]
    assert len(leaving) == 1, states(autoscaling)
    name = instance(ec2, leaving[0])["PrivateDnsName"]
    assert node_ready(core, name)
    p = run_playbook("scale_in.yml", "-e", "asg_name=%s" % GROUP)
    assert p.returncode == 0, tail(p)
    assert re.search(r"Cordon the node and evict its pods", p.stdout), tail(p)
    with pytest.raises(ApiException) as gone:
        core.read_node(name)
    assert gone.value.status == 404
    assert record(ssm, name) is None
    assert leaving[0] not in states(autoscaling)
    assert instance(ec2, leaving[0])["State"]["Name"] in ("shutting-down", "terminated")
    wait_for(lambda: launcher.event("removed", leaving[0]), timeout=60, what="the machine removed")
    # Nothing left to do: a second run changes nothing.
    again = run_playbook("scale_in.yml", "-e", "asg_name=%s" % GROUP)
    assert again.returncode == 0 and "changed=0" in again.stdout.split("PLAY RECAP")[-1], tail(again)


def test_05_rotation_replaces_a_token_past_half_its_life(group, ssm, lab_env):
    import subprocess

    name = PREFIX + "/join/worker"
    param = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    bundle = json.loads(param["Value"])
    # The stored token as it is 70 minutes into its 2 hours: 50 minutes left, less than half its life.
    aged = dict(bundle, token_expires=(datetime.now(timezone.utc) + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    key = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0].get("KeyId")
    ssm.put_parameter(Name=name, Value=json.dumps(aged), Type="SecureString", Overwrite=True,
                      **({"KeyId": key} if key else {}))
    # An expired token the collection created, and one someone else created.
    cp = "kubeadm-aws-lab-cp1"
    for description in ("sesacthon.kubeadm_aws join token", "someone else"):
        subprocess.run(["docker", "exec", cp, "kubeadm", "token", "create", "--ttl", "1s", "--description", description,
                        "--kubeconfig", "/etc/kubernetes/admin.conf"], check=True, capture_output=True)
    time.sleep(3)
    p = run_playbook("rotate_join_material.yml")
    assert p.returncode == 0, tail(p)
    rotated = json.loads(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    assert rotated["token"] != bundle["token"]
    left = datetime.fromisoformat(rotated["token_expires"].replace("Z", "+00:00")) - datetime.now(timezone.utc)
    assert left > timedelta(minutes=100), left
    # A second run finds the new token young enough: nothing changes.
    again = run_playbook("rotate_join_material.yml")
    assert again.returncode == 0, tail(again)
    assert json.loads(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])["token"] == rotated["token"]


def test_06_pull_mode_joins_with_no_controller_run(group, launcher, autoscaling, ec2, core, ssm, lab_env,
                                                   callback_endpoint):
    p = run_playbook("asg.yml", *asg_args(lab_env, ec2, callback_endpoint["url"], mode="pull"))
    assert p.returncode == 0, tail(p)
    before = set(states(autoscaling))
    calls_before = len(callback_endpoint["recorder"].requests)
    t0 = scale_to(autoscaling, len(before) + 1)
    (new,) = new_instances(autoscaling, before, 1)
    name = instance(ec2, new)["PrivateDnsName"]
    wait_for(lambda: states(autoscaling).get(new) == "InService", timeout=1200, interval=5,
             what="%s in service after joining itself" % new)
    assert node_ready(core, name)
    TIMES.setdefault("pull mode, one", []).append(round(time.time() - t0, 1))
    save_times(lab_env)
    assert record(ssm, name)["status"] == "joined"
    assert len(callback_endpoint["recorder"].requests) == calls_before  # no AWX involved
    node = core.read_node(name)
    assert node.metadata.labels.get("lab.sesacthon.io/tier") == "backend"
    assert node.spec.provider_id.endswith("/" + new)


@pytest.mark.skipif(not os.environ.get("AUTOSCALING_BENCH"), reason="set AUTOSCALING_BENCH=1 to time 1 and 5 launches")
def test_07_launch_to_ready_one_and_five(group, launcher, autoscaling, ec2, core, ssm, callback_endpoint, awx, lab_env):
    """Launch-to-Ready through the callback path: one instance, then five at once (each its own job)."""
    p = run_playbook("asg.yml", *asg_args(lab_env, ec2, callback_endpoint["url"]))
    assert p.returncode == 0, tail(p)
    scale_out(autoscaling, ec2, core, ssm, launcher, callback_endpoint, awx, lab_env, 1, "callback, one")
    scale_out(autoscaling, ec2, core, ssm, launcher, callback_endpoint, awx, lab_env, 5, "callback, five at once")
