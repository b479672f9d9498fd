#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ssm_node_status
short_description: Record and list the join outcome of cluster nodes in SSM Parameter Store
version_added: 0.1.0
description:
  - Records, per node, the outcome of C(kubeadm init) or C(kubeadm join) in the C(String) parameter
    C(<prefix>/nodes/<node_name>) as one JSON document (status, Kubernetes version, role, instance ID,
    a short error message and the time of the last change).
  - Idempotent. The stored document is compared with the wanted one ignoring C(updated_at), so the same
    status and version do not rewrite the parameter just because time has passed.
  - O(state=query) returns every node of the cluster with a single paginated C(GetParametersByPath) query.
  - Error messages are truncated to O(max_error_length) characters and kubeadm bootstrap tokens and
    certificate keys found in them are masked before they are stored.
author:
  - sesacthon platform team (@sesacthon)
options:
  state:
    description:
      - V(present) records the status of O(node_name); V(absent) deletes it; V(query) returns all nodes
        (O(node_name) is not needed).
    type: str
    choices: [present, absent, query]
    default: present
  node_name:
    description:
      - The Kubernetes node name (on EC2 usually the private DNS name, for example C(ip-10-0-0-5.ec2.internal)).
        Characters C(a-z A-Z 0-9 _ . -).
      - Required unless O(state=query).
    type: str
  status:
    description:
      - The outcome to record. Required with O(state=present).
    type: str
    choices: [pending, joined, failed, reset]
  kubernetes_version:
    description:
      - Kubernetes version the node runs or tried to join with (for example C(v1.36.3)).
    type: str
  role:
    description:
      - The node's role.
    type: str
    choices: [control-plane, worker]
  instance_id:
    description:
      - The node's EC2 instance ID.
    type: str
  error:
    description:
      - Error message for O(status=failed) (ignored for other statuses). Truncated to O(max_error_length).
    type: str
  max_error_length:
    description:
      - Maximum number of characters of O(error) that are stored.
    type: int
    default: 512
  status_filter:
    description:
      - With O(state=query), only return nodes whose status is one of these.
    type: list
    elements: str
    choices: [pending, joined, failed, reset]
notes:
  - "IAM: V(present) C(ssm:GetParameters), C(ssm:PutParameter); V(absent) C(ssm:DeleteParameters)
    (and C(ssm:GetParameters)); V(query) C(ssm:GetParametersByPath)."
  - Supports check mode.
extends_documentation_fragment:
  - sesacthon.kubeadm_aws.cluster
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Record a successful join
  sesacthon.kubeadm_aws.ssm_node_status:
    cluster_name: prod
    node_name: "{{ ansible_facts['nodename'] }}"
    status: joined
    role: worker
    kubernetes_version: v1.36.3
    instance_id: "{{ instance_id }}"
  delegate_to: localhost

- name: Record a failed join
  sesacthon.kubeadm_aws.ssm_node_status:
    cluster_name: prod
    node_name: "{{ node_name }}"
    status: failed
    error: "{{ join_result.stderr | default('') }}"
  delegate_to: localhost

- name: List the nodes that failed
  sesacthon.kubeadm_aws.ssm_node_status:
    cluster_name: prod
    state: query
    status_filter: [failed]
  register: failed_nodes
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
prefix:
  description: The prefix used.
  returned: always
  type: str
  sample: /kubeadm-aws/prod
parameter:
  description: The SSM parameter of the node.
  returned: when O(state=present) or O(state=absent)
  type: str
  sample: /kubeadm-aws/prod/nodes/ip-10-0-0-5.ec2.internal
node:
  description: The stored record of the node (what would be stored, in check mode).
  returned: when O(state=present)
  type: dict
  contains:
    node_name:
      description: Node name.
      type: str
    status:
      description: Recorded status.
      type: str
    kubernetes_version:
      description: Kubernetes version, if given.
      type: str
    role:
      description: Role, if given.
      type: str
    instance_id:
      description: Instance ID, if given.
      type: str
    error:
      description: Truncated, redacted error (failed status only).
      type: str
    updated_at:
      description: Time of the last change (RFC 3339, UTC).
      type: str
  sample:
    node_name: ip-10-0-0-5.ec2.internal
    status: joined
    kubernetes_version: v1.36.3
    role: worker
    updated_at: "2026-01-31T12:00:00Z"
