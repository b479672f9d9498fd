#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ec2_node_identity
short_description: Compute the Kubernetes identity of EC2 instances and tag them for the cluster
version_added: 0.1.0
description:
  - For a list of EC2 instances, returns what Kubernetes and the AWS cloud provider
    (cloud-provider-aws) expect of each node, from B(one) C(DescribeInstances) call for all of them.
  - Per instance that is the provider ID C(aws:///<availability zone>/<instance id>), the node name (the instance's private DNS
    name, for example C(ip-10-0-0-5.ec2.internal), which cloud-provider-aws uses as the node name), the
    private IP address and the availability zone.
  - Ensures the tag C(kubernetes.io/cluster/<cluster_name>=owned|shared) the cloud provider needs on every
    instance that lacks it (or has the other value) with B(one) C(CreateTags) call, since that tag is the same
    for all instances.
  - Ensures a provider-ID tag (O(provider_id_tag), default C(kubeadm-aws/provider-id)) whose value is the
    instance's own provider ID. C(CreateTags) applies one tag set to all the resources of a call, so this
    tag, different for every instance, costs one C(CreateTags) call B(per instance that lacks it)
    (never for instances already tagged correctly). Set O(provider_id_tag) to an empty string to skip it.
    First run on N untagged instances therefore makes 1 C(DescribeInstances) and 1 + N C(CreateTags) calls;
    a re-run makes 1 C(DescribeInstances) call and none else.
  - Instance IDs are checked locally before any call. EC2 is eventually consistent; right after
    C(RunInstances) it can answer C(InvalidInstanceID.NotFound) for an instance that exists. That answer
    is retried with backoff (1, 2, 4, 8, 10, 10 ... seconds) for up to O(not_found_timeout) seconds; an
    instance still unknown then makes the module fail with a message naming it (RV(missing_instance_ids)).
  - Instances that are C(shutting-down) or C(terminated) are reported but not tagged.
author:
  - sesacthon platform team (@sesacthon)
options:
  instance_ids:
    description:
      - The instances, C(i-) followed by 8 or 17 hexadecimal digits. Duplicates are ignored.
      - More than 1000 IDs are described in batches of 1000.
    type: list
    elements: str
    required: true
  cluster_name:
    description:
      - The Kubernetes cluster name, used in the C(kubernetes.io/cluster/<cluster_name>) tag.
    type: str
    required: true
    aliases: [cluster]
  cluster_tag_value:
    description:
      - Value of the C(kubernetes.io/cluster/<cluster_name>) tag; V(owned) when the resources belong to the
        cluster only, V(shared) when other clusters use them too.
    type: str
    choices: [owned, shared]
    default: owned
  provider_id_tag:
    description:
      - Key of the tag that records each instance's provider ID. Empty string to not manage it.
    type: str
    default: kubeadm-aws/provider-id
  tag:
    description:
      - Whether to add the tags. With V(false) the module only reports the identities (and what is missing).
    type: bool
    default: true
  not_found_timeout:
    description:
      - For how many seconds an instance that EC2 does not know (C(InvalidInstanceID.NotFound)) is looked
        up again before the module fails naming it. Covers instances launched moments ago, which EC2 may
        not show yet. V(0) fails at the first such answer (a mistyped ID fails that much faster).
    type: int
    default: 60
    version_added: 0.3.0
notes:
  - "IAM: C(ec2:DescribeInstances); with O(tag=true) also C(ec2:CreateTags)."
  - Supports check mode; RV(tags_added) then lists what would be tagged, and no C(CreateTags) call is made.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Node identities of all cluster hosts (one call), tag them
  sesacthon.kubeadm_aws.ec2_node_identity:
    cluster_name: prod
    instance_ids: "{{ groups['kube_cluster'] | map('extract', hostvars, 'instance_id') | list }}"
    region: eu-central-1
  register: identity
  run_once: true
  delegate_to: localhost

- name: Use the provider ID in the kubelet configuration
  ansible.builtin.set_fact:
    kubelet_provider_id: "{{ identity.by_instance_id[instance_id].provider_id }}"
    kubelet_node_name: "{{ identity.by_instance_id[instance_id].node_name }}"

- name: Only report, do not tag
  sesacthon.kubeadm_aws.ec2_node_identity:
    cluster_name: prod
    instance_ids: [i-0123456789abcdef0]
    tag: false
