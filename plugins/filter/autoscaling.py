# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters of the Auto Scaling path (role asg, playbooks join_workers.yml, scale_in.yml,
rotate_join_material.yml).

* ``lifecycle_actions``: from what ``amazon.aws.autoscaling_instance_info`` says about the play's
  instances and the outcome of each, the lifecycle actions to complete (instances outside an Auto
  Scaling group, or not waiting in the hook's state, are left out).
* ``asg_input_errors``: what is wrong with the inputs of the asg role, before anything changes.
* ``asg_propagated_tags``: the group's tags (the cluster's and the user's), propagated at launch.
* ``terminating_nodes``: the instances waiting in a terminate hook, with the node each registered as.
* ``expired_bootstrap_tokens``: the bootstrap token Secrets the collection created whose expiration
  has passed.
* ``token_rotation_min_ttl``: seconds a stored token must have left not to be rotated (half its life).

Documentation of each filter: the ``<filter name>.yml`` files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.durations import parse_duration, parse_time
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.errors import KubeadmAwsError

# The lifecycle state an instance waits in while a hook of each transition holds it.
WAIT_STATES = {"launch": "Pending:Wait", "terminate": "Terminating:Wait"}
RESULTS = ("CONTINUE", "ABANDON")
# Tags the asg role sets itself: the user's extra tags may not override them.
RESERVED_TAG_PREFIXES = ("kubeadm-aws/", "kubernetes.io/cluster/", "aws:")
CALLBACK_URL = re.compile(r"^https?://[^/\s]+(/[^\s]*)?/api/v2/job_templates/[0-9]+/callback/$")
LABEL_OR_TAINT = ("k8s.io/label/", "k8s.io/taint/")


def _list(value, what):
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not is_sequence(value):
        raise AnsibleFilterError("%s: expected a list, got %s" % (what, type(value).__name__))
    return list(value)


def lifecycle_actions(instances, outcomes, transition="launch", hook=""):
    """The lifecycle actions to complete: one ``{instance_id, group, hook, result}`` per instance of
    ``outcomes`` that ``instances`` (``auto_scaling_instances`` of amazon.aws.autoscaling_instance_info)
    shows waiting in the state of ``transition`` (``Pending:Wait`` for a launch, ``Terminating:Wait``
    for a termination). ``outcomes`` maps instance ids to ``CONTINUE`` or ``ABANDON``. Sorted by instance id."""
    if transition not in WAIT_STATES:
        raise AnsibleFilterError("lifecycle_actions: transition must be launch or terminate, got %r" % (transition,))
    if not hook:
        raise AnsibleFilterError("lifecycle_actions: the lifecycle hook's name is empty")
    if outcomes is None:
        outcomes = {}
    if not isinstance(outcomes, Mapping):
        raise AnsibleFilterError("lifecycle_actions: outcomes must map instance ids to CONTINUE or ABANDON")
    for instance_id, result in outcomes.items():
        if result not in RESULTS:
            raise AnsibleFilterError("lifecycle_actions: %s: result %r is not CONTINUE or ABANDON" % (instance_id, result))
    actions = []
    for inst in _list(instances, "lifecycle_actions"):
        if not isinstance(inst, Mapping):
            raise AnsibleFilterError("lifecycle_actions: %r is not an Auto Scaling instance" % (inst,))
        instance_id = inst.get("instance_id")
        if instance_id not in outcomes or inst.get("lifecycle_state") != WAIT_STATES[transition]:
            continue
        actions.append({"instance_id": instance_id, "group": inst.get("auto_scaling_group_name"), "hook": hook,
                        "result": outcomes[instance_id]})
    return sorted(actions, key=lambda a: a["instance_id"])


def asg_input_errors(inputs):
    """Messages naming each bad input of the asg role (empty when all is well). ``inputs`` is a dict of
    the role's variables without their ``asg_`` prefix, plus ``user_data`` (the rendered stub); only the
    inputs given are checked (the user_data entry point has no AMI or subnets)."""
    if not isinstance(inputs, Mapping):
        raise AnsibleFilterError("asg_input_errors expects a dict of the asg role's inputs")
    s = inputs
    errors = []
    if "image_id" in s and not str(s.get("image_id") or "").startswith("ami-"):
        errors.append("asg_image_id must be an AMI id (ami-...), got %r" % (s.get("image_id"),))
    if "subnet_ids" in s and not s.get("subnet_ids"):
        errors.append("asg_subnet_ids must name at least one subnet (the ASG's VPC zone identifier)")
    low, high, desired = s.get("min_size"), s.get("max_size"), s.get("desired_capacity")
    if low is not None and high is not None:
        if int(low) < 0 or int(low) > int(high):
            errors.append("asg_min_size (%s) must be 0..asg_max_size (%s)" % (low, high))
        elif desired is not None and not int(low) <= int(desired) <= int(high):
            errors.append("asg_desired_capacity (%s) is outside asg_min_size..asg_max_size (%s..%s)" % (desired, low, high))
    mode = s.get("mode")
    if mode == "callback":
        if not CALLBACK_URL.match(str(s.get("callback_url") or "")):
            errors.append("asg_callback_url must be the join template's provisioning callback, "
                          "https://<awx>/api/v2/job_templates/<id>/callback/, got %r" % (s.get("callback_url"),))
        if not re.match(r"^[A-Za-z0-9._~-]{8,128}$", str(s.get("callback_host_config_key") or "")):
            errors.append("asg_callback_host_config_key must be the join template's host config key "
                          "(8 to 128 letters, digits or ._~-)")
    elif mode == "pull":
        if s.get("callback_host_config_key"):
            errors.append("asg_callback_host_config_key is set but asg_mode is pull: leave it empty, so that it is "
                          "not written into the user data")
    else:
        errors.append("asg_mode must be callback or pull, got %r" % (mode,))
    for key in s.get("tags") or {}:
        if str(key).startswith(RESERVED_TAG_PREFIXES):
            errors.append("asg_tags: %s is set by the role itself (cluster, role and cloud provider tags)" % key)
        elif not 0 < len(str(key)) <= 128:
            errors.append("asg_tags: %r is not a valid EC2 tag key (1 to 128 characters)" % (key,))
    for name in ("launch_hook_timeout", "terminate_hook_timeout"):
        value = s.get(name)
        if value is not None and not 30 <= int(value) <= 7200:
            errors.append("asg_%s must be 30..7200 seconds (AWS's range for a heartbeat timeout), got %s" % (name, value))
    if "user_data" in s:
        size = len(str(s.get("user_data") or "").encode("utf-8"))
        limit = int(s.get("user_data_limit") or 1024)
        if size > limit:
            errors.append("the rendered user data has %d bytes, more than %d: shorten asg_callback_url or the "
                          "pull-mode extra variables" % (size, limit))
    return errors


def asg_propagated_tags(extra, cluster):
    """The tags of the Auto Scaling group as amazon.aws.autoscaling_group takes them, every one propagated
    to the instances it launches: the cluster's (kubeadm-aws/cluster, kubeadm-aws/role=worker,
    kubernetes.io/cluster/<cluster>=owned, Name) and ``extra`` (labels, taints), sorted by key."""
    if not cluster:
        raise AnsibleFilterError("asg_propagated_tags: the cluster name is empty")
    if extra is None:
        extra = {}
    if not isinstance(extra, Mapping):
        raise AnsibleFilterError("asg_propagated_tags: the extra tags must be a dict")
    tags = {"Name": "%s-worker" % cluster}
    tags.update((str(k), str(v)) for k, v in extra.items())
    tags.update({"kubeadm-aws/cluster": cluster, "kubeadm-aws/role": "worker",
                 "kubernetes.io/cluster/%s" % cluster: "owned"})
    return [{k: v, "propagate_at_launch": True} for k, v in sorted(tags.items())]


def terminating_nodes(instances, ec2_instances, nodes=None):
    """The instances ``instances`` (auto_scaling_instances) shows in ``Terminating:Wait``, each as
    ``{instance_id, group, node, joined}``: ``node`` is the instance's private DNS name (from
    ``ec2_instances``, the ``instances`` of amazon.aws.ec2_instance_info), the node name it registered
    with; ``joined`` whether ``nodes`` (Node objects) has a Node of that name or with the instance's
    providerID. Sorted by instance id."""
    dns = {}
    for inst in _list(ec2_instances, "terminating_nodes"):
        if isinstance(inst, Mapping) and inst.get("instance_id"):
            dns[inst["instance_id"]] = inst.get("private_dns_name") or ""
    names, by_provider = set(), {}
    for node in _list(nodes, "terminating_nodes"):
        if not isinstance(node, Mapping):
            continue
        name = (node.get("metadata") or {}).get("name")
        provider = (node.get("spec") or {}).get("providerID") or ""
        names.add(name)
        if provider:
            by_provider[provider.rsplit("/", 1)[-1]] = name
    out = []
    for inst in _list(instances, "terminating_nodes"):
        if not isinstance(inst, Mapping) or inst.get("lifecycle_state") != WAIT_STATES["terminate"]:
            continue
        instance_id = inst.get("instance_id")
        node = by_provider.get(instance_id) or dns.get(instance_id, "")
        out.append({"instance_id": instance_id, "group": inst.get("auto_scaling_group_name"), "node": node,
                    "joined": bool(node) and node in names})
    return sorted(out, key=lambda i: i["instance_id"])


def _b64(data, key):
    raw = (data or {}).get(key)
    if raw is None:
        return ""
    try:
        return base64.b64decode(raw).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise AnsibleFilterError("expired_bootstrap_tokens: data.%s of a bootstrap token Secret is not base64" % key)


def expired_bootstrap_tokens(secrets, description, now=None):
    """Names of the bootstrap token Secrets (``k8s_info`` resources, type ``bootstrap.kubernetes.io/token``)
    whose ``description`` is ``description`` and whose ``expiration`` is at or before ``now`` (an RFC 3339
    time; the current time when omitted). Tokens without an expiration never expire and are left alone;
    so are tokens someone else created (another description). Sorted."""
    if not description:
        raise AnsibleFilterError("expired_bootstrap_tokens: the description of the collection's tokens is empty")
    try:
        when = parse_time(now, "now") if now else datetime.datetime.now(datetime.timezone.utc)
    except KubeadmAwsError as e:
        raise AnsibleFilterError("expired_bootstrap_tokens: %s" % e.message)
    names = []
    for secret in _list(secrets, "expired_bootstrap_tokens"):
        if not isinstance(secret, Mapping) or secret.get("type") != "bootstrap.kubernetes.io/token":
            continue
        data = secret.get("data") or {}
        if _b64(data, "description") != description:
            continue
        expiration = _b64(data, "expiration")
        if not expiration:
            continue
        try:
            expires = parse_time(expiration, "expiration")
        except KubeadmAwsError:
            continue
        if expires <= when:
            names.append((secret.get("metadata") or {}).get("name"))
    return sorted(n for n in names if n)


def token_rotation_min_ttl(ttl):
    """Seconds a stored token must still have not to be rotated: half of ``ttl`` (a duration: 2h, 7200)."""
    try:
        seconds = parse_duration(ttl, "kubeadm_aws_token_ttl")
    except KubeadmAwsError as e:
        raise AnsibleFilterError("token_rotation_min_ttl: %s" % e.message)
    if not seconds:
        raise AnsibleFilterError("token_rotation_min_ttl: the token lifetime is empty or 0 (a token that never "
                                 "expires is never rotated)")
    return seconds // 2


class FilterModule(object):
    def filters(self):
        return {
            "lifecycle_actions": lifecycle_actions,
            "asg_input_errors": asg_input_errors,
            "asg_propagated_tags": asg_propagated_tags,
            "terminating_nodes": terminating_nodes,
            "expired_bootstrap_tokens": expired_bootstrap_tokens,
            "token_rotation_min_ttl": token_rotation_min_ttl,
        }
