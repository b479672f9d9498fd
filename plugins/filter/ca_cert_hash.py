# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""``ca_cert_hash``: kubeadm's discovery hash of a cluster CA (``--discovery-token-ca-cert-hash``).

kubeadm pins the CA by ``sha256:<hex>`` of the certificate's DER-encoded SubjectPublicKeyInfo. The input
is the CA certificate in PEM, or the kubeconfig that the ``kube-public/cluster-info`` ConfigMap
publishes (its ``clusters[0].cluster.certificate-authority-data``, base64 PEM), as text, parsed, or the
whole ConfigMap object. Computing it here replaces the ``openssl x509 -pubkey | openssl rsa -pubin
-outform der | sha256sum`` pipeline on the host.

Documentation: ``ca_cert_hash.yml`` next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - cryptography comes with ansible-core
    HAS_CRYPTOGRAPHY = False

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    HAS_YAML = False

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_END = "-----END CERTIFICATE-----"


def _fail(message):
    raise AnsibleFilterError("ca_cert_hash: %s" % message)


def _kubeconfig_ca(kubeconfig):
    """The PEM text of clusters[0].cluster.certificate-authority-data of a parsed kubeconfig."""
    clusters = kubeconfig.get("clusters")
    if not isinstance(clusters, list) or not clusters or not isinstance(clusters[0], Mapping):
        _fail("the kubeconfig has no clusters")
    cluster = clusters[0].get("cluster")
    if not isinstance(cluster, Mapping):
        _fail("the kubeconfig's first cluster has no 'cluster' entry")
    data = cluster.get("certificate-authority-data")
    if not data:
        if cluster.get("certificate-authority"):
            _fail("the kubeconfig names a CA file (certificate-authority) instead of embedding it "
                  "(certificate-authority-data); pass that file's content")
        _fail("the kubeconfig's first cluster has no certificate-authority-data")
    try:
        return base64.b64decode(str(data), validate=True).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        _fail("certificate-authority-data is not base64 of a PEM certificate")


def _pem_of(value):
    """The PEM text of the CA in ``value`` (see the module docstring for the accepted forms)."""
    if isinstance(value, Mapping):
        data = value.get("data")
        if "clusters" in value or not isinstance(data, Mapping):
            return _kubeconfig_ca(value)
        if not data.get("kubeconfig"):  # a ConfigMap, but not kube-public/cluster-info
            _fail("the ConfigMap has no data.kubeconfig (expected kube-public/cluster-info)")
        return _pem_of(str(data["kubeconfig"]))
    if not isinstance(value, str):
        _fail("expected a PEM certificate or a kubeconfig, got %s" % type(value).__name__)
    if PEM_BEGIN in value:
        return value
    if not HAS_YAML:  # pragma: no cover
        _fail("reading a kubeconfig needs PyYAML")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, Mapping):
        _fail("the input is neither a PEM certificate (%s) nor a kubeconfig" % PEM_BEGIN)
    return _pem_of(parsed)


def ca_cert_hash(value):
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo of the (first) CA certificate in ``value``."""
    if not HAS_CRYPTOGRAPHY:  # pragma: no cover
        _fail("the Python library cryptography is needed (it comes with ansible-core)")
    pem = _pem_of(value)
    start = pem.find(PEM_BEGIN)
    end = pem.find(PEM_END, start)
    if start < 0 or end < 0:
        _fail("no complete PEM certificate (%s ... %s) in the input" % (PEM_BEGIN, PEM_END))
    block = pem[start:end + len(PEM_END)]
    try:
        cert = x509.load_pem_x509_certificate(block.encode("ascii"))
        spki = cert.public_key().public_bytes(
            encoding=serialization.Encoding.DER, format=serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError, UnicodeEncodeError) as e:
        _fail("the certificate cannot be read: %s" % e)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


class FilterModule(object):
    def filters(self):
        return {"ca_cert_hash": ca_cert_hash}
