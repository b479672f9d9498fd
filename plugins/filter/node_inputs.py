# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters for the node labels and taints a cluster gets from EC2 tags and inventory variables.

Where the data comes from and where it goes:

* The ``aws_ec2`` inventory's ``compose`` turns the instance tags into host variables:
  ``ec2_tags | sesacthon.kubeadm_aws.tag_labels`` -> ``kubeadm_aws_tag_labels`` and
  ``ec2_tags | sesacthon.kubeadm_aws.tag_taints`` -> ``kubeadm_aws_tag_taints``.
* The settings role checks every host of the play once, before any host changes:
  ``hostvars | sesacthon.kubeadm_aws.node_input_errors(ansible_play_hosts_all)`` -> a list of messages
  (empty when all is well), each naming the host, the label or taint and where it came from.
* The node identity role splits a node's labels into those the kubelet registers itself and those
  applied from the control plane (``split_node_labels``), builds kubeadm's ``kubeletExtraArgs``
  (``kubelet_extra_args``) and the ``nodeRegistration.taints`` list (``kubeadm_taints``).

Documentation of each filter: the ``<filter name>.yml`` files next to this one (``ansible-doc -t filter
sesacthon.kubeadm_aws.<name>``). The label rules are those of the Kubernetes API (apimachinery's
``IsQualifiedName`` / ``IsValidLabelValue``) and of the NodeRestriction admission plugin.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

LABEL_TAG_PREFIX = "k8s.io/label/"
TAINT_TAG_PREFIX = "k8s.io/taint/"
LABELS_VARIABLE = "kubeadm_aws_node_labels"
TAINTS_VARIABLE = "kubeadm_aws_node_taints"
TAG_LABELS_VARIABLE = "kubeadm_aws_tag_labels"
TAG_TAINTS_VARIABLE = "kubeadm_aws_tag_taints"

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

# Kubernetes (apimachinery validation): a qualified name is [prefix/]name; the prefix a DNS-1123
# subdomain of at most 253 characters, the name 1-63 characters of [A-Za-z0-9-_.] starting and
# ending with an alphanumeric character. A label value is the same as a name, or empty.
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
PREFIX_MAX = 253
NAME_MAX = 63
VALUE_MAX = 63

# The kubernetes.io and k8s.io namespaces: prefixes kubernetes.io, k8s.io and their subdomains.
_RESERVED_DOMAINS = ("kubernetes.io", "k8s.io")
# Of those, the kubelet may set these itself (NodeRestriction admission plugin): the
# kubelet.kubernetes.io and node.kubernetes.io namespaces.
_KUBELET_DOMAINS = ("kubelet.kubernetes.io", "node.kubernetes.io")
# Labels whose nodes the NodeRestriction plugin protects from the nodes themselves (workloads are
# pinned with them precisely because a node cannot choose them).
_NODE_RESTRICTION_DOMAIN = "node-restriction.kubernetes.io"
# node-role.kubernetes.io/<role>: documented in docs/tags.md as settable from a tag (applied from the
# control plane, like every label of the reserved namespaces).
_NODE_ROLE_DOMAIN = "node-role.kubernetes.io"
# node-role.kubernetes.io/<role> values that mark control planes (kubeadm sets control-plane; master is
# the name older tooling still selects on).
_CONTROL_PLANE_ROLES = ("control-plane", "master")


def _in_domain(prefix, domains):
    """True when ``prefix`` is one of ``domains`` or a subdomain of one."""
    return any(prefix == d or prefix.endswith("." + d) for d in domains)


def _prefix(key):
    return key.split("/", 1)[0] if "/" in key else ""


def is_reserved_key(key):
    """True for keys in the kubernetes.io / k8s.io namespaces (prefix kubernetes.io, k8s.io or a
    subdomain of them)."""
    return _in_domain(_prefix(key), _RESERVED_DOMAINS)


def is_kubelet_settable(key):
    """True when the kubelet may register the label itself (``--node-labels``): every key outside the
    kubernetes.io / k8s.io namespaces, and the kubelet.kubernetes.io / node.kubernetes.io namespaces."""
    return not is_reserved_key(key) or _in_domain(_prefix(key), _KUBELET_DOMAINS)