previous:
  description: The record before the change (null if there was none).
  returned: when O(state=present) or O(state=absent)
  type: dict
nodes:
  description: All node records (after O(status_filter)), sorted by node name.
  returned: when O(state=query)
  type: list
  elements: dict
  sample:
    - node_name: ip-10-0-0-5.ec2.internal
      status: joined
      kubernetes_version: v1.36.3
      updated_at: "2026-01-31T12:00:00Z"
counts:
  description: Number of nodes per status (before O(status_filter)).
  returned: when O(state=query)
  type: dict
  sample: {"joined": 3, "failed": 1}
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.kubeadm_aws import (
    KubeadmAwsError,
    bundles_equal,
    decode_bundle,
    delete_parameters,
    format_time,
    get_parameters,
    get_parameters_by_path,
    put_bundle,
    redact,
    resolve_prefix,
    retry_decorator,
    utcnow,
    validate_name_segment,
)

SCHEMA = 1


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True, aliases=["cluster"]),
        prefix=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent", "query"]),
        node_name=dict(type="str"),
        status=dict(type="str", choices=["pending", "joined", "failed", "reset"]),
        kubernetes_version=dict(type="str"),
        role=dict(type="str", choices=["control-plane", "worker"]),
        instance_id=dict(type="str"),
        error=dict(type="str"),
        max_error_length=dict(type="int", default=512),
        status_filter=dict(type="list", elements="str", choices=["pending", "joined", "failed", "reset"]),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ["node_name", "status"]), ("state", "absent", ["node_name"])],
    )
    p = module.params
    try:
        prefix = resolve_prefix(p["cluster_name"], p["prefix"])
        if p["state"] != "query":
            validate_name_segment(p["node_name"], "node_name")
        if p["max_error_length"] < 16:
            raise KubeadmAwsError("max_error_length must be at least 16", "max_error_length")
    except KubeadmAwsError as e:
        module.fail_json(msg=str(e), field=e.field)

    client = module.client("ssm", retry_decorator=retry_decorator())
    nodes_path = prefix + "/nodes"
    result = dict(changed=False, prefix=prefix)

    if p["state"] == "query":
        records = []
        counts = {}
        for param in get_parameters_by_path(module, client, nodes_path, recursive=False):
            rec = decode_bundle(module, param["Name"], param)
            rec.setdefault("node_name", param["Name"].rsplit("/", 1)[-1])
            rec.pop("schema", None)
            counts[rec.get("status", "unknown")] = counts.get(rec.get("status", "unknown"), 0) + 1
            if p["status_filter"] and rec.get("status") not in p["status_filter"]:
                continue
            records.append(rec)
        records.sort(key=lambda r: r["node_name"])
        result.update(nodes=records, counts=counts)
        module.exit_json(**result)

    name = "%s/%s" % (nodes_path, p["node_name"])
    result["parameter"] = name
    current = decode_bundle(module, name, get_parameters(module, client, [name]).get(name))
    result["previous"] = current

    if p["state"] == "absent":
        if current is not None and not module.check_mode:
            delete_parameters(module, client, [name])
        result["changed"] = current is not None
        module.exit_json(**result)

    wanted = {"schema": SCHEMA, "node_name": p["node_name"], "status": p["status"]}
    for k in ("kubernetes_version", "role", "instance_id"):
        if p[k]:
            wanted[k] = p[k]
    if p["status"] == "failed" and p["error"]:
        err = redact(p["error"].strip())
        if len(err) > p["max_error_length"]:
            err = err[:p["max_error_length"] - 3] + "..."
        wanted["error"] = err

    if bundles_equal(current, wanted):
        node = current
    else:
        wanted["updated_at"] = format_time(utcnow())
        if not module.check_mode:
            put_bundle(module, client, name, wanted, secure=False,
                       description="kubeadm join status of node %s" % p["node_name"])
        node = wanted
        result["changed"] = True
    node = dict(node)
    node.pop("schema", None)
    result["node"] = node
    module.exit_json(**result)


if __name__ == "__main__":
    main()
