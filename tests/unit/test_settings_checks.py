"""plugins/filter/settings_checks.py: the settings and inventory checks of the first play."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
from ansible.errors import AnsibleFilterError  # noqa: E402
from settings_checks import cluster_errors, cluster_version, go_duration_seconds, inventory_errors, os_errors, settings_errors  # noqa: E402

GOOD = {
    "kubeadm_aws_token_ttl": "2h",
    "kubeadm_aws_token_min_ttl": 900,
    "kubeadm_aws_control_plane_endpoint": "",
    "kubeadm_aws_pod_subnet": "10.244.0.0/16",
    "kubeadm_aws_service_subnet": "10.96.0.0/12",
}


def test_the_defaults_pass():
    assert settings_errors(GOOD) == []
    assert settings_errors({}) == []


@pytest.mark.parametrize("text,seconds", [("2h", 7200), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("0", None),
                                          ("1d", None), ("forever", None), ("", None), ("2 h", None)])
def test_go_durations(text, seconds):
    assert go_duration_seconds(text) == seconds


@pytest.mark.parametrize(
    "override,needle",
    [
        ({"kubeadm_aws_token_ttl": "0"}, "kubeadm_aws_token_ttl '0' is not a usable token lifetime"),
        ({"kubeadm_aws_token_ttl": "0s"}, "kubeadm_aws_token_ttl '0s' is not a usable token lifetime"),
        ({"kubeadm_aws_token_ttl": "1d"}, "kubeadm_aws_token_ttl '1d'"),
        ({"kubeadm_aws_token_ttl": "forever"}, "kubeadm_aws_token_ttl 'forever'"),
        ({"kubeadm_aws_token_ttl": "48h"}, "at most 24h"),
        ({"kubeadm_aws_token_min_ttl": 7200}, "kubeadm_aws_token_min_ttl (7200 s) must be less than kubeadm_aws_token_ttl"),
        ({"kubeadm_aws_token_min_ttl": "soon"}, "kubeadm_aws_token_min_ttl 'soon' must be a number of seconds"),
        ({"kubeadm_aws_token_min_ttl": -1}, "kubeadm_aws_token_min_ttl -1 must not be negative"),
        ({"kubeadm_aws_control_plane_endpoint": "api.example.com"}, "kubeadm_aws_control_plane_endpoint 'api.example.com' must be host:port"),
        ({"kubeadm_aws_control_plane_endpoint": "api.example.com:0"}, "must be host:port"),
        ({"kubeadm_aws_control_plane_endpoint": "api.example.com:99999"}, "must be host:port"),
        ({"kubeadm_aws_control_plane_endpoint": "https://api.example.com:6443"}, "must be host:port"),
        ({"kubeadm_aws_pod_subnet": "banana"}, "kubeadm_aws_pod_subnet 'banana' is not an IPv4 network"),
        ({"kubeadm_aws_pod_subnet": "10.244.0.1/16"}, "kubeadm_aws_pod_subnet '10.244.0.1/16' is not an IPv4 network"),
        ({"kubeadm_aws_pod_subnet": "10.96.0.0/16"}, "kubeadm_aws_pod_subnet 10.96.0.0/16 and kubeadm_aws_service_subnet 10.96.0.0/12 overlap"),
        ({"kubeadm_aws_pod_subnet": "10.244.0.0/24"}, "kubeadm_aws_pod_subnet 10.244.0.0/24 is too small"),
        ({"kubeadm_aws_service_subnet": "10.0.0.0/8"}, "kubeadm_aws_service_subnet 10.0.0.0/8 is too large"),
        ({"kubeadm_aws_service_subnet": "10.96.0.0/33"}, "kubeadm_aws_service_subnet '10.96.0.0/33' is not an IPv4 network"),
    ],
)
def test_bad_settings_are_named(override, needle):
    errors = settings_errors(dict(GOOD, **override))
    assert any(needle in e for e in errors), errors


@pytest.mark.parametrize("endpoint", ["api.example.com:6443", "10.0.0.10:443", "internal-k8s-123.elb.us-east-1.amazonaws.com:6443"])
def test_good_endpoints(endpoint):
    assert settings_errors(dict(GOOD, kubeadm_aws_control_plane_endpoint=endpoint)) == []


def _host(cluster="prod", role="worker", region="us-east-1"):
    return {"ec2_tags": {"kubeadm-aws/cluster": cluster, "kubeadm-aws/role": role}, "ec2_region": region}


def test_inventory_of_the_cluster_passes():
    hv = {"a": _host(role="control-plane"), "b": _host(), "localhost": {}}
    assert inventory_errors(hv, ["a", "b", "localhost"], "prod", "us-east-1") == []
    assert inventory_errors(hv, ["a", "b"], "prod", "") == []


def test_inventory_problems_name_host_and_tag():
    hv = {"a": _host(cluster="staging"), "b": _host(role="etcd"), "c": _host(region="eu-west-1"), "d": _host(role=None)}
    errors = inventory_errors(hv, ["a", "b", "c", "d"], "prod", "us-east-1")
    assert any(e.startswith("Host a: its tag kubeadm-aws/cluster=staging does not match kubeadm_aws_cluster_name 'prod'") for e in errors)
    assert any(e.startswith("Host b: tag kubeadm-aws/role=etcd is not one of control-plane, worker") for e in errors)
    assert any(e.startswith("Host c: it runs in region eu-west-1, but kubeadm_aws_region is us-east-1") for e in errors)
    assert any(e.startswith("Host d: tag kubeadm-aws/role=None") for e in errors)
    assert len(errors) == 4, errors


# --- os_errors --------------------------------------------------------------------------------------

def _hosts(**systems):
    return {h: {"ansible_distribution": d, "ansible_distribution_major_version": m} for h, (d, m) in systems.items()}


def test_same_os_passes():
    hv = _hosts(cp1=("Debian", "12"), w1=("Debian", "12"))
    assert os_errors(hv, ["cp1", "w1"]) == []


def test_mixed_os_is_refused_naming_the_hosts():
    hv = _hosts(cp1=("Debian", "12"), w1=("Debian", "13"), w2=("Ubuntu", "24"))
    (msg,) = os_errors(hv, ["cp1", "w1", "w2"])
    assert "Debian 12 on cp1" in msg and "Debian 13 on w1" in msg and "Ubuntu 24 on w2" in msg
    assert "kubeadm_aws_allow_mixed_os" in msg


def test_mixed_os_allowed_by_the_setting():
    hv = _hosts(cp1=("Debian", "12"), w1=("Ubuntu", "22"))
    assert os_errors(hv, ["cp1", "w1"], True) == []


def test_hosts_without_facts_are_not_compared():
    hv = dict(_hosts(cp1=("Debian", "12")), localhost={})
    assert os_errors(hv, ["cp1", "localhost", "unknown"]) == []


# --- cluster_errors ---------------------------------------------------------------------------------

RUNNING = """apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.36.3
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
"""
SETTINGS = {"kubeadm_aws_kubernetes_version": "1.36.3", "kubeadm_aws_pod_subnet": "10.244.0.0/16",
            "kubeadm_aws_service_subnet": "10.96.0.0/12"}


def _node(name, kubelet):
    return {"metadata": {"name": name}, "status": {"nodeInfo": {"kubeletVersion": kubelet}}}


def test_matching_cluster_passes():
    assert cluster_errors(SETTINGS, RUNNING, [_node("cp1", "v1.36.3"), _node("w1", "v1.36.3")]) == []


def test_no_cluster_nothing_to_compare():
    assert cluster_errors(dict(SETTINGS, kubeadm_aws_kubernetes_version="1.37.0"), "", [], None) == []


def test_newer_version_points_to_the_upgrade_playbook():
    (msg,) = cluster_errors(dict(SETTINGS, kubeadm_aws_kubernetes_version="1.37.0"), RUNNING, [_node("cp1", "v1.36.3")])
    assert "kubeadm_aws_kubernetes_version 1.37.0 differs from the version the cluster runs, v1.36.3" in msg
    assert "playbooks/upgrade.yml -e kubeadm_aws_kubernetes_version=1.37.0" in msg
    assert "kubeadm_aws_kubernetes_version=1.36.3" in msg


def test_newer_patch_is_also_refused():
    (msg,) = cluster_errors(dict(SETTINGS, kubeadm_aws_kubernetes_version="1.36.4"), RUNNING)
    assert "differs from the version the cluster runs, v1.36.3" in msg


def test_older_version_is_a_downgrade():
    (msg,) = cluster_errors(dict(SETTINGS, kubeadm_aws_kubernetes_version="1.35.2"), RUNNING)
    assert "a downgrade" in msg and "v1.36.3" in msg


def test_version_recorded_in_ssm_when_the_cluster_cannot_be_read():
    (msg,) = cluster_errors(dict(SETTINGS, kubeadm_aws_kubernetes_version="1.37.0"), None, [], "v1.36.3")
    assert "v1.36.3 (SSM init/state)" in msg


def test_kubelet_newer_than_the_setting():
    errors = cluster_errors(SETTINGS, RUNNING, [_node("w1", "v1.37.0")])
    assert any("w1 (v1.37.0)" in e and "newer" in e for e in errors), errors


def test_unfinished_upgrade_points_to_the_upgrade_playbook():
    running = RUNNING.replace("v1.36.3", "v1.37.0")
    settings = dict(SETTINGS, kubeadm_aws_kubernetes_version="1.37.0")
    (msg,) = cluster_errors(settings, running, [_node("cp1", "v1.37.0"), _node("w1", "v1.36.3")])
    assert "w1 (v1.36.3)" in msg and "older" in msg and "playbooks/upgrade.yml" in msg


@pytest.mark.parametrize("variable,field,value", [
    ("kubeadm_aws_pod_subnet", "podSubnet", "10.200.0.0/16"),
    ("kubeadm_aws_service_subnet", "serviceSubnet", "10.112.0.0/12"),
])
def test_another_subnet_than_the_running_one(variable, field, value):
    (msg,) = cluster_errors(dict(SETTINGS, **{variable: value}), RUNNING)
    running = "10.244.0.0/16" if field == "podSubnet" else "10.96.0.0/12"
    assert "%s is %s but the running cluster's %s is %s" % (variable, value, field, running) in msg


def test_the_configuration_as_a_dict_and_dual_stack():
    config = {"kubernetesVersion": "v1.36.3", "networking": {"podSubnet": "10.244.0.0/16,fd00::/56"}}
    assert cluster_errors(SETTINGS, config) == []


def test_not_a_dict_is_an_error():
    with pytest.raises(AnsibleFilterError):
        cluster_errors("x", RUNNING)


# --- cluster_version --------------------------------------------------------------------------------


def test_cluster_version_prefers_the_kubeadm_config_over_the_ssm_record():
    assert cluster_version("kubernetesVersion: v1.37.2\n", "v1.36.3") == "1.37.2"
    assert cluster_version({"kubernetesVersion": "v1.36.3"}) == "1.36.3"


def test_cluster_version_falls_back_to_the_ssm_record_and_is_empty_without_a_cluster():
    assert cluster_version("", "v1.36.3") == "1.36.3"
    assert cluster_version(None, "1.35.2") == "1.35.2"
    assert cluster_version("", "") == "" and cluster_version(None, None) == ""


def test_cluster_version_refuses_a_configuration_that_is_not_a_mapping():
    with pytest.raises(AnsibleFilterError):
        cluster_version("- a list\n")
