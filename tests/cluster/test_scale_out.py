"""A worker added to a running cluster joins through a worker-only run of playbooks/join_workers.yml
(--limit to the new host, as an AWX job, a job slice or an autoscaling hook would run it): only the
new host is in the play, it joins from the join material in SSM, and it is Ready with its providerID."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess

from conftest import REPO, recap, run_playbook, tags_of, wait_for


def _lab_sh(*args: str, **env: str) -> None:
    subprocess.run([str(REPO / "lab" / "lab.sh"), *args], check=True, env={**os.environ, **env},
                   capture_output=True, text=True)


@contextlib.contextmanager
def added_worker(ec2, instances):
    """One more bare worker in the lab (lab.sh up with one worker more), removed afterwards:
    yields its EC2 instance and the LAB_WORKERS value that keeps it."""
    workers = [i for i in instances if tags_of(i)["kubeadm-aws/role"] == "worker"]
    count = str(len(workers) + 1)
    _lab_sh("up", LAB_WORKERS=count)
    try:
        res = ec2.describe_instances(Filters=[{"Name": "private-ip-address", "Values": [f"10.213.0.{20 + len(workers) + 1}"]},
                                              {"Name": "instance-state-name", "Values": ["running"]}])
        yield [i for r in res["Reservations"] for i in r["Instances"]][0], count
    finally:
        _lab_sh("up", LAB_WORKERS=str(len(workers)))


def test_worker_only_run_joins_an_added_worker(core, ec2, ssm, lab_env, instances):
    with added_worker(ec2, instances) as (new, count):
        name = new["PrivateDnsName"]
        try:
            p = run_playbook("join_workers.yml", "--limit", name, env={"LAB_WORKERS": count})
            assert p.returncode == 0, p.stdout[-4000:]
            hosts = recap(p.stdout)
            assert set(hosts) == {name}, f"the play touched more than the new worker: {hosts}"
            node = wait_for(lambda: next((n for n in core.list_node().items if n.metadata.name == name), None),
                            what=f"node {name}")
            assert node.spec.provider_id == f"aws:///{new['Placement']['AvailabilityZone']}/{new['InstanceId']}"
            assert "node-role.kubernetes.io/worker" in node.metadata.labels
            assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
            status = json.loads(ssm.get_parameter(Name=f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}/nodes/{name}")["Parameter"]["Value"])
            assert status["status"] == "joined"
            # A second worker-only run leaves the joined worker alone.
            again = run_playbook("join_workers.yml", "--limit", name, env={"LAB_WORKERS": count})
            assert again.returncode == 0 and recap(again.stdout)[name]["changed"] == 0, again.stdout[-3000:]
        finally:
            try:
                core.delete_node(name)
            except Exception:  # noqa: BLE001 - the node may not have registered
                pass


def test_a_worker_whose_images_cannot_be_pulled_is_not_joined(core, ec2, ssm, lab_env, instances):
    """The images a joining node needs are pulled before kubeadm join (kubeadm_join pull_images): when
    one cannot be pulled the run fails naming it, SSM records the node as failed, and the node never
    joins (no half-joined kubelet)."""
    missing = "registry.k8s.io/lab/no-such-image:v0.0.0"
    with added_worker(ec2, instances) as (new, count):
        name = new["PrivateDnsName"]
        status_parameter = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}/nodes/{name}"
        try:
            p = run_playbook("join_workers.yml", "--limit", name, "-e",
                             json.dumps({"kubeadm_join_pull_extra_images": [missing]}), env={"LAB_WORKERS": count})
            assert p.returncode != 0, p.stdout[-3000:]
            assert recap(p.stdout)[name]["failed"] == 1, p.stdout[-3000:]
            assert f"crictl pull {missing} failed" in p.stdout, p.stdout[-3000:]
            status = json.loads(ssm.get_parameter(Name=status_parameter)["Parameter"]["Value"])
            assert status["status"] == "failed" and missing in status.get("error", ""), status
            assert name not in {n.metadata.name for n in core.list_node().items}
        finally:
            ssm.delete_parameter(Name=status_parameter)
