#!/usr/bin/env python3
"""Configuration of each lab node's instance metadata service (IMDS), from what moto knows.

Every node container gets its own github.com/aws/amazon-ec2-metadata-mock, which lab/lab.sh runs in
the node's network namespace on 169.254.169.254:80, where the AWS SDKs (and so cloud-provider-aws)
look for IMDS. This script writes one mock configuration per node: every value the mock serves is
read from moto_server (the instance, its network interface, subnet, VPC, availability zone,
instance profile); every path of the mock that moto has no data for is switched off (an empty path
is not served, so it answers 404 like an instance without that item), and the spot, scheduled-event
and Auto Scaling notices are off (mock-ip-count 0: no requester is eligible, as on an on-demand
instance outside an Auto Scaling group). The instance profile's credentials are the lab's placeholder
credentials (lab/lab.env), which moto accepts.

  imds_mock.py config --out-dir DIR --region us-east-1

writes DIR/<container>.json for every lab instance (tag lab/container) that is pending or running and
prints a JSON list of {container, instance_id, file, changed} on stdout. A file is rewritten only when
its content changes, so lab/lab.sh recreates a node's mock only when moto's data for it changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import boto3
import botocore.session

LAB_TAG = "lab/container"
MD = "/latest/meta-data"

# Mock metadata keys (pkg/config/defaults/aemm-metadata-default-values.json of the mock) this script
# gives a path and a value from moto; every other key of the mock is switched off (empty path).
MAC_KEYS = {
    "mac-device-number": "device-number",
    "mac-local-hostname": "local-hostname",
    "mac-local-ipv4s": "local-ipv4s",
    "mac-mac": "mac",
    "mac-network-interface-id": "interface-id",
    "mac-network-interface-card-index": "network-card-index",
    "mac-owner-id": "owner-id",
    "mac-security-group-ids": "security-group-ids",
    "mac-security-groups": "security-groups",
    "mac-subnet-id": "subnet-id",
    "mac-subnet-ipv4-cidr-block": "subnet-ipv4-cidr-block",
    "mac-vpc-id": "vpc-id",
    "mac-vpc-ipv4-cidr-block": "vpc-ipv4-cidr-block",
    "mac-vpc-ipv4-cidr-blocks": "vpc-ipv4-cidr-blocks",
}
# Every metadata path key of amazon-ec2-metadata-mock v1.13.0 (its defaults file): the ones this
# script does not set are switched off.
MOCK_METADATA_KEYS = [
    "ami-id", "ami-launch-index", "ami-manifest-path", "block-device-mapping-ami", "block-device-mapping-ebs",
    "block-device-mapping-ephemeral", "block-device-mapping-root", "block-device-mapping-swap",
    "elastic-inference-associations", "elastic-inference-accelerator", "events", "hostname", "iam-info",
    "iam-security-credentials-role", "iam-security-credentials", "instance-action", "instance-id",
    "instance-life-cycle", "instance-type", "kernel-id", "local-hostname", "local-ipv4", "mac",
    "mac-device-number", "mac-ipv4-associations", "mac-ipv6-associations", "mac-local-hostname", "mac-local-ipv4s",
    "mac-mac", "mac-network-interface-id", "mac-network-interface-card-index", "mac-owner-id",
    "mac-public-hostname", "mac-public-ipv4s", "mac-security-group-ids", "mac-security-groups", "mac-subnet-id",
    "mac-subnet-ipv4-cidr-block", "mac-subnet-ipv6-cidr-blocks", "mac-vpc-id", "mac-vpc-ipv4-cidr-block",
    "mac-vpc-ipv4-cidr-blocks", "mac-vpc-ipv6-cidr-blocks", "placement-availability-zone",
    "placement-availability-zone-id", "placement-group-name", "placement-host-id", "placement-partition-number",
    "placement-region", "product-codes", "public-hostname", "public-ipv4", "public-key", "ramdisk-id",
    "reservation-id", "security-groups", "services-domain", "services-partition", "spot", "spot-termination-time",
    "rebalance-rec-time", "tags-instance-name", "tags-instance-test", "target-lifecycle-state",
]
MOCK_DYNAMIC_KEYS = [
    "instance-identity-document", "instance-identity-pkcs", "instance-identity-signature", "fws-instance-monitoring",
]
# Served by the mock's spot/events/asglifecycle handlers, which mock-ip-count 0 keeps answering 404.
NOTICE_KEYS = {"spot", "spot-termination-time", "rebalance-rec-time", "events", "target-lifecycle-state"}


def _iso(value) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _partition(region: str) -> tuple[str, str]:
    """(partition, DNS suffix) of a region, from botocore's own endpoint data."""
    data = botocore.session.get_session().get_data("endpoints")
    for partition in data["partitions"]:
        if region in partition["regions"]:
            return partition["partition"], partition["dnsSuffix"]
    raise SystemExit(f"botocore knows no partition for region {region}")


