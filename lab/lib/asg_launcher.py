#!/usr/bin/env python3
"""The lab's stand-in for EC2 behind an Auto Scaling group (lab only; the one lab piece that plays EC2).

moto keeps the group and its instances (with lab/lib/moto_lifecycle.py, their lifecycle states); nothing
runs them. This launcher does, as EC2 would:

* an instance of the group that is pending or running in EC2 and has no machine yet gets a node
  container ``kubeadm-aws-lab-asg-<instance id>`` with the instance's private IP and DNS name
  (``lab/lab.sh run-node``, as the static nodes), the tag ``lab/container`` (the lab inventory reaches
  it through Docker) and its instance metadata service (``lab/lab.sh imds-node``);
* its user data then runs with cloud-init's semantics for a ``#!`` script (scripts-user): written to
  /var/lib/cloud/instance/user-data.txt and run once, as root, in the background, its output in
  /var/log/cloud-init-output.log. A pull-mode stub (it runs ``self_join``) finds what a pull-mode AMI
  carries: Ansible and the collection (the controller's virtualenv and this checkout, mounted read-only)
  and the site's settings in /etc/kubeadm-aws/vars.yml (lab/lab-vars.yml, with the lab's environment);
* a machine whose instance is terminated, or no longer in the group, is removed with its volumes.

  . lab/lab.env && lab/lib/asg_launcher.py run --group lab-workers [--once]

prints one JSON line per event on stdout ({"event": "started"|"user-data"|"removed", "instance_id", ...,
"time"}). Credentials and endpoint from the environment (lab/lab.env).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3

LAB_DIR = Path(__file__).resolve().parents[1]
REPO = LAB_DIR.parent
PREFIX = "kubeadm-aws-lab-asg-"
LAB_TAG = "lab/container"
# Where a pull-mode AMI has the collection (Ansible's default collections path).
COLLECTION_IN_NODE = "/usr/share/ansible/collections/ansible_collections/sesacthon/kubeadm_aws"


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, "time": round(time.time(), 3), **fields}), flush=True)


def lab_sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(LAB_DIR / "lab.sh"), *args], capture_output=True, text=True, check=check)


def containers() -> set[str]:
    out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                         check=True).stdout.split()
    return {n for n in out if n.startswith(PREFIX) and not n.endswith("-imds")}


def pull_mode_mounts() -> list[str]:
    """What a pull-mode AMI carries: the controller's virtualenv (and the Python it links to) and the
    collection, read-only, at the paths the stub and the playbook expect."""
    venv = (REPO / ".venv").resolve()
    python_home = Path(os.path.realpath(venv / "bin" / "python")).parents[1]
    return ["-v", f"{venv}:{venv}:ro", "-v", f"{python_home}:{python_home}:ro", "-v", f"{REPO}:{COLLECTION_IN_NODE}:ro"]


def attach_template_profile(ec2, inst: dict) -> None:
    """EC2 launches an instance with its launch template's instance profile; moto does not: associate it."""
    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    template_id, version = tags.get("aws:ec2launchtemplate:id"), tags.get("aws:ec2launchtemplate:version")
    if not template_id or inst.get("IamInstanceProfile"):
        return
    data = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[version or "$Latest"])[
        "LaunchTemplateVersions"][0]["LaunchTemplateData"]
    profile = data.get("IamInstanceProfile") or {}
    if profile:
        ec2.associate_iam_instance_profile(IamInstanceProfile=profile, InstanceId=inst["InstanceId"])


def start_machine(ec2, inst: dict, user_data: str, image: str) -> str:
    name = PREFIX + inst["InstanceId"]
    pull = "self_join" in user_data
    extra = ["--label", f"io.sesacthon.kubeadm-aws.asg-instance={inst['InstanceId']}"]
    if pull:
        extra += pull_mode_mounts()
    lab_sh("run-node", name, inst["PrivateIpAddress"], image, "asg", *extra)
    lab_sh("wait-node", name)
    ec2.create_tags(Resources=[inst["InstanceId"]], Tags=[{"Key": LAB_TAG, "Value": name}])
    attach_template_profile(ec2, inst)
    lab_sh("imds-node", name)
    emit("started", instance_id=inst["InstanceId"], container=name, ip=inst["PrivateIpAddress"],
         dns=inst["PrivateDnsName"], pull=pull)
    run_user_data(name, inst["InstanceId"], user_data, pull)
    return name


