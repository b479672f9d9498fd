"""plugins/filter/ca_cert_hash.py: kubeadm's discovery hash of a CA, checked against openssl's answer for
CAs generated here (RSA and ECDSA), from PEM, from the cluster-info kubeconfig and from the ConfigMap."""

import base64
import datetime
import importlib
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@pytest.fixture(scope="module")
def f(collection_root):
    sys.path.insert(0, str(collection_root))
    try:
        yield importlib.import_module("ansible_collections.sesacthon.kubeadm_aws.plugins.filter.ca_cert_hash")
    finally:
        sys.path.remove(str(collection_root))


def make_ca(key):
    """A self-signed CA like kubeadm's (CN=kubernetes), as PEM text."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture(scope="module", params=["rsa", "ecdsa"])
def ca_pem(request):
    if request.param == "rsa":
        return make_ca(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return make_ca(ec.generate_private_key(ec.SECP256R1()))


def openssl_hash(pem):
    """What the kubeadm documentation computes: openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256."""
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem.encode(), capture_output=True,
                         check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True,
                         check=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-hex"], input=der, capture_output=True,
                            check=True).stdout.decode()
    return "sha256:" + digest.strip().split()[-1]


def cluster_info_kubeconfig(pem):
    """The kubeconfig kubeadm publishes in the kube-public/cluster-info ConfigMap (data.kubeconfig)."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {}, "users": None, "contexts": None,
        "current-context": "",
        "clusters": [{"name": "", "cluster": {
            "certificate-authority-data": base64.b64encode(pem.encode()).decode(),
            "server": "https://10.0.0.10:6443"}}],
    })


def test_pem_matches_openssl(f, ca_pem):
    expected = openssl_hash(ca_pem)
    assert len(expected) == len("sha256:") + 64
    assert f.ca_cert_hash(ca_pem) == expected


def test_cluster_info_kubeconfig_text_parsed_and_configmap(f, ca_pem):
    expected = openssl_hash(ca_pem)
    text = cluster_info_kubeconfig(ca_pem)
    assert f.ca_cert_hash(text) == expected
    assert f.ca_cert_hash(yaml.safe_load(text)) == expected
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "cluster-info", "namespace": "kube-public"},
                 "data": {"kubeconfig": text, "jws-kubeconfig-abcdef": "eyJhbGciOiJIUzI1NiJ9..x"}}
    assert f.ca_cert_hash(configmap) == expected


def test_bundle_takes_the_first_certificate_and_text_around_is_ignored(f):
    first = make_ca(ec.generate_private_key(ec.SECP256R1()))
    second = make_ca(ec.generate_private_key(ec.SECP384R1()))
    assert f.ca_cert_hash("subject=CN = kubernetes\n" + first + second) == openssl_hash(first)
    assert f.ca_cert_hash(first) != f.ca_cert_hash(second)


def test_through_jinja_in_a_play(run_playbook, ca_pem, tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text(ca_pem)
    out = run_playbook("""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "HASH={{ lookup('ansible.builtin.file', '%s') | sesacthon.kubeadm_aws.ca_cert_hash }}"
""" % ca)
    assert out.returncode == 0, out.stdout
    assert "HASH=%s" % openssl_hash(ca_pem) in out.stdout


@pytest.mark.parametrize("bad, fragment", [
    ("", "neither a PEM certificate"),
    ("hello", "neither a PEM certificate"),
    (42, "got int"),
    ("-----BEGIN CERTIFICATE-----\nMIIB\n", "no complete PEM certificate"),
    ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "cannot be read"),
    ({"clusters": []}, "no clusters"),
    ({"clusters": [{"cluster": {"server": "https://x:6443"}}]}, "no certificate-authority-data"),
    ({"clusters": [{"cluster": {"certificate-authority": "/etc/kubernetes/pki/ca.crt"}}]}, "CA file"),
    ({"clusters": [{"cluster": {"certificate-authority-data": "%%%"}}]}, "not base64"),
    ({"data": {}}, "no data.kubeconfig"),
    ("apiVersion: v1\nkind: Config\n", "no clusters"),
])
def test_bad_input_is_refused_with_a_message(f, bad, fragment):
    with pytest.raises(AnsibleFilterError) as e:
        f.ca_cert_hash(bad)
    assert str(e.value).startswith("ca_cert_hash: ") and fragment in str(e.value)
