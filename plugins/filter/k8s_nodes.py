# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters over the Node objects the Kubernetes API returns (``kubernetes.core.k8s_info`` with
``kind: Node``, its ``resources`` list).

* ``ready_node_names``: the names of the nodes whose ``Ready`` condition is ``True``.
* ``labels_to_patch``: from the labels the nodes have and those the play wants, the labels each node
  still needs (a node that has them all is left out, so an empty result means nothing to patch).

Documentation of each filter: the ``<filter name>.yml`` files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible_collections.sesacthon.kubeadm_aws.plugins.filter.node_inputs import label_value_string


def _is_ready(node):
    status = node.get("status") or {}
    conditions = (status.get("conditions") or []) if isinstance(status, Mapping) else []
    return any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def ready_node_names(resources):
    """Names of the Node objects in ``resources`` whose ``Ready`` condition has status ``"True"``, in
    the order given. Nodes without status or conditions (just registered) are not ready."""
    if resources is None:
        return []
    if isinstance(resources, str) or not is_sequence(resources):
        raise AnsibleFilterError("ready_node_names expects a list of Node objects, got %s" % type(resources).__name__)
    names = []
    for node in resources:
        if not isinstance(node, Mapping):
            raise AnsibleFilterError("ready_node_names: %r is not a Node object" % (node,))
        name = (node.get("metadata") or {}).get("name")
        if name and _is_ready(node):
            names.append(name)
    return names


def labels_to_patch(current, wanted):
    """``{node: labels}`` of the labels in ``wanted`` that each node lacks or has with another value.

    ``current`` is either ``{node name: {labels}}`` or the ``resources`` list of ``k8s_info`` (Node
    objects; their ``metadata.labels`` are used). ``wanted`` is ``{node name: {labels}}``. Only the
    labels to change are returned, as strings; nodes that need nothing are left out. A wanted node that
    ``current`` does not have is returned with all its labels, so that the patch fails naming it rather
    than the node being skipped silently.
    """
    if current is None:
        current = {}
    if not isinstance(current, Mapping):
        if isinstance(current, str) or not is_sequence(current):
            raise AnsibleFilterError("labels_to_patch expects the current labels as a dict or a list of Node "
                                     "objects, got %s" % type(current).__name__)
        nodes = {}
        for node in current:
            metadata = (node.get("metadata") or {}) if isinstance(node, Mapping) else {}
            if not metadata.get("name"):
                raise AnsibleFilterError("labels_to_patch: %r is not a Node object" % (node,))
            nodes[metadata["name"]] = metadata.get("labels") or {}
        current = nodes
    if wanted is None:
        wanted = {}
    if not isinstance(wanted, Mapping):
        raise AnsibleFilterError("labels_to_patch expects the wanted labels as a dict of node: labels, got %s"
                                 % type(wanted).__name__)
    patch = {}
    for node, labels in wanted.items():
        if labels is None:
            continue
        if not isinstance(labels, Mapping):
            raise AnsibleFilterError("labels_to_patch: the wanted labels of %s are not a dict: %r" % (node, labels))
        have = current.get(node) or {}
        missing = {
            key: label_value_string(value)
            for key, value in labels.items()
            if key not in have or label_value_string(have[key]) != label_value_string(value)
        }
        if missing:
            patch[node] = missing
    return patch


class FilterModule(object):
    """Kubernetes Node filters of sesacthon.kubeadm_aws."""

    def filters(self):
        return {
            "ready_node_names": ready_node_names,
            "labels_to_patch": labels_to_patch,
        }