def run_user_data(name: str, instance_id: str, user_data: str, pull: bool) -> None:
    """cloud-init's handling of a #! part: stored, then run once as root; anything else is only stored."""
    setup = ["mkdir -p /var/lib/cloud/instance/scripts /etc/kubeadm-aws",
             "cat > /var/lib/cloud/instance/user-data.txt"]
    subprocess.run(["docker", "exec", "-i", name, "sh", "-c", " && ".join(setup)], input=user_data, text=True, check=True)
    if not user_data.startswith("#!"):
        emit("user-data", instance_id=instance_id, container=name, ran=False)
        return
    env = []
    if pull:
        venv_bin = (REPO / ".venv" / "bin").resolve()
        subprocess.run(["docker", "exec", "-i", name, "sh", "-c", "cat > /etc/kubeadm-aws/vars.yml"],
                       input=(REPO / "lab" / "lab-vars.yml").read_text(), text=True, check=True)
        # lab/lab-vars.yml reads the lab's settings from the environment; from a node, moto is at the gateway.
        lab = {k: v for k, v in os.environ.items() if k.startswith("LAB_")}
        lab.update({"LAB_REPO_DIR": COLLECTION_IN_NODE, "AWS_ENDPOINT_URL": os.environ["LAB_MOTO_URL_FROM_NODES"],
                    "PATH": f"{venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
        for k, v in lab.items():
            env += ["-e", f"{k}={v}"]
    script = ("install -m 0700 /var/lib/cloud/instance/user-data.txt /var/lib/cloud/instance/scripts/part-001 && "
              "exec /var/lib/cloud/instance/scripts/part-001 >>/var/log/cloud-init-output.log 2>&1")
    subprocess.run(["docker", "exec", "-d", *env, name, "sh", "-c", script], check=True)
    emit("user-data", instance_id=instance_id, container=name, ran=True, command=shlex.quote(script))


def _start(ec2, inst: dict, user_data: str, image: str) -> None:
    try:
        start_machine(ec2, inst, user_data, image)
    except subprocess.CalledProcessError as e:
        emit("error", instance_id=inst["InstanceId"], error=((e.stderr or "") + str(e))[-800:])


def step(ec2, asg, group: str, image: str, started: set[str]) -> None:
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    members = {i["InstanceId"] for g in groups for i in g["Instances"]}
    running: dict[str, dict] = {}
    if members:
        for r in ec2.describe_instances(InstanceIds=sorted(members))["Reservations"]:
            for inst in r["Instances"]:
                if inst["State"]["Name"] in ("pending", "running"):
                    running[inst["InstanceId"]] = inst
    have = containers()
    for instance_id, inst in sorted(running.items()):
        name = PREFIX + instance_id
        if name in have or name in started:
            continue
        raw = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData").get("UserData", {})
        user_data = base64.b64decode(raw.get("Value", "") or "").decode()
        started.add(name)
        # Machines boot side by side, as EC2's do.
        threading.Thread(target=_start, args=(ec2, inst, user_data, image), daemon=True).start()
    for name in sorted(have):
        if name[len(PREFIX):] not in running:
            lab_sh("rm-node", name, check=False)
            started.discard(name)
            emit("removed", instance_id=name[len(PREFIX):], container=name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="play EC2 for the group's instances until stopped")
    p.add_argument("--group", required=True)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--once", action="store_true")
    args = parser.parse_args()
    region = os.environ.get("LAB_REGION", "us-east-1")
    ec2 = boto3.client("ec2", region_name=region)
    asg = boto3.client("autoscaling", region_name=region)
    image = "kubeadm-aws-node:%s" % os.environ.get("LAB_OS", "debian12")
    started: set[str] = set()
    while True:
        try:
            step(ec2, asg, args.group, image, started)
        except Exception as e:  # noqa: BLE001 - keep playing EC2; the tests see the error events
            emit("error", error=str(e)[-800:])
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
