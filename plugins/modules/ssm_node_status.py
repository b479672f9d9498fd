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
  - O(nodes) records several nodes in one run (one C(GetParameters) call per 10 nodes, one
    C(PutParameter) per node whose record changes; SSM has no batch write), so that a play records all
    its nodes from one task instead of one task per host.
  - O(state=query) returns every node of the cluster with a single paginated C(GetParametersByPath) query.
  - O(state=absent) with O(node_names) deletes several records at once (one C(GetParameters) and one
    C(DeleteParameters) call per 10 nodes).
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
      - Required unless O(state=query), O(nodes) or O(node_names) is given.
    type: str
  node_names:
    description:
      - With O(state=absent), several nodes whose records to delete instead of O(node_name).
    type: list
    elements: str
  status:
    description:
      - The outcome to record. Required with O(state=present) and O(node_name).
    type: str
    choices: [pending, joined, failed, reset]
  nodes:
    description:
      - With O(state=present), several nodes to record at once instead of O(node_name) and its options.
      - Each item takes the same keys as the single-node options; O(kubernetes_version) given at the top
        level applies to the items that do not set their own.
    type: list
    elements: dict
    suboptions:
      node_name:
        description: The Kubernetes node name.
        type: str
        required: true
      status:
        description: The outcome to record.
        type: str
        required: true
        choices: [pending, joined, failed, reset]
      kubernetes_version:
        description: Kubernetes version the node runs or tried to join with.
        type: str
      role:
        description: The node's role.
        type: str
        choices: [control-plane, worker]
      instance_id:
        description: The node's EC2 instance ID.
        type: str
      error:
        description: Error message for a failed node.
        type: str
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

- name: Record every node of the play that joined, in one task
  sesacthon.kubeadm_aws.ssm_node_status:
    cluster_name: prod
    kubernetes_version: v1.36.3
    nodes:
      - node_name: ip-10-0-0-5.ec2.internal
        status: joined
        role: worker
        instance_id: i-0123456789abcdef0
      - node_name: ip-10-0-0-6.ec2.internal
        status: joined
        role: worker
        instance_id: i-0fedcba9876543210
  run_once: true
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
  returned: when O(state=present) with O(node_name), or O(state=absent) with O(node_name)
  type: str
  sample: /kubeadm-aws/prod/nodes/ip-10-0-0-5.ec2.internal
deleted:
  description: With O(state=absent) and O(node_names), the node names whose records were (in check mode, would be) deleted.
  returned: when O(state=absent) with O(node_names)
  type: list
  elements: str
  sample: [ip-10-0-0-5.ec2.internal]
node:
  description: The stored record of the node (what would be stored, in check mode).
  returned: when O(state=present) with O(node_name)
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
  returned: when O(state=present) with O(node_name), or O(state=absent) with O(node_name)
  type: dict
results:
  description: With O(nodes), one entry per node in the given order.
  returned: when O(state=present) with O(nodes)
  type: list
  elements: dict
  contains:
    parameter:
      description: The SSM parameter of the node.
      type: str
    changed:
      description: Whether the node's record was written (or would be, in check mode).
      type: bool
    node:
      description: The stored record, as RV(node).
      type: dict
    previous:
      description: The record before the change (null if there was none).
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

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.durations import format_time, utcnow
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.errors import (
    KubeadmAwsError,
    KubeadmAwsValidationError,
)
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.naming import (
    resolve_prefix,
    validate_name_segment,
)
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.redaction import redact
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.retries import retry_decorator
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.ssm import (
    bundles_equal,
    decode_bundle,
    delete_parameters,
    get_parameters_by_path,
    put_bundle,
    read_bundles,
)

SCHEMA = 1
STATUSES = ["pending", "joined", "failed", "reset"]
ROLES = ["control-plane", "worker"]
RECORD_KEYS = ("node_name", "status", "kubernetes_version", "role", "instance_id", "error")


def validate_options(params):
    """Raises KubeadmAwsValidationError naming the option."""
    if params["nodes"] is not None and params["state"] != "present":
        raise KubeadmAwsValidationError("nodes is only used with state=present", "nodes")
    if params["node_names"] is not None and params["state"] != "absent":
        raise KubeadmAwsValidationError("node_names is only used with state=absent", "node_names")
    if params["state"] == "present" and params["node_name"] is not None and not params["status"]:
        raise KubeadmAwsValidationError("state=present with node_name needs status", "status")
    if params["state"] != "query":
        if params["node_names"] is not None:
            names = params["node_names"]
        else:
            names = [n["node_name"] for n in params["nodes"] or []] or [params["node_name"]]
        for node_name in names:
            validate_name_segment(node_name, "node_name")
    if params["max_error_length"] < 16:
        raise KubeadmAwsValidationError("max_error_length must be at least 16", "max_error_length")


def node_parameter(nodes_path, node_name):
    return "%s/%s" % (nodes_path, node_name)


def public_record(record):
    """A stored record as returned to the play (without the schema version)."""
    if record is None:
        return None
    record = dict(record)
    record.pop("schema", None)
    return record