def label_value_string(value):
    """The string a label value becomes on the node: strings as they are, integers in decimal,
    booleans as ``true`` / ``false``, ``None`` (a key written without a value) as the empty string
    (``node_input_errors`` refuses other types before this matters)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def key_problems(key):
    """Why ``key`` is not a valid label or taint key (list of reasons; empty when valid)."""
    if not isinstance(key, str):
        return ["the key must be a string"]
    if key.count("/") > 1:
        return ["the key must be [prefix/]name with a single '/'"]
    problems = []
    prefix, sep, name = key.rpartition("/")
    if sep:
        if not prefix:
            problems.append("the prefix before '/' is empty")
        elif len(prefix) > PREFIX_MAX:
            problems.append("the prefix is %d characters long, at most %d are allowed" % (len(prefix), PREFIX_MAX))
        elif not _DNS1123_SUBDOMAIN.match(prefix):
            problems.append("the prefix %r must be a DNS subdomain: lower-case letters, digits, '-' and '.'" % prefix)
    if not name:
        problems.append("the name is empty")
    elif len(name) > NAME_MAX:
        problems.append("the name %r is %d characters long, at most %d are allowed" % (name, len(name), NAME_MAX))
    elif not _NAME.match(name):
        problems.append(
            "the name %r must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit" % name
        )
    return problems


def value_problems(value):
    """Why ``value`` is not a valid label or taint value (list of reasons; empty when valid)."""
    if isinstance(value, float) or not isinstance(value, (str, int, type(None))):
        return ["the value must be a string (quote it), not %s" % type(value).__name__]
    value = label_value_string(value)
    if value == "":
        return []
    if len(value) > VALUE_MAX:
        return ["the value is %d characters long, at most %d are allowed" % (len(value), VALUE_MAX)]
    if not _NAME.match(value):
        return ["the value must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit"]
    return []


def _tag_items(ec2_tags, prefix, filter_name):
    if ec2_tags is None:
        return []
    if not isinstance(ec2_tags, Mapping):
        raise AnsibleFilterError("%s expects the EC2 tags as a dict, got %s" % (filter_name, type(ec2_tags).__name__))
    items = [(k[len(prefix):], v) for k, v in ec2_tags.items() if isinstance(k, str) and k.startswith(prefix)]
    return sorted(items, key=lambda kv: kv[0])


def tag_labels(ec2_tags):
    """``{k8s.io/label/<key>: <value>, ...}`` -> ``{<key>: <value>}``, sorted by key.

    Every tag with the prefix is returned, also a malformed one (an empty key from the tag
    ``k8s.io/label/``): ``node_input_errors`` reports it instead of the run ignoring it.
    """
    return dict(_tag_items(ec2_tags, LABEL_TAG_PREFIX, "tag_labels"))


def parse_taint(key, text):
    """One taint from its key and its tag value ``[<value>:]<effect>``.

    The text is split at its last ':'; without one, the whole text is the effect (``NoSchedule`` is the
    taint ``<key>:NoSchedule``). Nothing is dropped: a text that is not a taint keeps its characters in
    ``value`` / ``effect``, which ``node_input_errors`` then reports (e.g. effect ``infra`` for the tag
    value ``infra``).
    """
    text = "" if text is None else str(text)
    value, _sep, effect = text.rpartition(":")
    return {"key": key, "value": value, "effect": effect}


def tag_taints(ec2_tags):
    """``{k8s.io/taint/<key>: [<value>:]<effect>, ...}`` -> ``[{key, value, effect}, ...]``, sorted by key."""
    return [parse_taint(k, v) for k, v in _tag_items(ec2_tags, TAINT_TAG_PREFIX, "tag_taints")]


def _describe_taint(taint):
    value = label_value_string(taint.get("value"))
    effect = taint.get("effect")
    return "%s%s:%s" % (taint.get("key"), "=" + str(value) if value != "" else "", "" if effect is None else effect)


def _tag_reservation(key, kind):
    """Why an EC2 tag may not set this label / taint key (None when it may).

    EC2 tags can be written by whoever may tag the instance (launch templates, ASGs, the instance's
    own role in some setups), while the kubernetes.io / k8s.io namespaces mean something to Kubernetes:
    node-restriction.kubernetes.io labels exist so that nodes cannot choose them, node.kubernetes.io
    taints belong to the node lifecycle controller. From tags the collection takes:
    labels: node-role.kubernetes.io/* but control-plane and master, node.kubernetes.io/*,
    kubelet.kubernetes.io/* (the kubelet may set the last two itself anyway); taints:
    node-role.kubernetes.io/* but control-plane and master. Anything else in those namespaces
    is set through the inventory variables, which the cluster's administrators control.
    """
    prefix = _prefix(key)
    if not _in_domain(prefix, _RESERVED_DOMAINS):
        return None
    if _in_domain(prefix, (_NODE_RESTRICTION_DOMAIN,)):
        return "%s/ keys are reserved for labels the nodes must not choose" % prefix
    if prefix == _NODE_ROLE_DOMAIN and key.split("/", 1)[1] in _CONTROL_PLANE_ROLES:
        # Control-plane workloads (the cloud controller manager, for one) are pinned with it: a tag
        # would draw them, and what they carry, to any node its writer chooses. A control plane gets it
        # from kubeadm, through the kubeadm-aws/role tag that IAM guards (docs/iam.md).
        return "%s is what control-plane workloads are pinned to; control planes get it from kubeadm" % key
    allowed = (_NODE_ROLE_DOMAIN,) + (_KUBELET_DOMAINS if kind == "label" else ())
    if prefix in allowed:
        return None
    return "keys under %s/ (kubernetes.io / k8s.io namespace) may not come from EC2 tags" % prefix


def _host_value(host_vars, name, default):
    value = host_vars.get(name, default) if isinstance(host_vars, Mapping) else default
    return default if value is None else value


def _label_errors(host, labels_from_tags, labels_from_vars):
    errors = []
    if not isinstance(labels_from_vars, Mapping):
        return ["Host %s: %s must be a dict of label key: value, got %s" % (
            host, LABELS_VARIABLE, type(labels_from_vars).__name__)]
    merged = dict(labels_from_tags)
    merged.update(labels_from_vars)
    for key in sorted(merged, key=str):
        value = merged[key]
        from_tag = key not in labels_from_vars
        source = "from the EC2 tag %s%s" % (LABEL_TAG_PREFIX, key) if from_tag else "from %s" % LABELS_VARIABLE
        shown = "%s=%s" % (key, label_value_string(value) if not value_problems(value) else value)
        problems = key_problems(key) + value_problems(value)
        if problems:
            errors.append("Host %s: label '%s' is malformed (%s): %s." % (host, shown, source, "; ".join(problems)))
            continue
        reserved = _tag_reservation(key, "label") if from_tag else None
        if reserved:
            errors.append("Host %s: label '%s' is not allowed (%s): %s; set it in %s instead." % (
                host, shown, source, reserved, LABELS_VARIABLE))
    return errors


def _taint_errors(host, taints_from_tags, taints_from_vars):
    errors = []
    if not is_sequence(taints_from_vars):
        return ["Host %s: %s must be a list of {key, value, effect}, got %s" % (
            host, TAINTS_VARIABLE, type(taints_from_vars).__name__)]
    seen = {}
    entries = [(t, True) for t in taints_from_tags] + [(t, False) for t in taints_from_vars]
    for taint, from_tag in entries:
        if not isinstance(taint, Mapping):
            errors.append("Host %s: taint %r in %s is malformed: each taint is a dict {key, value, effect}." % (
                host, taint, TAINTS_VARIABLE))
            continue
        key = taint.get("key")
        if from_tag:
            source = "from the EC2 tag %s%s" % (TAINT_TAG_PREFIX, key)
        else:
            source = "from %s" % TAINTS_VARIABLE
        problems = key_problems("" if key is None else key) + value_problems(taint.get("value"))
        if taint.get("effect") not in TAINT_EFFECTS:
            problems.append("the effect %r must be NoSchedule, PreferNoSchedule or NoExecute" % taint.get("effect"))
        unknown = sorted(set(taint) - {"key", "value", "effect"}, key=str)
        if unknown:
            problems.append("unknown fields %s (a taint has key, value and effect)" % ", ".join(map(str, unknown)))
        shown = _describe_taint(taint)
        if problems:
            errors.append("Host %s: taint '%s' is malformed (%s): %s." % (host, shown, source, "; ".join(problems)))
            continue
        reserved = _tag_reservation(key, "taint") if from_tag else None
        if reserved:
            errors.append("Host %s: taint '%s' is not allowed (%s): %s; set it in %s instead." % (
                host, shown, source, reserved, TAINTS_VARIABLE))
            continue
        ident = (key, taint["effect"])
        if ident in seen:
            errors.append("Host %s: taint '%s' (%s) is given twice, also %s: Kubernetes allows one taint per key "
                          "and effect." % (host, shown, source, seen[ident]))
        seen[ident] = source
    return errors


def node_input_errors(hostvars, hosts=None):
    """Every problem with the labels and taints of ``hosts`` (all hosts of ``hostvars`` when None).

    ``hostvars`` maps host names to their variables (Ansible's ``hostvars``, or a plain dict); per host
    the filter reads ``kubeadm_aws_tag_labels`` / ``kubeadm_aws_tag_taints`` (from the inventory's
    tags) and ``kubeadm_aws_node_labels`` / ``kubeadm_aws_node_taints`` (variables), each optional.
    Labels are checked after the variables are merged over the tags (what the node gets), taints all.
    Returns a list of messages, one per problem, in host order; empty when all is well.
    """
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("node_input_errors expects hostvars (a dict of host: variables), got %s"
                                 % type(hostvars).__name__)
    if hosts is None:
        hosts = list(hostvars)
    elif isinstance(hosts, str) or not is_sequence(hosts):
        raise AnsibleFilterError("node_input_errors expects a list of host names, got %r" % (hosts,))
    errors = []
    for host in hosts:
        host_vars = hostvars[host] if host in hostvars else {}
        tag_label_map = _host_value(host_vars, TAG_LABELS_VARIABLE, {})
        tag_taint_list = _host_value(host_vars, TAG_TAINTS_VARIABLE, [])
        if not isinstance(tag_label_map, Mapping) or not is_sequence(tag_taint_list):
            errors.append("Host %s: %s / %s are not what the inventory's tag_labels / tag_taints filters return."
                          % (host, TAG_LABELS_VARIABLE, TAG_TAINTS_VARIABLE))
            continue
        errors.extend(_label_errors(host, tag_label_map, _host_value(host_vars, LABELS_VARIABLE, {})))
        errors.extend(_taint_errors(host, tag_taint_list, _host_value(host_vars, TAINTS_VARIABLE, [])))
    return errors


def split_node_labels(labels):
    """``{key: value}`` -> ``{'self': {...}, 'controlled': {...}}`` with string values.

    ``self``: the labels the kubelet may register itself (``--node-labels``); ``controlled``: those in
    the kubernetes.io / k8s.io namespaces that the NodeRestriction admission plugin keeps kubelets from
    setting (all but kubelet.kubernetes.io and node.kubernetes.io), applied from the control plane.
    """
    if labels is None:
        labels = {}
    if not isinstance(labels, Mapping):
        raise AnsibleFilterError("split_node_labels expects a dict of labels, got %s" % type(labels).__name__)
    out = {"self": {}, "controlled": {}}
    for key in sorted(labels, key=str):
        out["self" if is_kubelet_settable(key) else "controlled"][key] = label_value_string(labels[key])
    return out


def kubelet_extra_args(args):
    """``{name: value}`` -> kubeadm's ``[{name, value}]`` (v1beta4 ``kubeletExtraArgs``), in the dict's
    order, leaving out the arguments whose value is empty or None."""
    if args is None:
        return []
    if not isinstance(args, Mapping):
        raise AnsibleFilterError("kubelet_extra_args expects a dict of argument: value, got %s" % type(args).__name__)
    return [
        {"name": name, "value": label_value_string(value)}
        for name, value in args.items()
        if label_value_string(value) != ""
    ]


def kubeadm_taints(taints):
    """A list of ``{key, value, effect}`` -> kubeadm's ``nodeRegistration.taints``: the same taints, in
    order, without an empty ``value`` field and without repeats of a key and effect (the first wins)."""
    if taints is None:
        return []
    if isinstance(taints, str) or not is_sequence(taints):
        raise AnsibleFilterError("kubeadm_taints expects a list of taints, got %s" % type(taints).__name__)
    out, seen = [], set()
    for taint in taints:
        if not isinstance(taint, Mapping) or "key" not in taint or "effect" not in taint:
            raise AnsibleFilterError("kubeadm_taints: %r is not a taint {key, value, effect}" % (taint,))
        ident = (taint["key"], taint["effect"])
        if ident in seen:
            continue
        seen.add(ident)
        item = {"key": taint["key"]}
        value = label_value_string(taint.get("value"))
        if value != "":
            item["value"] = value
        item["effect"] = taint["effect"]
        out.append(item)
    return out


class FilterModule(object):
    """Node label and taint filters of sesacthon.kubeadm_aws."""

    def filters(self):
        return {
            "tag_labels": tag_labels,
            "tag_taints": tag_taints,
            "node_input_errors": node_input_errors,
            "split_node_labels": split_node_labels,
            "kubelet_extra_args": kubelet_extra_args,
            "kubeadm_taints": kubeadm_taints,
        }
