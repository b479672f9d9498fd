#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ssm_cluster_parameters
short_description: List or delete every SSM parameter of a cluster
version_added: 0.3.0
description:
  - Works on all the parameters below the cluster's prefix (C(<prefix>/...), every level) - the join material,
    the init lock and state, the node records and whatever else the collection stored there.
  - O(state=query) lists their names and types (values are not read, so SecureString parameters are not
    decrypted and no KMS permission is needed).
  - O(state=absent) deletes them (one C(DeleteParameters) call per 10 names), for the teardown of a cluster.
    A prefix that holds nothing changes nothing.
  - Parameters outside the prefix are never touched; a prefix of another cluster is a different path.
author:
  - sesacthon platform team (@sesacthon)
options:
  state:
    description:
      - V(query) lists the parameters; V(absent) deletes them.
    type: str
    choices: [query, absent]
    default: query
notes:
  - "IAM: C(ssm:GetParametersByPath) on C(<prefix>/*); with V(absent) also C(ssm:DeleteParameters)."
  - Supports check mode; V(absent) then reports what it would delete.
extends_documentation_fragment:
  - sesacthon.kubeadm_aws.cluster
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: What SSM holds for the cluster
  sesacthon.kubeadm_aws.ssm_cluster_parameters:
    cluster_name: prod
  register: stored
  delegate_to: localhost

- name: Delete everything SSM holds for the cluster (teardown)
  sesacthon.kubeadm_aws.ssm_cluster_parameters:
    cluster_name: prod
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
prefix:
  description: The prefix used.
  returned: always
  type: str
  sample: /kubeadm-aws/prod
parameters:
  description: The parameters below the prefix before the task, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Full parameter name.
      type: str
    type:
      description: C(String), C(StringList) or C(SecureString).
      type: str
  sample: [{"name": "/kubeadm-aws/prod/init/state", "type": "String"}]
deleted:
  description: Names deleted (in check mode, that would be deleted).
  returned: when O(state=absent)
  type: list
  elements: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.errors import KubeadmAwsError
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.naming import resolve_prefix
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.retries import retry_decorator
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.ssm import (
    delete_parameters,
    get_parameters_by_path,
)


def list_parameters(client, prefix):
    """Every parameter below the prefix, every level, without values."""
    found = get_parameters_by_path(client, prefix, recursive=True, decrypt=False)
    return sorted(({"name": p["Name"], "type": p.get("Type", "")} for p in found), key=lambda p: p["name"])


def query(module, client, prefix):
    return dict(changed=False, parameters=list_parameters(client, prefix))


def ensure_absent(module, client, prefix):
    parameters = list_parameters(client, prefix)
    names = [p["name"] for p in parameters]
    if names and not module.check_mode:
        delete_parameters(client, names)
    return dict(changed=bool(names), parameters=parameters, deleted=names)


STATES = {"query": query, "absent": ensure_absent}


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            cluster_name=dict(type="str", required=True, aliases=["cluster"]),
            prefix=dict(type="str"),
            state=dict(type="str", default="query", choices=list(STATES)),
        ),
        supports_check_mode=True,
    )
    base = {}
    try:
        prefix = resolve_prefix(module.params["cluster_name"], module.params["prefix"])
        base = dict(prefix=prefix)
        client = module.client("ssm", retry_decorator=retry_decorator())
        result = STATES[module.params["state"]](module, client, prefix)
    except KubeadmAwsError as e:
        failure = dict(base, **e.kwargs)
        if e.exception is not None:
            module.fail_json_aws(e.exception, msg=e.message, **failure)
        module.fail_json(msg=e.message, **failure)
    module.exit_json(**dict(base, **result))


if __name__ == "__main__":
    main()