"""

RETURN = r"""
instances:
  description: One entry per instance, in the order of O(instance_ids).
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: Instance ID.
      type: str
    provider_id:
      description: C(aws:///<az>/<instance id>), the C(spec.providerID) of the node.
      type: str
    node_name:
      description: The node name cloud-provider-aws expects (the private DNS name); null if the instance has none.
      type: str
    private_dns_name:
      description: Private DNS name.
      type: str
    private_ip:
      description: Primary private IPv4 address.
      type: str
    availability_zone:
      description: Availability zone.
      type: str
    state:
      description: Instance state (running, stopped, ...).
      type: str
    tags:
      description: The instance's tags (after this task).
      type: dict
  sample:
    - instance_id: i-0123456789abcdef0
      provider_id: aws:///eu-central-1a/i-0123456789abcdef0
      node_name: ip-10-0-0-5.eu-central-1.compute.internal
      private_dns_name: ip-10-0-0-5.eu-central-1.compute.internal
      private_ip: 10.0.0.5
      availability_zone: eu-central-1a
      state: running
by_instance_id:
  description: The same entries keyed by instance ID.
  returned: always
  type: dict
tags_added:
  description: Instance IDs that got (or in check mode would get) each tag.
  returned: always
  type: dict
  contains:
    cluster_tag:
      description: Instances tagged with C(kubernetes.io/cluster/<cluster_name>).
      type: list
      elements: str
    provider_id_tag:
      description: Instances tagged with O(provider_id_tag).
      type: list
      elements: str
  sample: {"cluster_tag": ["i-0123456789abcdef0"], "provider_id_tag": ["i-0123456789abcdef0"]}
missing_instance_ids:
  description: The instances EC2 did not know after O(not_found_timeout) seconds of retries.
  returned: on failure, when instances are unknown
  type: list
  elements: str
  sample: ["i-0123456789abcdef0"]
  version_added: 0.3.0
"""

import re
import time

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.errors import (
    KubeadmAwsError,
    KubeadmAwsValidationError,
    aws_call,
)
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.naming import validate_cluster_name
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.retries import bounded_backoff, retry_decorator

INSTANCE_ID_RE = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
BATCH = 1000  # instance IDs per DescribeInstances / resources per CreateTags
UNTAGGABLE_STATES = ("shutting-down", "terminated")


def validate_options(params):
    """(instance IDs without duplicates, provider-ID tag key or ''); raises KubeadmAwsValidationError."""
    validate_cluster_name(params["cluster_name"])
    ids = []
    for raw in params["instance_ids"]:
        iid = (raw or "").strip()
        if not INSTANCE_ID_RE.match(iid):
            raise KubeadmAwsValidationError(
                "instance_ids: %r is not an EC2 instance id (i- followed by 8 or 17 hex digits)" % raw, "instance_ids")
        if iid not in ids:
            ids.append(iid)
    if not ids:
        raise KubeadmAwsValidationError("instance_ids must not be empty", "instance_ids")
    pid_tag = (params["provider_id_tag"] or "").strip()
    if pid_tag.lower().startswith("aws:") or len(pid_tag) > 128:
        raise KubeadmAwsValidationError("provider_id_tag %r is not a valid tag key" % pid_tag, "provider_id_tag")
    if params["not_found_timeout"] < 0:
        raise KubeadmAwsValidationError("not_found_timeout must not be negative", "not_found_timeout")
    return ids, pid_tag


def _unknown_instances(missing, waited, exception=None):
    message = "Unknown instance id(s) in instance_ids: %s" % ", ".join(missing)
    if waited:
        message += " (EC2 still did not know them after %d seconds of retries)" % waited
    return KubeadmAwsValidationError(message, "instance_ids", exception=exception, missing_instance_ids=missing)


def _describe_once(client, chunk):
    """(instances found, IDs missing, the InvalidInstanceID.NotFound error or None): one DescribeInstances
    call for ``chunk`` (following NextToken)."""
    found = {}
    kwargs = dict(InstanceIds=chunk)
    while True:
        try:
            resp = client.describe_instances(aws_retry=True, **kwargs)
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") != "InvalidInstanceID.NotFound":
                raise
            named = re.findall(r"i-[0-9a-zA-Z]+", e.response["Error"].get("Message", ""))
            return {}, [x for x in chunk if x in named] or list(chunk), e
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                found[inst["InstanceId"]] = inst
        if not resp.get("NextToken"):
            break
        kwargs["NextToken"] = resp["NextToken"]
    return found, [i for i in chunk if i not in found], None


def describe_instances(client, ids, not_found_timeout=0):
    """{instance id: instance} with one DescribeInstances call per 1000 IDs.

    EC2 answers InvalidInstanceID.NotFound for instances launched moments ago (eventual consistency): that
    call is repeated with backoff for up to ``not_found_timeout`` seconds; IDs still unknown then raise
    KubeadmAwsValidationError naming them.
    """
    found = {}
    for i in range(0, len(ids), BATCH):
        chunk = ids[i:i + BATCH]
        delays = bounded_backoff(not_found_timeout)
        with aws_call("describe instances %s" % ", ".join(chunk)):
            while True:
                got, missing, error = _describe_once(client, chunk)
                if not missing:
                    break
                wait = next(delays, None)
                if wait is None:
                    raise _unknown_instances(missing, not_found_timeout, exception=error)
                time.sleep(wait)
        found.update(got)
    return found


def create_tags(client, ids, tags):
    """Put the same ``tags`` on ``ids`` (one CreateTags call per 1000 resources)."""
    for i in range(0, len(ids), BATCH):
        chunk = ids[i:i + BATCH]
        with aws_call("tag %s with %s" % (", ".join(chunk), ", ".join(tags))):
            client.create_tags(Resources=chunk, Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                               aws_retry=True)


def identity(iid, inst):
    """What Kubernetes and cloud-provider-aws expect of the node on instance ``inst``."""
    az = (inst.get("Placement") or {}).get("AvailabilityZone")
    return {
        "instance_id": iid,
        "provider_id": "aws:///%s/%s" % (az, iid),
        "node_name": inst.get("PrivateDnsName") or None,
        "private_dns_name": inst.get("PrivateDnsName") or None,
        "private_ip": inst.get("PrivateIpAddress"),
        "availability_zone": az,
        "state": (inst.get("State") or {}).get("Name"),
        "tags": boto3_tag_list_to_ansible_dict(inst.get("Tags", [])),
    }


def read_identities(module, client, ids):
    """The identities of ``ids`` in their order, from one DescribeInstances call (more only while EC2
    does not know an instance yet)."""
    found = describe_instances(client, ids, module.params["not_found_timeout"])
    entries = [identity(iid, found[iid]) for iid in ids]
    for entry in entries:
        if entry["node_name"] is None:
            module.warn("instance %s has no private DNS name; cloud-provider-aws cannot name its node"
                        % entry["instance_id"])
    return entries


def result_of(entries, changed, added):
    return dict(changed=changed, instances=entries, by_instance_id=dict((e["instance_id"], e) for e in entries),
                tags_added=added)


# --------------------------------------------------------------------------------------------
# tag=false / tag=true
# --------------------------------------------------------------------------------------------
def report_identities(module, client, ids, pid_tag):
    """Only report the identities; tag nothing."""
    return result_of(read_identities(module, client, ids), False, {"cluster_tag": [], "provider_id_tag": []})


def ensure_tagged(module, client, ids, pid_tag):
    """Report the identities and add the cluster tag (one CreateTags for all instances lacking it) and the
    provider-ID tag (one CreateTags per instance lacking it) where they are missing or wrong."""
    entries = read_identities(module, client, ids)
    cluster_key = "kubernetes.io/cluster/%s" % module.params["cluster_name"]
    cluster_value = module.params["cluster_tag_value"]
    need_cluster, need_pid = [], []
    for entry in entries:
        if entry["state"] in UNTAGGABLE_STATES:
            module.warn("instance %s is %s; not tagging it" % (entry["instance_id"], entry["state"]))
            continue
        if entry["tags"].get(cluster_key) != cluster_value:
            need_cluster.append(entry)
        if pid_tag and entry["tags"].get(pid_tag) != entry["provider_id"]:
            need_pid.append(entry)
    if not module.check_mode:
        if need_cluster:
            create_tags(client, [e["instance_id"] for e in need_cluster], {cluster_key: cluster_value})
        for entry in need_pid:
            create_tags(client, [entry["instance_id"]], {pid_tag: entry["provider_id"]})
    for entry in need_cluster:
        entry["tags"][cluster_key] = cluster_value
    for entry in need_pid:
        entry["tags"][pid_tag] = entry["provider_id"]
    added = {"cluster_tag": [e["instance_id"] for e in need_cluster],
             "provider_id_tag": [e["instance_id"] for e in need_pid]}
    return result_of(entries, bool(need_cluster or need_pid), added)


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        cluster_name=dict(type="str", required=True, aliases=["cluster"]),
        cluster_tag_value=dict(type="str", default="owned", choices=["owned", "shared"]),
        provider_id_tag=dict(type="str", default="kubeadm-aws/provider-id"),
        tag=dict(type="bool", default=True),
        not_found_timeout=dict(type="int", default=60),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        ids, pid_tag = validate_options(module.params)
        client = module.client("ec2", retry_decorator=retry_decorator())
        handler = ensure_tagged if module.params["tag"] else report_identities
        result = handler(module, client, ids, pid_tag)
    except KubeadmAwsError as e:
        if e.exception is not None:
            module.fail_json_aws(e.exception, msg=e.message, **e.kwargs)
        module.fail_json(msg=e.message, **e.kwargs)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
