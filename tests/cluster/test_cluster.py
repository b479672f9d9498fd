"""What a user checks after `make lab` / molecule `cluster` and `ha`: the cluster works, every node
has its EC2 identity, labels and taints come from the tags, and SSM holds what the design says."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import REPO, recap, run_playbook, tags_of, wait_for

TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")


def _versions() -> dict[str, str]:
    out = {}
    for line in (REPO / "lab" / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


VERSIONS = _versions()
DEBIAN_IMAGE = f"registry.k8s.io/lab/flannel:{VERSIONS['FLANNEL_VERSION']}"  # Debian base: bash, getent
ETCD_IMAGE = f"registry.k8s.io/etcd:{VERSIONS['ETCD_IMAGE_TAG']}"


def _ready(node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def test_every_instance_is_a_ready_node(core, instances):
    nodes = {n.metadata.name: n for n in core.list_node().items}
    expected = {i["PrivateDnsName"] for i in instances}
    assert expected <= set(nodes), f"instances without a node: {sorted(expected - set(nodes))}"
    not_ready = [name for name in expected if not _ready(nodes[name])]
    assert not not_ready, f"nodes not Ready: {not_ready}"
    for name in expected:
        assert nodes[name].status.node_info.kubelet_version == VERSIONS["KUBE_VERSION"]


def test_provider_ids_come_from_ec2(core, instances):
    nodes = {n.metadata.name: n for n in core.list_node().items}
    for i in instances:
        want = f"aws:///{i['Placement']['AvailabilityZone']}/{i['InstanceId']}"
        assert nodes[i["PrivateDnsName"]].spec.provider_id == want


def test_instances_carry_the_cluster_tags(instances, lab_env):
    for i in instances:
        tags = tags_of(i)
        assert tags.get(f"kubernetes.io/cluster/{lab_env['LAB_CLUSTER']}") == "owned", i["InstanceId"]
        assert tags.get("kubeadm-aws/provider-id") == f"aws:///{i['Placement']['AvailabilityZone']}/{i['InstanceId']}"


def test_labels_and_taints_follow_the_tags(core, instances):
    nodes = {n.metadata.name: n for n in core.list_node().items}
    seen_label = seen_taint = False
    for i in instances:
        tags = tags_of(i)
        node = nodes[i["PrivateDnsName"]]
        labels = node.metadata.labels or {}
        taints = {(t.key, t.value or "", t.effect) for t in node.spec.taints or []}
        for key, value in tags.items():
            if key.startswith("k8s.io/label/"):
                assert labels.get(key[len("k8s.io/label/"):]) == value, (node.metadata.name, key)
                seen_label = True
            if key.startswith("k8s.io/taint/"):
                tvalue, _, effect = value.rpartition(":")
                assert (key[len("k8s.io/taint/"):], tvalue, effect) in taints, (node.metadata.name, key, taints)
                seen_taint = True
        role = tags["kubeadm-aws/role"]
        if role == "worker":
            assert "node-role.kubernetes.io/worker" in labels, node.metadata.name
        else:
            assert "node-role.kubernetes.io/control-plane" in labels
            assert ("node-role.kubernetes.io/control-plane", "", "NoSchedule") in taints
    assert seen_label, "the lab config tags w1 with a label (and w2, when there is one, with a taint)"


def _run_pod(core, name, node, image, command, namespace="default"):
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "kubeadm-aws-tests"}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "c", "image": image, "command": command}],
        },
    }
    core.create_namespaced_pod(namespace, body)


def _wait_phase(core, name, phases, namespace="default", timeout=180):
    def check():
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase in phases else None

    return wait_for(check, timeout=timeout, what=f"pod {name} in {phases}")


def _delete(core, *names, namespace="default"):
    for n in names:
        try:
            core.delete_namespaced_pod(n, namespace, grace_period_seconds=0)
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


def _workers(core):
    return sorted(
        n.metadata.name for n in core.list_node().items if "node-role.kubernetes.io/worker" in (n.metadata.labels or {})
    )


def test_coredns_answers(core):
    name = f"dns-{uuid.uuid4().hex[:6]}"
    node = _workers(core)[0]
    _run_pod(core, name, node, DEBIAN_IMAGE, ["getent", "hosts", "kubernetes.default.svc.cluster.local"])
    try:
        pod = _wait_phase(core, name, {"Succeeded", "Failed"})
        log = core.read_namespaced_pod_log(name, "default")
        assert pod.status.phase == "Succeeded", log
        assert "10.96.0.1" in log, log
    finally:
        _delete(core, name)


def test_pods_reach_each_other_across_nodes(core):
    nodes = [n.metadata.name for n in core.list_node().items]
    assert len(nodes) >= 2
    server_node, client_node = nodes[-1], nodes[0]
    server, client = f"srv-{uuid.uuid4().hex[:6]}", f"cli-{uuid.uuid4().hex[:6]}"
    _run_pod(core, server, server_node, ETCD_IMAGE,
             ["/usr/local/bin/etcd", "--data-dir=/tmp/etcd", "--listen-client-urls=http://0.0.0.0:2379",
              "--advertise-client-urls=http://127.0.0.1:2379"])
    try:
        pod = _wait_phase(core, server, {"Running"})
        ip = pod.status.pod_ip
        assert ip and ip.startswith("10.244."), f"server pod IP {ip} is not from the pod network"
        script = (f"for i in $(seq 30); do exec 3<>/dev/tcp/{ip}/2379 && break; sleep 1; done; "
                  "printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3")
        _run_pod(core, client, client_node, DEBIAN_IMAGE, ["bash", "-c", script])
        cpod = _wait_phase(core, client, {"Succeeded", "Failed"})
        log = core.read_namespaced_pod_log(client, "default")
        assert cpod.status.phase == "Succeeded", log
        assert '"health":"true"' in log, log
        assert cpod.spec.node_name != pod.spec.node_name
    finally:
        _delete(core, server, client)


def _ca_hash(kubeconfig: str) -> str:
    """sha256 of the cluster CA's SubjectPublicKeyInfo, the way kubeadm pins it."""
    import yaml
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cfg = yaml.safe_load(open(kubeconfig))
    pem = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"])
    cert = x509.load_pem_x509_certificate(pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def test_join_material_is_a_securestring_with_the_expected_content(ssm, lab_env, kubeconfig, instances):
    prefix = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}"
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [f"{prefix}/join"]}])
    types = {p["Name"]: p["Type"] for p in meta["Parameters"]}
    assert types.get(f"{prefix}/join/worker") == "SecureString", types
    worker = json.loads(ssm.get_parameter(Name=f"{prefix}/join/worker", WithDecryption=True)["Parameter"]["Value"])
    cps = [i for i in instances if tags_of(i)["kubeadm-aws/role"] == "control-plane"]
    # The first control plane is the first of the inventory group (the inventory's order, not the Name tag);
    # the endpoint is its address, the same the admin kubeconfig uses.
    assert worker["api_endpoint"] in {f"{i['PrivateIpAddress']}:6443" for i in cps}, worker["api_endpoint"]
    server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    assert server == f"https://{worker['api_endpoint']}"
    assert TOKEN_RE.match(worker["token"])
    assert worker["ca_cert_hashes"] == [_ca_hash(kubeconfig)]
    assert worker.get("token_expires"), "the token's expiry is recorded"
    if len(cps) > 1:
        assert types.get(f"{prefix}/join/control-plane") == "SecureString", types
        cp = json.loads(ssm.get_parameter(Name=f"{prefix}/join/control-plane", WithDecryption=True)["Parameter"]["Value"])
        assert re.match(r"^[0-9a-f]{64}$", cp["certificate_key"])
        assert "token" not in cp, "the control-plane bundle holds only the certificate key"
        assert "certificate_key" not in worker, "workers' bundle must not carry the certificate key"


