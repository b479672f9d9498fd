# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters over the Pod objects the Kubernetes API returns (``kubernetes.core.k8s_info`` with
``kind: Pod``, its ``resources`` list).

* ``pod_node_names``: the nodes the pods run on, only those whose ``Ready`` condition is ``True`` (or,
  with ``ready=false``, only those whose pod is not Ready). With the static etcd pods of a kubeadm
  control plane (label ``component=etcd``) that is the list of healthy (or unhealthy) etcd members:
  the pod is Ready only while etcd answers its health probe.

Documentation: ``pod_node_names.yml`` next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence


def _ready(pod):
    status = pod.get("status") or {}
    if not isinstance(status, Mapping):
        return False
    conditions = status.get("conditions") or []
    return any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_node_names(resources, ready=True):
    """Sorted names of the nodes whose pod in ``resources`` is Ready (``ready=True``) or not Ready."""
    if resources is None:
        return []
    if isinstance(resources, str) or not is_sequence(resources):
        raise AnsibleFilterError("pod_node_names expects a list of Pod objects, got %s" % type(resources).__name__)
    names = set()
    for pod in resources:
        if not isinstance(pod, Mapping):
            raise AnsibleFilterError("pod_node_names expects Pod objects (dicts), got %s" % type(pod).__name__)
        node = (pod.get("spec") or {}).get("nodeName")
        if node and _ready(pod) == bool(ready):
            names.add(node)
    return sorted(names)


class FilterModule(object):
    def filters(self):
        return {"pod_node_names": pod_node_names}
