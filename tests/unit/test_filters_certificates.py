"""plugins/filter/certificates.py on the output of a real `kubeadm certs check-expiration -o json`
(tests/unit/fixtures/kubeadm-check-expiration.json: kubeadm v1.36.3 on a PKI made by `kubeadm init phase certs
all`; the kubeconfig files were missing there)."""

import copy
import importlib
import json
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

FIXTURE = Path(__file__).parent / "fixtures" / "kubeadm-check-expiration.json"


@pytest.fixture(scope="module")
def f(collection_root):
    sys.path.insert(0, str(collection_root))
    try:
        yield importlib.import_module("ansible_collections.sesacthon.kubeadm_aws.plugins.filter.certificates")
    finally:
        sys.path.remove(str(collection_root))


@pytest.fixture
def info():
    return json.loads(FIXTURE.read_text())


def test_days_left_and_earliest(f, info):
    r = f.certificate_expiry(info, 30)
    names = [c["name"] for c in r["certificates"] if not c["authority"]]
    assert "apiserver" in names and "etcd-server" in names
    api = next(c for c in r["certificates"] if c["name"] == "apiserver")
    assert api["days_left"] == 364 and api["ca"] == "ca" and api["expires"].endswith("Z")
    assert r["min_days_left"] == 364 and r["earliest"]["days_left"] == 364
    assert r["below"] == [] and "admin.conf" in r["missing"]
    assert {c["name"] for c in r["certificates"] if c["authority"]} == {"ca", "etcd-ca", "front-proxy-ca"}
    assert "admin.conf" not in r["expires"] and r["expires"]["apiserver"] == api["expires"]


def test_threshold_lists_soonest_first_and_counts_authorities(f, info):
    r = f.certificate_expiry("[check-expiration] Reading configuration from the cluster...\n" + json.dumps(info), 400)
    assert "apiserver" in r["below"] and "ca" not in r["below"]
    info2 = copy.deepcopy(info)
    info2["certificateAuthorities"][0]["residualTime"] = 5 * 86400 + 10
    info2["certificates"][1]["residualTime"] = 20 * 86400
    r = f.certificate_expiry(info2, 30)
    assert r["below"] == sorted(["ca", info2["certificates"][1]["name"]])
    assert r["below_detail"][0].startswith("ca CA (5 days left")
    assert r["earliest"]["name"] == "ca" and r["min_days_left"] == 5


def test_wrong_input_is_named(f):
    with pytest.raises(AnsibleFilterError, match="not kubeadm's JSON output"):
        f.certificate_expiry("CERTIFICATE  EXPIRES")
    with pytest.raises(AnsibleFilterError, match="CertificateExpirationInfo"):
        f.certificate_expiry({"kind": "Pod"})
    empty = f.certificate_expiry({"kind": "CertificateExpirationInfo"})
    assert empty["earliest"] is None and empty["below"] == []