def test_node_statuses_and_init_state_are_recorded(ssm, lab_env, instances):
    prefix = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}"
    params = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=f"{prefix}/nodes", Recursive=True):
        params += page["Parameters"]
    statuses = {p["Name"].rsplit("/", 1)[1]: json.loads(p["Value"]) for p in params}
    for i in instances:
        st = statuses.get(i["PrivateDnsName"])
        assert st, f"no status for {i['PrivateDnsName']}: {sorted(statuses)}"
        assert st["status"] == "joined", st
        assert st["kubernetes_version"] == VERSIONS["KUBE_VERSION"], st
    state = json.loads(ssm.get_parameter(Name=f"{prefix}/init/state")["Parameter"]["Value"])
    assert state["state"] == "initialized"
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=f"{prefix}/init/lock")


def test_check_mode_on_the_converged_cluster_changes_nothing(instances):
    """`site.yml --check` previews a converged cluster: every play runs, nothing fails, nothing would
    change — the probes run in check mode and the re-run shortcuts hold there too. Argo CD is left
    out: test_argocd leaves it installed with its own Helm values, root Application, AppProject and
    password, which site.yml's defaults would rightly change; its own re-run test covers it."""
    res = run_playbook("site.yml", "--check", "-e", "argocd_enabled=false")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    # localhost: the play that checks the inventory found hosts.
    hosts = {h: r for h, r in recap(res.stdout).items() if h != "localhost"}
    assert len(hosts) == len(instances), hosts
    # The tasks that would change something, for the failure message.
    task, would_change = "", []
    for line in res.stdout.splitlines():
        if line.startswith("TASK ["):
            task = line
        elif line.startswith("changed: ["):
            would_change.append(f"{task} {line}")
    assert {h: r["changed"] for h, r in hosts.items() if r["changed"] or r["failed"]} == {}, would_change
