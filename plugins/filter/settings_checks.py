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
* ``os_errors``: the hosts of the play -> a message naming every host and its operating system when
  they do not all run the same distribution and major version (the packages, the containerd and
  kubelet builds and the kernel settings would differ between nodes), unless mixed systems are allowed.
* ``cluster_errors``: the settings and what a running cluster shows (kube-system/kubeadm-config's
  ClusterConfiguration, the Node objects, SSM init/state's version) -> a message for every setting the
  run cannot apply to that cluster: another Kubernetes version (site.yml neither upgrades nor
  downgrades: playbooks/upgrade.yml does), another pod or service subnet (fixed at kubeadm init).

Documentation of each filter: the ``<filter name>.yml`` files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from collections.abc import Mapping

import yaml

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


def _os_of(hv):
    distribution = hv.get("ansible_distribution") or (hv.get("ansible_facts") or {}).get("distribution")
    major = hv.get("ansible_distribution_major_version") or (hv.get("ansible_facts") or {}).get(
        "distribution_major_version")
    if not distribution:
        return None
    return "%s %s" % (distribution, major) if major else str(distribution)


def os_errors(hostvars, hosts, allow_mixed=False):
    """A message when ``hosts`` do not all run the same distribution and major version.

    Reads ``ansible_distribution`` / ``ansible_distribution_major_version`` of each host (hosts without
    them are not compared). Empty when they agree or ``allow_mixed`` is true.
    """
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("os_errors expects hostvars, got %s" % type(hostvars).__name__)
    if allow_mixed:
        return []
    by_os = {}
    for host in hosts or []:
        found = _os_of(hostvars.get(host) or {})
        if found:
            by_os.setdefault(found, []).append(host)
    if len(by_os) < 2:
        return []
    parts = ["%s on %s" % (name, ", ".join(sorted(by_os[name]))) for name in sorted(by_os)]
    return [
        "The nodes run different operating systems (%s): every node must run the same distribution and "
        "major version, or set kubeadm_aws_allow_mixed_os=true (for example while replacing the nodes one "
        "by one with a newer release)" % "; ".join(parts)
    ]


def _as_mapping(value, what):
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise AnsibleFilterError("cluster_errors: %s is not YAML: %s" % (what, e))
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AnsibleFilterError("cluster_errors: %s must be a dict, got %s" % (what, type(value).__name__))
    return value


_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


def _version(text):
    m = _VERSION.match(str(text or "").strip())
    return tuple(int(x) for x in m.groups()) if m else None


def _show(v):
    return "v%d.%d.%d" % v


def _version_errors(want_text, have_text, source, nodes):
    want, have = _version(want_text), _version(have_text)
    if want is None:
        return []  # validate_settings.yml reports a malformed kubeadm_aws_kubernetes_version
    errors = []
    if have is not None and have != want:
        if want < have:
            how = ("%s is older: a downgrade, which kubeadm does not do (restore an etcd snapshot taken before the "
                   "upgrade, playbooks/etcd_restore.yml)" % _show(want))
        else:
            how = ("to move the cluster to %s run playbooks/upgrade.yml -e kubeadm_aws_kubernetes_version=%s "
                   "(one minor at a time)" % (_show(want), want_text))
        errors.append(
            "kubeadm_aws_kubernetes_version %s differs from the version the cluster runs, %s (%s): site.yml neither "
            "upgrades nor downgrades a cluster; set kubeadm_aws_kubernetes_version=%d.%d.%d to run it, or %s"
            % (want_text, _show(have), source, have[0], have[1], have[2], how)
        )
    behind, ahead = [], []
    for node in nodes or []:
        if not isinstance(node, Mapping):
            raise AnsibleFilterError("cluster_errors expects Node objects (dicts), got %s" % type(node).__name__)
        name = (node.get("metadata") or {}).get("name", "?")
        kubelet = _version((((node.get("status") or {}).get("nodeInfo")) or {}).get("kubeletVersion"))
        if kubelet is None or kubelet == want:
            continue
        (ahead if kubelet > want else behind).append("%s (%s)" % (name, _show(kubelet)))
    if ahead:
        errors.append(
            "nodes %s run a kubelet newer than kubeadm_aws_kubernetes_version %s: the run would downgrade them, and "
            "a kubelet may not be newer than the API server" % (", ".join(ahead), want_text)
        )
    if behind and not errors:
        errors.append(
            "nodes %s run a kubelet older than kubeadm_aws_kubernetes_version %s (an upgrade left unfinished): "
            "site.yml does not upgrade nodes (it would not drain them); run playbooks/upgrade.yml "
            "-e kubeadm_aws_kubernetes_version=%s, which continues where the upgrade stopped"
            % (", ".join(behind), want_text, want_text)
        )
    return errors


def _subnet_errors(settings, networking, source):
    errors = []
    for variable, field in (("kubeadm_aws_pod_subnet", "podSubnet"), ("kubeadm_aws_service_subnet", "serviceSubnet")):
        want, have = settings.get(variable), networking.get(field)
        if want is None or not have:
            continue
        want_net, have_nets = _network(want), [_network(n.strip()) for n in str(have).split(",")]
        if want_net is not None and want_net in have_nets:
            continue
        if want_net is None and str(want) == str(have):
            continue
        errors.append(
            "%s is %s but the running cluster's %s is %s (%s): it is fixed when the cluster is initialised and "
            "this run cannot change it; set %s=%s" % (variable, want, field, have, source, variable, have)
        )
    return errors


def cluster_version(cluster_configuration=None, recorded_version=None):
    """The Kubernetes version a running cluster runs, as ``X.Y.Z`` (``""`` when there is no cluster to read).

    ``cluster_configuration``: kube-system/kubeadm-config's ``ClusterConfiguration`` (YAML text or a dict), whose
    ``kubernetesVersion`` ``kubeadm upgrade apply`` moves; ``recorded_version``: SSM init/state's
    ``kubernetes_version``, used when the ClusterConfiguration could not be read.
    """
    config = _as_mapping(cluster_configuration, "the ClusterConfiguration")
    version = _version(config.get("kubernetesVersion")) or _version(recorded_version)
    return "%d.%d.%d" % version if version else ""


def cluster_errors(settings, cluster_configuration=None, nodes=None, recorded_version=None):
    """Settings the run cannot apply to the running cluster, each message naming the variable and both values.

    ``cluster_configuration``: kube-system/kubeadm-config's ``ClusterConfiguration`` (YAML text or a dict;
    empty when the cluster could not be read or does not exist); ``nodes``: the cluster's Node objects
    (their kubelet versions); ``recorded_version``: SSM init/state's ``kubernetes_version``, used when the
    ClusterConfiguration is not available. Nothing to compare with (a new cluster): no messages.
    """
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError("cluster_errors expects a dict of settings, got %s" % type(settings).__name__)
    config = _as_mapping(cluster_configuration, "the ClusterConfiguration")
    if config.get("kubernetesVersion"):
        have, source = config["kubernetesVersion"], "kube-system/kubeadm-config"
    else:
        have, source = recorded_version, "SSM init/state"
    errors = []
    if "kubeadm_aws_kubernetes_version" in settings and (have or nodes):
        errors += _version_errors(settings["kubeadm_aws_kubernetes_version"], have, source, nodes)
    networking = config.get("networking") or {}
    if isinstance(networking, Mapping):
        errors += _subnet_errors(settings, networking, "kube-system/kubeadm-config")
    return errors


class FilterModule(object):
    def filters(self):
        return {
            "settings_errors": settings_errors,
            "inventory_errors": inventory_errors,
            "os_errors": os_errors,
            "cluster_errors": cluster_errors,
            "cluster_version": cluster_version,
        }
