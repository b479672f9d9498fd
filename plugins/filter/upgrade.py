# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filter for playbooks/upgrade.yml: what an upgrade to a Kubernetes version has to do on a running
cluster, and why it must be refused.

* ``upgrade_plan``: from the target version, the cluster's version (kubeadm-config's
  ``kubernetesVersion``) and the Node objects: the refusals (a downgrade, a skipped minor, another major,
  a kubelet the skew policy would not allow next to the new API server, a node that is not Ready) and the
  work left (``kubeadm upgrade apply`` or not, the nodes whose kubelet is not at the target yet, the nodes
  still cordoned), so that a run interrupted half-way continues where it stopped.

Documentation: ``upgrade_plan.yml`` next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# Kubernetes version skew policy: a kubelet may be up to three minors older than the API server, never newer.
KUBELET_MAX_MINORS_BEHIND = 3
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


def parse_version(text, what="version"):
    m = _VERSION.match(str(text or "").strip())
    if not m:
        raise AnsibleFilterError("upgrade_plan: %s %r is not a Kubernetes version (X.Y.Z)" % (what, text))
    return tuple(int(x) for x in m.groups())


def show(v):
    return "v%d.%d.%d" % v


def _ready(node):
    conditions = ((node.get("status") or {}).get("conditions")) or []
    return any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def upgrade_plan(target, cluster_version, nodes=None):
    """What upgrading the cluster (at ``cluster_version``) to ``target`` involves, and the refusals."""
    want = parse_version(target, "target")
    have = parse_version(cluster_version, "cluster version")
    errors = []
    if want[0] != have[0]:
        errors.append("the cluster runs %s and %s is another major version: kubeadm upgrades within a major only"
                      % (show(have), show(want)))
    elif want < have:
        errors.append("%s to %s is a downgrade: kubeadm upgrades forward only (an etcd snapshot taken before the "
                      "upgrade, etcd_restore.yml, is the way back)" % (show(have), show(want)))
    elif want[1] > have[1] + 1:
        errors.append("%s to %s skips %s: upgrade one minor at a time (first to the latest %d.%d patch)"
                      % (show(have), show(want), ", ".join("%d.%d" % (have[0], m) for m in range(have[1] + 1, want[1])),
                         have[0], have[1] + 1))
    kubelets = {}
    pending, cordoned, not_ready = [], [], []
    for node in nodes or []:
        if not isinstance(node, Mapping):
            raise AnsibleFilterError("upgrade_plan expects Node objects (dicts), got %s" % type(node).__name__)
        name = (node.get("metadata") or {}).get("name", "")
        kubelet_text = (((node.get("status") or {}).get("nodeInfo")) or {}).get("kubeletVersion", "")
        kubelet = parse_version(kubelet_text, "kubelet version of %s" % name)
        kubelets[name] = show(kubelet)
        if kubelet != want:
            pending.append(name)
        if (node.get("spec") or {}).get("unschedulable"):
            cordoned.append(name)
        if not _ready(node):
            not_ready.append(name)
        if kubelet > want:
            errors.append("node %s runs kubelet %s, newer than %s: a kubelet may not be newer than the API server"
                          % (name, show(kubelet), show(want)))
        elif want[1] - kubelet[1] > KUBELET_MAX_MINORS_BEHIND:
            errors.append("node %s runs kubelet %s, more than %d minors behind %s (Kubernetes version skew policy): "
                          "upgrade it first" % (name, show(kubelet), KUBELET_MAX_MINORS_BEHIND, show(want)))
    for name in sorted(not_ready):
        errors.append("node %s is not Ready: repair it or remove it (remove_node.yml) before the upgrade" % name)
    return {
        "current": show(have),
        "target": show(want),
        "errors": errors,
        "apply": have != want,
        "kubelets": kubelets,
        "pending": sorted(pending),
        "cordoned": sorted(cordoned),
        "done": have == want and not pending and not cordoned,
    }


class FilterModule(object):
    def filters(self):
        return {"upgrade_plan": upgrade_plan}