def _instance_profile(iam, arn: str) -> dict | None:
    name = arn.rsplit("/", 1)[-1]
    try:
        return iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except iam.exceptions.NoSuchEntityException:
        return None


def mock_config(instance: dict, reservation: dict, ec2, iam, region: str) -> dict:
    """The mock's configuration for one instance: paths and values from moto, the rest switched off."""
    paths: dict[str, str] = {}
    values: dict[str, object] = {}

    def serve(key: str, path: str, value) -> None:
        paths[key] = f"{MD}/{path}"
        values[key] = value

    az = instance["Placement"]["AvailabilityZone"]
    zone = ec2.describe_availability_zones(ZoneNames=[az])["AvailabilityZones"][0]
    partition, dns_suffix = _partition(region)
    launch = instance["LaunchTime"]

    serve("ami-id", "ami-id", instance["ImageId"])
    serve("ami-launch-index", "ami-launch-index", str(instance.get("AmiLaunchIndex", 0)))
    serve("instance-id", "instance-id", instance["InstanceId"])
    serve("instance-type", "instance-type", instance["InstanceType"])
    serve("instance-life-cycle", "instance-life-cycle", instance.get("InstanceLifecycle", "on-demand"))
    serve("instance-action", "instance-action", "none")
    serve("hostname", "hostname", instance["PrivateDnsName"])
    serve("local-hostname", "local-hostname", instance["PrivateDnsName"])
    serve("local-ipv4", "local-ipv4", instance["PrivateIpAddress"])
    serve("reservation-id", "reservation-id", reservation["ReservationId"])
    serve("placement-availability-zone", "placement/availability-zone", az)
    serve("placement-availability-zone-id", "placement/availability-zone-id", zone["ZoneId"])
    serve("placement-region", "placement/region", region)
    serve("services-partition", "services/partition", partition)
    serve("services-domain", "services/domain", dns_suffix)
    groups = instance.get("SecurityGroups") or []
    if groups:
        serve("security-groups", "security-groups", "\n".join(g["GroupName"] for g in groups))
    if instance.get("PublicIpAddress"):
        serve("public-ipv4", "public-ipv4", instance["PublicIpAddress"])
    if instance.get("PublicDnsName"):
        serve("public-hostname", "public-hostname", instance["PublicDnsName"])

    # Primary network interface.
    enis = sorted(instance.get("NetworkInterfaces") or [], key=lambda n: (n.get("Attachment") or {}).get("DeviceIndex", 99))
    if enis:
        eni = enis[0]
        mac = eni["MacAddress"]
        subnet = ec2.describe_subnets(SubnetIds=[eni["SubnetId"]])["Subnets"][0]
        vpc = ec2.describe_vpcs(VpcIds=[eni["VpcId"]])["Vpcs"][0]
        vpc_cidrs = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet") or []] or [vpc["CidrBlock"]]
        per_mac = {
            "mac-device-number": str((eni.get("Attachment") or {}).get("DeviceIndex", 0)),
            "mac-local-hostname": eni.get("PrivateDnsName") or instance["PrivateDnsName"],
            "mac-local-ipv4s": "\n".join(a["PrivateIpAddress"] for a in eni.get("PrivateIpAddresses") or []),
            "mac-mac": mac,
            "mac-network-interface-id": eni["NetworkInterfaceId"],
            "mac-network-interface-card-index": str((eni.get("Attachment") or {}).get("NetworkCardIndex", 0)),
            "mac-owner-id": eni.get("OwnerId") or reservation["OwnerId"],
            "mac-security-group-ids": "\n".join(g["GroupId"] for g in eni.get("Groups") or []),
            "mac-security-groups": "\n".join(g["GroupName"] for g in eni.get("Groups") or []),
            "mac-subnet-id": eni["SubnetId"],
            "mac-subnet-ipv4-cidr-block": subnet["CidrBlock"],
            "mac-vpc-id": eni["VpcId"],
            "mac-vpc-ipv4-cidr-block": vpc["CidrBlock"],
            "mac-vpc-ipv4-cidr-blocks": "\n".join(vpc_cidrs),
        }
        serve("mac", "mac", mac)
        for key, leaf in MAC_KEYS.items():
            if per_mac[key]:
                serve(key, f"network/interfaces/macs/{mac}/{leaf}", per_mac[key])

    # Instance profile: its name and id from moto's IAM; its role's credentials are the lab's
    # placeholders (moto accepts any), valid from the launch for a year.
    profile = instance.get("IamInstanceProfile")
    if profile:
        info = _instance_profile(iam, profile["Arn"])
        roles = (info or {}).get("Roles") or []
        if info and roles:
            role = roles[0]["RoleName"]
            serve("iam-info", "iam/info", {
                "Code": "Success",
                "LastUpdated": _iso(launch),
                "InstanceProfileArn": info["Arn"],
                "InstanceProfileId": info["InstanceProfileId"],
            })
            serve("iam-security-credentials-role", "iam/security-credentials", role)
            serve("iam-security-credentials", f"iam/security-credentials/{role}", {
                "Code": "Success",
                "LastUpdated": _iso(launch),
                "Type": "AWS-HMAC",
                "AccessKeyId": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                "SecretAccessKey": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                "Token": os.environ.get("AWS_SESSION_TOKEN", "testing"),
                "Expiration": _iso(launch + dt.timedelta(days=365)),
            })

    # Instance tags in metadata only when the instance allows it (MetadataOptions), as on EC2.
    options = instance.get("MetadataOptions") or {}
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags") or []}
    if options.get("InstanceMetadataTags") == "enabled":
        if "Name" in tags:
            serve("tags-instance-name", "tags/instance/Name", tags["Name"])
        if "Test" in tags:
            serve("tags-instance-test", "tags/instance/Test", tags["Test"])

    for key in MOCK_METADATA_KEYS:
        if key not in paths and key not in NOTICE_KEYS:
            paths[key] = ""

    document = {
        "accountId": reservation["OwnerId"],
        "imageId": instance["ImageId"],
        "availabilityZone": az,
        "ramdiskId": instance.get("RamdiskId"),
        "kernelId": instance.get("KernelId"),
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "version": "2017-09-30",
        "privateIp": instance["PrivateIpAddress"],
        "billingProducts": None,
        "instanceId": instance["InstanceId"],
        "pendingTime": _iso(launch),
        "architecture": instance.get("Architecture", "x86_64"),
        "instanceType": instance["InstanceType"],
        "region": region,
    }
    monitoring = (instance.get("Monitoring") or {}).get("State", "disabled")
    dynamic_paths = {
        "instance-identity-document": "/latest/dynamic/instance-identity/document",
        "fws-instance-monitoring": "/latest/dynamic/fws/instance-monitoring",
    }
    for key in MOCK_DYNAMIC_KEYS:
        dynamic_paths.setdefault(key, "")

    return {
        # IMDSv2 only when the instance requires session tokens (MetadataOptions.HttpTokens).
        "imdsv2": options.get("HttpTokens") == "required",
        "mock-ip-count": 0,
        "metadata": {"paths": paths, "values": values},
        "dynamic": {
            "paths": dynamic_paths,
            "values": {
                "instance-identity-document": document,
                "fws-instance-monitoring": "enabled" if monitoring in ("enabled", "pending") else "disabled",
            },
        },
        # No user data in the lab's instances: the path answers 404, as on EC2.
        "userdata": {"paths": {"userdata": ""}},
    }


def lab_instances(ec2) -> list[tuple[dict, dict]]:
    found = []
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "tag-key", "Values": [LAB_TAG]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    for page in pages:
        for reservation in page["Reservations"]:
            found.extend((inst, reservation) for inst in reservation["Instances"])
    return found


def write_configs(args: argparse.Namespace) -> int:
    ec2 = boto3.client("ec2", region_name=args.region)
    iam = boto3.client("iam", region_name=args.region)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    for instance, reservation in lab_instances(ec2):
        container = {t["Key"]: t["Value"] for t in instance.get("Tags") or []}[LAB_TAG]
        text = json.dumps(mock_config(instance, reservation, ec2, iam, args.region), indent=2, sort_keys=True) + "\n"
        path = out_dir / f"{container}.json"
        changed = not path.is_file() or path.read_text() != text
        if changed:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        result.append({"container": container, "instance_id": instance["InstanceId"], "file": str(path),
                       "changed": changed})
    json.dump(sorted(result, key=lambda r: r["container"]), sys.stdout, indent=2)
    print()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("config", help="write one amazon-ec2-metadata-mock configuration per lab instance")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--region", required=True)
    args = parser.parse_args()
    return write_configs(args)


if __name__ == "__main__":
    sys.exit(main())