def wanted_record(item, params):
    """The record to store for one node (``item`` has the keys of a ``nodes`` entry)."""
    wanted = {"schema": SCHEMA, "node_name": item["node_name"], "status": item["status"]}
    for k in ("kubernetes_version", "role", "instance_id"):
        value = item.get(k) or (params[k] if k == "kubernetes_version" else None)
        if value:
            wanted[k] = value
    if item["status"] == "failed" and item.get("error"):
        err = redact(item["error"].strip())
        if len(err) > params["max_error_length"]:
            err = err[:params["max_error_length"] - 3] + "..."
        wanted["error"] = err
    return wanted


# --------------------------------------------------------------------------------------------
# state=present
# --------------------------------------------------------------------------------------------
def ensure_present(module, client, nodes_path):
    """Record O(node_name), or every item of O(nodes): one GetParameters per 10 nodes, one
    PutParameter per node whose record differs from the stored one (ignoring updated_at)."""
    params = module.params
    single = params["nodes"] is None
    items = [dict((k, params[k]) for k in RECORD_KEYS)] if single else params["nodes"]
    names = [node_parameter(nodes_path, item["node_name"]) for item in items]
    stored = read_bundles(client, names)
    results = []
    for name, item in zip(names, items):
        current = stored[name]
        wanted = wanted_record(item, params)
        changed = not bundles_equal(current, wanted)
        if changed:
            wanted["updated_at"] = format_time(utcnow())
            if not module.check_mode:
                put_bundle(client, name, wanted, secure=False,
                           description="kubeadm join status of node %s" % item["node_name"])
        results.append(dict(parameter=name, changed=changed, node=public_record(wanted if changed else current),
                            previous=current))
    if single:
        return results[0]
    return dict(changed=any(r["changed"] for r in results), results=results)


# --------------------------------------------------------------------------------------------
# state=absent
# --------------------------------------------------------------------------------------------
def ensure_absent(module, client, nodes_path):
    """Delete the records of O(node_name) or O(node_names) that exist (batched reads and deletes)."""
    single = module.params["node_names"] is None
    node_names = [module.params["node_name"]] if single else module.params["node_names"]
    names = [node_parameter(nodes_path, n) for n in node_names]
    current = read_bundles(client, names) if names else {}
    existing = [name for name in names if current[name] is not None]
    if existing and not module.check_mode:
        delete_parameters(client, existing)
    if single:
        return dict(changed=bool(existing), parameter=names[0], previous=current[names[0]])
    return dict(changed=bool(existing), deleted=[n for n, name in zip(node_names, names) if name in existing])


# --------------------------------------------------------------------------------------------
# state=query
# --------------------------------------------------------------------------------------------
def query_nodes(module, client, nodes_path):
    """Every node record below <prefix>/nodes (one paginated GetParametersByPath), counts per status."""
    records = []
    counts = {}
    for param in get_parameters_by_path(client, nodes_path, recursive=False):
        rec = public_record(decode_bundle(param["Name"], param))
        rec.setdefault("node_name", param["Name"].rsplit("/", 1)[-1])
        status = rec.get("status", "unknown")
        counts[status] = counts.get(status, 0) + 1
        if module.params["status_filter"] and status not in module.params["status_filter"]:
            continue
        records.append(rec)
    records.sort(key=lambda r: r["node_name"])
    return dict(changed=False, nodes=records, counts=counts)


STATES = {"present": ensure_present, "absent": ensure_absent, "query": query_nodes}


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True, aliases=["cluster"]),
        prefix=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent", "query"]),
        node_name=dict(type="str"),
        node_names=dict(type="list", elements="str"),
        status=dict(type="str", choices=STATUSES),
        nodes=dict(type="list", elements="dict", options=dict(
            node_name=dict(type="str", required=True),
            status=dict(type="str", required=True, choices=STATUSES),
            kubernetes_version=dict(type="str"),
            role=dict(type="str", choices=ROLES),
            instance_id=dict(type="str"),
            error=dict(type="str"),
        )),
        kubernetes_version=dict(type="str"),
        role=dict(type="str", choices=ROLES),
        instance_id=dict(type="str"),
        error=dict(type="str"),
        max_error_length=dict(type="int", default=512),
        status_filter=dict(type="list", elements="str", choices=STATUSES),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("node_name", "nodes"), ("node_name", "node_names"), ("nodes", "node_names")],
        required_if=[("state", "present", ["node_name", "nodes"], True), ("state", "absent", ["node_name", "node_names"], True)],
    )
    base = {}
    try:
        prefix = resolve_prefix(module.params["cluster_name"], module.params["prefix"])
        validate_options(module.params)
        base = dict(prefix=prefix)
        client = module.client("ssm", retry_decorator=retry_decorator())
        result = STATES[module.params["state"]](module, client, prefix + "/nodes")
    except KubeadmAwsError as e:
        failure = dict(base, **e.kwargs)
        if e.exception is not None:
            module.fail_json_aws(e.exception, msg=e.message, **failure)
        module.fail_json(msg=e.message, **failure)
    module.exit_json(**dict(base, **result))


if __name__ == "__main__":
    main()
