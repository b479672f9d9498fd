# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters for taking a node out of a cluster (playbooks/remove_node.yml, playbooks/upgrade.yml).

* ``removal_target``: everything the run knows about the node to remove, from the three places a node can
  be known by (the inventory, the cluster's Node objects, the SSM node records), and the reasons the
  removal must be refused (an unknown node, the last control plane, the control plane that serves the
  cluster's only API endpoint).
* ``etcd_removal_problem``: why removing a control plane's etcd member would be unsafe (the quorum rules of
  plugins/module_utils/etcd.py, shared with the etcd_cluster module), or an empty string.
* ``drain_blocking_pods``: the pods still on a node that a drain has to move (neither DaemonSet pods nor
  static pods nor finished pods), as ``namespace/name``.
* ``stale_node_records``: the SSM node records whose EC2 instance no longer exists (terminated without the
  scale-in hook, a spot interruption), to be deleted.

Documentation of each filter: the ``<filter name>.yml`` files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.etcd import removal_problem

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def _list(value, what):
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not is_sequence(value):
        raise AnsibleFilterError("%s: expected a list, got %s" % (what, type(value).__name__))
    return list(value)


def _ready(node):
    conditions = ((node.get("status") or {}).get("conditions")) or []
    return any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _internal_ip(node):
    for addr in ((node.get("status") or {}).get("addresses")) or []:
        if isinstance(addr, Mapping) and addr.get("type") == "InternalIP":
            return addr.get("address") or ""
    return ""


def _is_control_plane_node(node):
    return CONTROL_PLANE_LABEL in (((node.get("metadata") or {}).get("labels")) or {})


def _endpoint_host(endpoint):
    host = (endpoint or "").strip()
    if host.startswith("["):  # [IPv6]:port
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def removal_target(node, hostvars, groups, nodes=None, records=None, endpoint=""):
    """What is known about ``node`` and why removing it must be refused (``errors``; empty: go ahead)."""
    name = (node or "").strip()
    groups = groups or {}
    nodes = [n for n in _list(nodes, "nodes") if isinstance(n, Mapping)]
    records = [r for r in _list(records, "records") if isinstance(r, Mapping)]
    cp_group = list(groups.get("kube_control_plane") or [])
    target = {
        "name": name, "known": False, "in_inventory": False, "node_exists": False, "ready": False,
        "role": "", "instance_id": "", "address": "", "control_planes_left": [], "errors": [],
    }
    if not name:
        target["errors"].append("no node given: name the node to remove with -e node=<node name> "
                                "(its private DNS name, as `kubectl get nodes` shows it)")
        return target
    by_name = dict(((n.get("metadata") or {}).get("name"), n) for n in nodes)
    record = next((r for r in records if r.get("node_name") == name), None)
    in_inventory = name in (groups.get("kube_cluster") or [])
    obj = by_name.get(name)
    host = hostvars[name] if in_inventory else {}
    target.update(in_inventory=in_inventory, node_exists=obj is not None, ready=bool(obj) and _ready(obj))
    if not (in_inventory or obj is not None or record is not None):
        known = sorted(set(by_name) | set(groups.get("kube_cluster") or []))
        target["errors"].append(
            "unknown node %s: it is not a host of the inventory, not a Node of the cluster and has no SSM node "
            "record; the cluster's nodes are: %s" % (name, ", ".join(known) or "none"))
        return target
    target["known"] = True
    if name in cp_group or (obj is not None and _is_control_plane_node(obj)) or \
            (record is not None and record.get("role") == "control-plane"):
        target["role"] = "control-plane"
    else:
        target["role"] = "worker"
    provider_id = ((obj or {}).get("spec") or {}).get("providerID") or ""
    target["instance_id"] = (host.get("ec2_instance_id") if in_inventory else "") or \
        (provider_id.rsplit("/", 1)[-1] if provider_id.startswith("aws://") else "") or \
        (record or {}).get("instance_id") or ""
    target["address"] = (host.get("ec2_private_ip_address") if in_inventory else "") or \
        (_internal_ip(obj) if obj is not None else "")
    if target["role"] == "control-plane":
        others = set(h for h in cp_group if h != name)
        others |= set(n for n, o in by_name.items() if n != name and _is_control_plane_node(o))
        target["control_planes_left"] = sorted(others)
        if not others:
            target["errors"].append(
                "%s is the last control plane of the cluster: removing it would leave no API server and no "
                "etcd data (tear the whole cluster down with reset.yml instead)" % name)
        api_host = _endpoint_host(endpoint)
        if api_host and api_host in (name, target["address"]):
            target["errors"].append(
                "%s serves the cluster's API endpoint %s itself: every kubeconfig and kubelet of the cluster "
                "points at it, so the cluster would lose its API with it. Put a load balancer in front of the "
                "control planes first (kubeadm_aws_control_plane_endpoint) and move the endpoint to it" % (name, endpoint))
    return target


def etcd_removal_problem(members, name="", address="", force=False):
    """Why removing the member of ``name`` (or the one on ``address``) is unsafe; "" when it is not."""
    records = [m for m in _list(members, "members") if isinstance(m, Mapping)]
    return removal_problem(records, name or None, address or None, bool(force)) or ""


def drain_blocking_pods(pods):
    """``namespace/name`` of the pods a drain has to move off their node, sorted."""
    out = []
    for pod in _list(pods, "pods"):
        if not isinstance(pod, Mapping):
            raise AnsibleFilterError("drain_blocking_pods expects Pod objects (dicts), got %s" % type(pod).__name__)
        meta = pod.get("metadata") or {}
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            continue
        if any(isinstance(o, Mapping) and o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        out.append("%s/%s" % (meta.get("namespace", ""), meta.get("name", "")))
    return sorted(out)


def stale_node_records(records, instances):
    """The node records whose ``instance_id`` is not one of ``instances`` (the cluster's instances that still
    exist). A record without an instance ID is never taken as stale."""
    live = set()
    for inst in _list(instances, "instances"):
        if isinstance(inst, Mapping):
            live.add(inst.get("instance_id") or inst.get("InstanceId") or "")
        elif isinstance(inst, str):
            live.add(inst)
    live.discard("")
    stale = []
    for rec in _list(records, "records"):
        if not isinstance(rec, Mapping):
            raise AnsibleFilterError("stale_node_records: a record is not a dict: %r" % (rec,))
        instance_id = rec.get("instance_id") or ""
        if instance_id and instance_id not in live:
            stale.append(dict(rec))
    return stale


class FilterModule(object):
    def filters(self):
        return {
            "removal_target": removal_target,
            "etcd_removal_problem": etcd_removal_problem,
            "drain_blocking_pods": drain_blocking_pods,
            "stale_node_records": stale_node_records,
        }
