"""Faults around one cluster built here: AWS throttling a share of the calls of a whole site.yml run,
then a table of bad inputs on that running cluster, each refused in the first play with nothing changed.

The module builds its cluster once (fixture `throttled_cluster`: bare lab, then site.yml through a proxy
in front of moto that answers every third SSM and EC2 call with ThrottlingException /
RequestLimitExceeded) and the tests after it reuse that cluster.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
from conftest import (
    ThrottlingProxy,
    lab_sh,
    recap,
    run_playbook,
    ssm_snapshot,
    tag_snapshot,
    tags_of,
)


@pytest.fixture(scope="module")
def throttled_cluster(lab_env, ssm, ec2):
    """Bare lab; site.yml twice (cold, then the re-run) with every third AWS call throttled."""
    lab_sh("down")
    lab_sh("up")
    proxy = ThrottlingProxy(lab_env["AWS_ENDPOINT_URL"], every=3)
    url = proxy.start()
    try:
        cold = run_playbook("site.yml", env={"AWS_ENDPOINT_URL": url})
        cold_calls = list(proxy.calls)
        proxy.calls = []
        again = run_playbook("site.yml", env={"AWS_ENDPOINT_URL": url}) if cold.returncode == 0 else None
        again_calls = list(proxy.calls)
    finally:
        proxy.stop()
    yield {"cold": cold, "again": again, "cold_calls": cold_calls, "again_calls": again_calls}


@pytest.fixture(scope="module")
def cluster_instances(throttled_cluster, ec2, lab_env) -> list[dict]:
    """The running instances of this module's lab (not the faults conftest's `instances`, which brings a
    bare lab for every test)."""
    res = ec2.describe_instances(Filters=[
        {"Name": "tag:kubeadm-aws/cluster", "Values": [lab_env["LAB_CLUSTER"]]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ])
    return [i for r in res["Reservations"] for i in r["Instances"]]


def _summary(calls) -> str:
    throttled = [c for c in calls if c.throttled]
    return "%d AWS calls, %d throttled (%s)" % (
        len(calls), len(throttled), ", ".join(sorted({"%s.%s" % (c.service, c.action) for c in throttled})))


def test_throttled_run_succeeds_and_rerun_changes_nothing(throttled_cluster):
    cold, again = throttled_cluster["cold"], throttled_cluster["again"]
    assert cold.returncode == 0, cold.stdout[-5000:]
    calls = throttled_cluster["cold_calls"]
    throttled = [c for c in calls if c.throttled]
    assert len(throttled) >= 10, _summary(calls)
    assert {c.service for c in throttled} >= {"ec2", "AmazonSSM"}, _summary(calls)
    assert again is not None and again.returncode == 0, again.stdout[-5000:]
    changed = {h: r["changed"] for h, r in recap(again.stdout).items() if r["changed"]}
    assert not changed, f"the throttled re-run changed something: {changed}"
    assert any(c.throttled for c in throttled_cluster["again_calls"]), _summary(throttled_cluster["again_calls"])
    print("cold run:", _summary(calls), "| re-run:", _summary(throttled_cluster["again_calls"]))


def _worker(instances):
    return next(i for i in instances if tags_of(i)["kubeadm-aws/role"] == "worker")


# (id, extra args, message, tags to put on a worker for the run)
BAD_INPUTS = [
    ("no-cluster-name", ["-e", "kubeadm_aws_cluster_name="], "kubeadm_aws_cluster_name '' is not a valid cluster name", {}),
    ("unsupported-version", ["-e", "kubeadm_aws_kubernetes_version=1.29.4"], "kubeadm_aws_kubernetes_version '1.29.4' is not supported", {}),
    ("bad-version-format", ["-e", "kubeadm_aws_kubernetes_version=v1.36"], "kubeadm_aws_kubernetes_version 'v1.36' is not supported", {}),
    ("bad-ssm-prefix", ["-e", "kubeadm_aws_ssm_prefix=kubeadm"], "kubeadm_aws_ssm_prefix 'kubeadm' is not a valid SSM path", {}),
    ("bad-role-variable", ["-e", "container_runtime_source=tarball"], "value of container_runtime_source must be one of", {}),
    ("token-ttl-0", ["-e", "kubeadm_aws_token_ttl=0"], "kubeadm_aws_token_ttl '0' is not a usable token lifetime", {}),
    ("token-ttl-forever", ["-e", "kubeadm_aws_token_ttl=forever"], "kubeadm_aws_token_ttl 'forever' is not a usable token lifetime", {}),
    ("token-ttl-1d", ["-e", "kubeadm_aws_token_ttl=1d"], "kubeadm_aws_token_ttl '1d' is not a usable token lifetime", {}),
    ("min-ttl-above-ttl", ["-e", "kubeadm_aws_token_min_ttl=7200"], "kubeadm_aws_token_min_ttl (7200 s) must be less than kubeadm_aws_token_ttl", {}),
    ("endpoint-without-port", ["-e", "kubeadm_aws_control_plane_endpoint=api.example.com"],
     "kubeadm_aws_control_plane_endpoint 'api.example.com' must be host:port", {}),
    ("pod-subnet-banana", ["-e", "kubeadm_aws_pod_subnet=banana"], "kubeadm_aws_pod_subnet 'banana' is not an IPv4 network", {}),
    ("pod-subnet-overlaps-services", ["-e", "kubeadm_aws_pod_subnet=10.96.0.0/16"],
     "kubeadm_aws_pod_subnet 10.96.0.0/16 and kubeadm_aws_service_subnet 10.96.0.0/12 overlap", {}),
    ("service-subnet-too-large", ["-e", "kubeadm_aws_service_subnet=10.0.0.0/8"], "kubeadm_aws_service_subnet 10.0.0.0/8 is too large", {}),
    ("other-cluster-name", ["-e", "kubeadm_aws_cluster_name=other"], "does not match kubeadm_aws_cluster_name 'other'", {}),
    ("other-region", ["-e", "kubeadm_aws_region=eu-west-1"], "but kubeadm_aws_region is eu-west-1", {}),
    ("malformed-label-tag", [], "label 'tier=not a valid value!' is malformed", {"k8s.io/label/tier": "not a valid value!"}),
    ("malformed-taint-tag", [], "is malformed (from the EC2 tag k8s.io/taint/", {"k8s.io/taint/dedicated": "infra"}),
    ("node-restriction-label-tag", [], "node-restriction.kubernetes.io/ keys are reserved",
     {"k8s.io/label/node-restriction.kubernetes.io/pool": "control"}),
    ("control-plane-label-tag", [], "what control-plane workloads are pinned to",
     {"k8s.io/label/node-role.kubernetes.io/control-plane": ""}),
    ("unknown-role-tag", [], "tag kubeadm-aws/role=wroker is not one of", {"kubeadm-aws/role": "wroker"}),
    # Inputs a running cluster cannot take (cluster_errors): read from its kubeadm-config and Node objects.
    ("other-pod-subnet", ["-e", "kubeadm_aws_pod_subnet=10.200.0.0/16"],
     "kubeadm_aws_pod_subnet is 10.200.0.0/16 but the running cluster's podSubnet is 10.244.0.0/16", {}),
    ("other-service-subnet", ["-e", "kubeadm_aws_service_subnet=10.112.0.0/12"],
     "kubeadm_aws_service_subnet is 10.112.0.0/12 but the running cluster's serviceSubnet is 10.96.0.0/12", {}),
    ("newer-patch", ["-e", "kubeadm_aws_kubernetes_version=1.36.4"],
     "kubeadm_aws_kubernetes_version 1.36.4 differs from the version the cluster runs, v1.36.3", {}),
    ("next-minor-points-to-upgrade", ["-e", "kubeadm_aws_kubernetes_version=1.37.0"],
     "run playbooks/upgrade.yml -e kubeadm_aws_kubernetes_version=1.37.0", {}),
    ("downgrade", ["-e", "kubeadm_aws_kubernetes_version=1.35.2"], "a downgrade", {}),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_on_a_running_cluster_changes_nothing(throttled_cluster, cluster_instances, ec2, ssm, lab_env, case):
    """Each bad input stops site.yml in its first play, with a message naming it, before any host, tag or
    SSM parameter changes (SSM parameter versions and every instance's tags compared before and after)."""
    assert throttled_cluster["cold"].returncode == 0, "the cluster of this module was not built"
    _name, args, message, tags = case
    prefix = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}"
    worker = _worker(cluster_instances)
    before_ssm = ssm_snapshot(ssm, prefix)
    assert f"{prefix}/init/state" in before_ssm, before_ssm
    old_tags = tags_of(worker)
    if tags:
        ec2.create_tags(Resources=[worker["InstanceId"]], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    before_tags = tag_snapshot(ec2, lab_env["LAB_CLUSTER"])
    try:
        p = run_playbook("site.yml", *args)
    finally:
        after_tags = tag_snapshot(ec2, lab_env["LAB_CLUSTER"])
        restore = [{"Key": k, "Value": old_tags[k]} for k in tags if k in old_tags]
        if restore:
            ec2.create_tags(Resources=[worker["InstanceId"]], Tags=restore)
        extra = [{"Key": k} for k in tags if k not in old_tags]
        if extra:
            ec2.delete_tags(Resources=[worker["InstanceId"]], Tags=extra)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out[-3000:]
    assert message in out, f"expected {message!r} in:\n{out[-3000:]}"
    hosts = recap(p.stdout)
    assert hosts and all(h["changed"] == 0 for h in hosts.values()), hosts
    assert "Prepare the nodes" not in p.stdout, "the run went past the input checks"
    assert ssm_snapshot(ssm, prefix) == before_ssm, "SSM parameters changed"
    assert after_tags == before_tags, "EC2 tags changed"
    if tags:
        assert worker["PrivateDnsName"] in out, "the message does not name the host"


def test_a_join_material_lock_left_by_a_dead_run_is_taken_over(throttled_cluster, lab_env, ssm):
    """A run died holding the join-material lock (the record it wrote, with the default 3-minute life):
    the token rotation run next waits behind it, takes it over once it lapses, replaces the token and
    leaves no lock behind."""
    assert throttled_cluster["cold"].returncode == 0, "the cluster of this module was not built"
    prefix = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}"
    lock = f"{prefix}/locks/join-material/lock"
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    ssm.put_parameter(Name=lock, Type="String", Overwrite=False, Value=json.dumps({
        "schema": 1, "holder": "dead-controller/20261201T000000Z-1", "lock_id": uuid.uuid4().hex,
        "acquired_at": now.strftime(stamp), "expires_at": (now + datetime.timedelta(minutes=3)).strftime(stamp)}))
    before = json.loads(ssm.get_parameter(Name=f"{prefix}/join/worker", WithDecryption=True)["Parameter"]["Value"])
    t0 = time.monotonic()
    # A minimum life longer than the token's: this rotation replaces it, so it needs the lock.
    p = run_playbook("rotate_join_material.yml", "-e", "join_material_min_ttl=100d")
    waited = time.monotonic() - t0
    assert p.returncode == 0, p.stdout[-4000:]
    after = json.loads(ssm.get_parameter(Name=f"{prefix}/join/worker", WithDecryption=True)["Parameter"]["Value"])
    assert after["token"] != before["token"], "the token was not replaced"
    assert not ssm.get_parameters(Names=[lock])["Parameters"], "the lock is still held"
    assert waited < 300, f"the run waited {waited:.0f} s"


