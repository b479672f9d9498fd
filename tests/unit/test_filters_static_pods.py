"""plugins/filter/static_pods.py on the etcd manifest kubeadm v1.36 writes."""

import importlib
import sys

import pytest
from ansible.errors import AnsibleFilterError

ETCD_MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://10.213.0.11:2379
  labels:
    component: etcd
    tier: control-plane
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://10.213.0.11:2379
    - --cert-file=/etc/kubernetes/pki/etcd/server.crt
    - --client-cert-auth=true
    - --data-dir=/var/lib/etcd
    - --initial-advertise-peer-urls=https://10.213.0.11:2380
    - --initial-cluster=ip-10-213-0-11.ec2.internal=https://10.213.0.11:2380
    - --name=ip-10-213-0-11.ec2.internal
    - --snapshot-count=10000
    - --experimental-watch-progress-notify-interval
    image: registry.k8s.io/etcd:3.6.8-0
    name: etcd
  hostNetwork: true
"""


@pytest.fixture(scope="module")
def f(collection_root):
    sys.path.insert(0, str(collection_root))
    try:
        yield importlib.import_module("ansible_collections.sesacthon.kubeadm_aws.plugins.filter.static_pods")
    finally:
        sys.path.remove(str(collection_root))


def test_etcd_manifest(f):
    r = f.static_pod_flags(ETCD_MANIFEST)
    assert r["image"] == "registry.k8s.io/etcd:3.6.8-0" and r["command"] == ["etcd"]
    assert r["flags"]["name"] == "ip-10-213-0-11.ec2.internal"
    assert r["flags"]["initial-advertise-peer-urls"] == "https://10.213.0.11:2380"
    assert r["flags"]["data-dir"] == "/var/lib/etcd" and r["flags"]["experimental-watch-progress-notify-interval"] == "true"
    assert f.static_pod_flags(ETCD_MANIFEST, "etcd") == r


def test_wrong_input_is_named(f):
    with pytest.raises(AnsibleFilterError, match="no container 'x'"):
        f.static_pod_flags(ETCD_MANIFEST, "x")
    with pytest.raises(AnsibleFilterError, match="expects a Pod manifest"):
        f.static_pod_flags("kind: Deployment")
    with pytest.raises(AnsibleFilterError, match="not YAML"):
        f.static_pod_flags("a: [")
