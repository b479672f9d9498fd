"""plugins/filter/settings_checks.py: the settings and inventory checks of the first play."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
from settings_checks import go_duration_seconds, inventory_errors, settings_errors  # noqa: E402

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
