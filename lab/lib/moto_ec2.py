#!/usr/bin/env python3
"""Register the lab's node containers as EC2 instances in moto_server (idempotent).

moto keeps its state in memory: after a restart the VPC, subnet and instances are gone, so
`ensure` looks everything up first and only creates what is missing. Instances are matched to
containers by the lab-only tag ``lab/container``; an instance whose container is no longer in the
configuration is stopped (and started again when the node comes back).

Every instance is launched, as on EC2, with its primary network interface deleted on termination
(so a terminated instance gives its private IP back) and with the instance profile of its role
(IAM role and instance profile ``<cluster>-<role>``, created in moto's IAM), whose credentials the
node's instance metadata service (lab/lib/imds_mock.py) hands out.

Credentials and endpoint come from the environment (lab/lab.env: AWS_ENDPOINT_URL, AWS_* keys).

  moto_ec2.py ensure --cluster lab --region us-east-1 --az us-east-1a \
      --node 'kubeadm-aws-lab-cp1|control-plane|10.213.0.11|' \
      --node 'kubeadm-aws-lab-w1|worker|10.213.0.21|k8s.io/label/lab.sesacthon.io/tier=backend'

prints a JSON list of {container, instance_id, private_ip, private_dns_name, role} on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys

import boto3

LAB_TAG = "lab/container"
NAME_PREFIX = "kubeadm-aws-lab"


def parse_node(spec: str) -> dict:
    name, role, ip, tags = (spec.split("|", 3) + [""] * 4)[:4]
    if role not in ("control-plane", "worker"):
        raise SystemExit(f"bad role in --node {spec!r}")
    extra = {}
    for item in tags.split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"bad tag {item!r} in --node {spec!r} (want key=value)")
        extra[key] = value
    return {"container": name, "role": role, "ip": ip, "tags": extra}


def ensure_network(ec2, cluster: str, az: str, vpc_cidr: str, subnet_cidr: str) -> str:
    name = f"{NAME_PREFIX}-{cluster}"
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(
            CidrBlock=vpc_cidr,
            TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}],
        )["Vpc"]["VpcId"]
    subnets = ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "cidr-block", "Values": [subnet_cidr]}]
    )["Subnets"]
    if subnets:
        return subnets[0]["SubnetId"]
    return ec2.create_subnet(
        VpcId=vpc_id,
        CidrBlock=subnet_cidr,
        AvailabilityZone=az,
        TagSpecifications=[
            {
                "ResourceType": "subnet",
                "Tags": [
                    {"Key": "Name", "Value": name},
                    {"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"},
                ],
            }
        ],
    )["Subnet"]["SubnetId"]


EC2_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def ensure_instance_profile(iam, cluster: str, role: str) -> str:
    """IAM role and instance profile <cluster>-<role> (the node role's instance profile); returns its name."""
    name = f"{cluster}-{role}"
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST_POLICY,
                        Description=f"kubeadm-aws lab: {role} nodes of cluster {cluster}")
    try:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except iam.exceptions.NoSuchEntityException:
        profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    if not any(r["RoleName"] == name for r in profile.get("Roles", [])):
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return name


def ensure_profile_association(ec2, instance: dict, profile: str) -> None:
    """Associate the instance profile with an instance launched without it (or with another one)."""
    current = (instance.get("IamInstanceProfile") or {}).get("Arn", "")
    if current.endswith(f"/{profile}"):
        return
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance["InstanceId"]]}]
    )["IamInstanceProfileAssociations"]
    for assoc in associations:
        if assoc.get("State") in ("associating", "associated"):
            ec2.disassociate_iam_instance_profile(AssociationId=assoc["AssociationId"])
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": profile}, InstanceId=instance["InstanceId"])


def pick_image(ec2) -> str:
    images = ec2.describe_images(Owners=["amazon"])["Images"] or ec2.describe_images()["Images"]
    if not images:
        raise SystemExit("moto offers no AMI to launch from")
    # The node containers are amd64: an x86_64 image, so that what EC2 reports (the instance's
    # architecture, its identity document) matches the machine.
    images = [i for i in images if i.get("Architecture") == "x86_64"] or images
    debian = [i for i in images if "debian" in (i.get("Name") or "").lower()]
    return sorted(debian or images, key=lambda i: i["ImageId"])[0]["ImageId"]


def wanted_tags(node: dict, cluster: str) -> dict:
    short = node["container"].removeprefix(f"{NAME_PREFIX}-")
    tags = {
        "Name": f"{cluster}-{short}",
        f"kubernetes.io/cluster/{cluster}": "owned",
        "kubeadm-aws/cluster": cluster,
        "kubeadm-aws/role": node["role"],
        LAB_TAG: node["container"],
    }
    tags.update(node["tags"])
    return tags


