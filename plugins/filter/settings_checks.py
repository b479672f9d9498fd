# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Checks of the collection settings and of the inventory, run in the first play of every playbook.

* ``settings_errors``: the ``kubeadm_aws_*`` settings as a dict -> a list of messages, each naming the
  variable, for values kubeadm, SSM or the network would refuse later (after hosts have changed) or,
  worse, accept with another meaning (a token TTL of ``0`` never expires).
* ``inventory_errors``: the hosts of the play -> a list of messages, each naming the host and the
  tag, for instances that belong to another cluster, live in another region than the settings say, or
  carry a role tag the inventory does not know (such instances would silently be left out).

Documentation of each filter: the ``<filter name>.yml`` files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# Go's time.ParseDuration, which kubeadm uses for token TTLs: one or more <number><unit>.
_GO_DURATION = re.compile(r"^(?:(?:\d+(?:\.\d+)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
# kubeadm refuses nothing, but a bootstrap token is a credential: the collection keeps it under a day.
TOKEN_TTL_MAX_SECONDS = 24 * 3600
# host:port, host a DNS name or an IPv4 address.
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$")
# kube-apiserver: the service range may hold at most 2^20 addresses (IPv4 prefix /12 or longer).
SERVICE_PREFIX_MIN = 12
# kube-controller-manager gives every node a /24 of the pod network (node-cidr-mask-size).
NODE_CIDR_PREFIX = 24
ROLE_TAG = "kubeadm-aws/role"
CLUSTER_TAG = "kubeadm-aws/cluster"
ROLES = ("control-plane", "worker")


def go_duration_seconds(text):
    """Seconds of a Go duration (``2h``, ``1h30m``, ``90s``), or None when it is not one."""
    text = str(text).strip()
    if not _GO_DURATION.match(text):
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _GO_DURATION_PART.findall(text))


def _network(value):
    try:
        return ipaddress.IPv4Network(str(value), strict=True)
    except (ValueError, TypeError):
        return None


def _token_errors(s):
    errors = []
    ttl = s.get("kubeadm_aws_token_ttl")
    seconds = go_duration_seconds(ttl) if ttl is not None else None
    if ttl is not None and (seconds is None or seconds <= 0 or seconds > TOKEN_TTL_MAX_SECONDS):
        errors.append(
            "kubeadm_aws_token_ttl %r is not a usable token lifetime: give a duration kubeadm understands, "
            "more than 0 and at most 24h (for example 2h or 90m; 0 would never expire, and units like 1d "
            "are refused by kubeadm)" % (ttl,)
        )
        seconds = None
    min_ttl = s.get("kubeadm_aws_token_min_ttl")
    if min_ttl is not None:
        try:
            min_ttl = int(min_ttl)
        except (TypeError, ValueError):
            errors.append("kubeadm_aws_token_min_ttl %r must be a number of seconds" % (min_ttl,))
            return errors
        if min_ttl < 0:
            errors.append("kubeadm_aws_token_min_ttl %r must not be negative" % (min_ttl,))
        elif seconds is not None and min_ttl >= seconds:
            errors.append(
                "kubeadm_aws_token_min_ttl (%d s) must be less than kubeadm_aws_token_ttl (%s = %d s): "
                "otherwise every fresh token counts as about to expire" % (min_ttl, ttl, seconds)
            )
    return errors


def _endpoint_errors(s):
    endpoint = s.get("kubeadm_aws_control_plane_endpoint")
    if not endpoint:
        return []
    host, sep, port = str(endpoint).rpartition(":")
    ok = bool(sep) and port.isdigit() and 0 < int(port) < 65536 and bool(_DNS_NAME.match(host))
    if ok:
        return []
    return [
        "kubeadm_aws_control_plane_endpoint %r must be host:port (a DNS name or IPv4 address and a port, "
        "for example api.example.com:6443)" % (endpoint,)
    ]


def _network_errors(s):
    errors = []
    pod_value, svc_value = s.get("kubeadm_aws_pod_subnet"), s.get("kubeadm_aws_service_subnet")
    pod, svc = _network(pod_value), _network(svc_value)
    if pod_value is not None and pod is None:
        errors.append("kubeadm_aws_pod_subnet %r is not an IPv4 network in CIDR form (for example 10.244.0.0/16)" % (pod_value,))
    if svc_value is not None and svc is None:
        errors.append("kubeadm_aws_service_subnet %r is not an IPv4 network in CIDR form (for example 10.96.0.0/12)" % (svc_value,))
    if pod is not None and pod.prefixlen >= NODE_CIDR_PREFIX:
        errors.append(
            "kubeadm_aws_pod_subnet %s is too small: every node gets a /%d of it, so it must be larger "
            "than /%d" % (pod, NODE_CIDR_PREFIX, NODE_CIDR_PREFIX)
        )
    if svc is not None and svc.prefixlen < SERVICE_PREFIX_MIN:
        errors.append(
            "kubeadm_aws_service_subnet %s is too large: the API server takes at most a /%d" % (svc, SERVICE_PREFIX_MIN)
        )
    if pod is not None and svc is not None and pod.overlaps(svc):
        errors.append("kubeadm_aws_pod_subnet %s and kubeadm_aws_service_subnet %s overlap" % (pod, svc))
    return errors


def settings_errors(settings):
    """Messages for the collection settings in ``settings`` (a dict of kubeadm_aws_* values)."""
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError("settings_errors expects a dict of settings, got %s" % type(settings).__name__)
    return _token_errors(settings) + _endpoint_errors(settings) + _network_errors(settings)


def inventory_errors(hostvars, hosts, cluster_name, region=""):
    """Messages for the hosts whose EC2 tags or region do not fit the cluster settings.

    ``hostvars`` maps host names to their variables (``hostvars`` in a play); ``hosts`` are the hosts
    to check (every host of the inventory, so that an instance with an unknown role tag is seen even
    though no group holds it).
    """
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("inventory_errors expects hostvars, got %s" % type(hostvars).__name__)
    errors = []
    for host in hosts or []:
        hv = hostvars.get(host) or {}
        tags = hv.get("ec2_tags")
        if not isinstance(tags, Mapping):
            continue  # not an EC2 host of this inventory (localhost, a static host)
        cluster = tags.get(CLUSTER_TAG)
        if cluster != cluster_name:
            errors.append(
                "Host %s: its tag %s=%s does not match kubeadm_aws_cluster_name %r; the inventory and the "
                "run must select the same cluster (set KUBEADM_AWS_CLUSTER for the inventory)"
                % (host, CLUSTER_TAG, cluster, cluster_name)
            )
        role = tags.get(ROLE_TAG)
        if role not in ROLES:
            errors.append(
                "Host %s: tag %s=%s is not one of %s; the instance would belong to no group and be left out"
                % (host, ROLE_TAG, role, ", ".join(ROLES))
            )
        host_region = hv.get("ec2_region") or (hv.get("ec2_placement") or {}).get("region")
        if region and host_region and host_region != region:
            errors.append(
                "Host %s: it runs in region %s, but kubeadm_aws_region is %s" % (host, host_region, region)
            )
    return errors


class FilterModule(object):
    def filters(self):
        return {
            "settings_errors": settings_errors,
            "inventory_errors": inventory_errors,
        }