def test_lapsed_join_material_is_not_refreshed_without_a_join(throttled_cluster, lab_env, ssm):
    """The stored join material has lapsed as far as the run can tell (a 24 h token lifetime with a
    minimum remaining life of 86,000 s, against the stored 2 h token: the way it looks two hours later):
    a --check run still passes, and a real run with no node to join refreshes nothing (no token, no
    certificate upload: the join material in SSM keeps its version) and changes nothing."""
    assert throttled_cluster["cold"].returncode == 0, "the cluster of this module was not built"
    prefix = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}"
    min_ttl = 86000
    lapsed = ["-e", "kubeadm_aws_token_ttl=24h", "-e", f"kubeadm_aws_token_min_ttl={min_ttl}"]
    material = {name: version for name, version in ssm_snapshot(ssm, prefix).items() if "/join/" in name}
    assert f"{prefix}/join/worker" in material, material
    stored = json.loads(ssm.get_parameter(Name=f"{prefix}/join/worker", WithDecryption=True)["Parameter"]["Value"])
    expires = datetime.datetime.strptime(stored["token_expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    left = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert left < min_ttl, f"the stored token has {left:.0f} s left: it does not look lapsed to the run"
    check = run_playbook("site.yml", "--check", *lapsed)
    assert check.returncode == 0, check.stdout[-4000:]
    real = run_playbook("site.yml", *lapsed)
    assert real.returncode == 0, real.stdout[-4000:]
    changed = {h: r["changed"] for h, r in recap(real.stdout).items() if r["changed"]}
    assert not changed, changed
    after = {name: version for name, version in ssm_snapshot(ssm, prefix).items() if "/join/" in name}
    assert after == material, "the join material was refreshed although no node joined"


def test_the_cluster_still_converges_after_the_bad_inputs(throttled_cluster, lab_env, ssm):
    """After the table, the settings as they are change nothing (no input above left a trace)."""
    assert throttled_cluster["cold"].returncode == 0, "the cluster of this module was not built"
    p = run_playbook("site.yml")
    assert p.returncode == 0, p.stdout[-4000:]
    changed = {h: r["changed"] for h, r in recap(p.stdout).items() if r["changed"]}
    assert not changed, changed
    state = json.loads(ssm.get_parameter(Name=f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}/init/state")["Parameter"]["Value"])
    assert state["kubernetes_version"] == "v1.36.3", state