def lab_instances(ec2) -> list[dict]:
    found = []
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "tag-key", "Values": [LAB_TAG]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )
    for page in pages:
        for reservation in page["Reservations"]:
            found.extend(reservation["Instances"])
    return found


def ensure(args: argparse.Namespace) -> int:
    ec2 = boto3.client("ec2", region_name=args.region)
    iam = boto3.client("iam", region_name=args.region)
    nodes = [parse_node(n) for n in args.node]
    profiles = {role: ensure_instance_profile(iam, args.cluster, role) for role in {n["role"] for n in nodes}}
    subnet_id = ensure_network(ec2, args.cluster, args.az, args.vpc_cidr, args.subnet_cidr)
    by_container: dict[str, dict] = {}
    for inst in lab_instances(ec2):
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        if "aws:autoscaling:groupName" in tags:  # an Auto Scaling group's instance: lab/lib/asg_launcher.py
            continue
        container = tags.get(LAB_TAG)
        if container in by_container:  # duplicate (should not happen): keep one
            ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
            continue
        by_container[container] = {"instance": inst, "tags": tags}

    # Instances of nodes the configuration no longer has are stopped, not terminated: moto does not
    # release a terminated instance's private IP, and a stopped instance drops out of the inventory
    # (it selects running instances) and is started again if the node comes back.
    wanted = {n["container"] for n in nodes}
    stale = [
        v["instance"]["InstanceId"]
        for k, v in by_container.items()
        if k not in wanted and v["instance"]["State"]["Name"] in ("pending", "running")
    ]
    if stale:
        ec2.stop_instances(InstanceIds=stale)
        print(f"stopped {len(stale)} instance(s) of removed nodes", file=sys.stderr)

    image_id = None
    result = []
    created = 0
    for node in nodes:
        tags = wanted_tags(node, args.cluster)
        current = by_container.get(node["container"])
        if current and current["instance"].get("PrivateIpAddress") != node["ip"]:
            ec2.terminate_instances(InstanceIds=[current["instance"]["InstanceId"]])
            current = None
        if current is None:
            image_id = image_id or pick_image(ec2)
            inst = ec2.run_instances(
                ImageId=image_id,
                InstanceType=args.instance_type,
                MinCount=1,
                MaxCount=1,
                # The primary interface goes with the instance (EC2's default for an interface created
                # at launch): a terminated instance releases its private IP.
                NetworkInterfaces=[
                    {"DeviceIndex": 0, "SubnetId": subnet_id, "PrivateIpAddress": node["ip"],
                     "DeleteOnTermination": True}
                ],
                IamInstanceProfile={"Name": profiles[node["role"]]},
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                ],
            )["Instances"][0]
            created += 1
        else:
            inst = current["instance"]
            ensure_profile_association(ec2, inst, profiles[node["role"]])
            if inst["State"]["Name"] in ("stopping", "stopped"):
                ec2.start_instances(InstanceIds=[inst["InstanceId"]])
                print(f"started instance {inst['InstanceId']} of {node['container']} again", file=sys.stderr)
            # Reconcile tags: set the wanted ones, drop label/taint/role tags no longer wanted.
            have = current["tags"]
            if any(have.get(k) != v for k, v in tags.items()):
                ec2.create_tags(Resources=[inst["InstanceId"]], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            managed = ("k8s.io/label/", "k8s.io/taint/")
            extra = [k for k in have if k.startswith(managed) and k not in tags]
            if extra:
                ec2.delete_tags(Resources=[inst["InstanceId"]], Tags=[{"Key": k} for k in extra])
        result.append(
            {
                "container": node["container"],
                "role": node["role"],
                "instance_id": inst["InstanceId"],
                "private_ip": inst.get("PrivateIpAddress"),
                "private_dns_name": inst.get("PrivateDnsName"),
            }
        )
    if created:
        print(f"registered {created} EC2 instance(s) in moto", file=sys.stderr)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ensure", help="create/reconcile the VPC, subnet and one instance per node")
    p.add_argument("--cluster", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--az", required=True)
    p.add_argument("--vpc-cidr", default="10.213.0.0/16")
    p.add_argument("--subnet-cidr", default="10.213.0.0/24")
    p.add_argument("--instance-type", default="t3.medium")
    p.add_argument("--node", action="append", default=[], help="container|role|ip|key=value ...")
    args = parser.parse_args()
    return ensure(args)


if __name__ == "__main__":
    sys.exit(main())
