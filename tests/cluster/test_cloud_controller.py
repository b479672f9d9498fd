"""cloud-provider-aws in the lab cluster, as a user sees it: with kubeadm_aws_cloud_provider external (the
production default) the controller runs on every control plane against moto, has initialised every node
(no uninitialized taint; zone, region and instance-type labels and the addresses from EC2; the
providerID the collection set kept) and deletes the Node of an instance terminated in EC2. With
LAB_CLOUD_PROVIDER=none (lab/lab.conf; kubeadm_aws_cloud_provider "", molecule's ha scenario) no
controller is installed and no node waits for one.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from conftest import REPO, recap, run_playbook, tags_of, wait_for
from test_scale_out import added_worker

UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"
DAEMONSET = "aws-cloud-controller-manager"


@pytest.fixture(scope="module")
def external(lab_env) -> bool:
    return lab_env.get("LAB_CLOUD_PROVIDER", "external") != "none"


@pytest.fixture(scope="module")
def ccm_version() -> str:
    """The version roles/cloud_controller deploys for the lab's Kubernetes minor."""
    role = yaml.safe_load((REPO / "roles" / "cloud_controller" / "defaults" / "main.yml").read_text())
    kube = next(line.split("=", 1)[1] for line in (REPO / "lab" / "versions.env").read_text().splitlines()
                if line.startswith("KUBE_VERSION="))
    return role["cloud_controller_versions"][".".join(kube.lstrip("v").split(".")[:2])]


@pytest.fixture(scope="module")
def zone_ids(ec2) -> dict[str, str]:
    return {z["ZoneName"]: z["ZoneId"] for z in ec2.describe_availability_zones()["AvailabilityZones"]}


def _node(core, name):
    return next((n for n in core.list_node().items if n.metadata.name == name), None)


def _taints(node) -> set[str]:
    return {t.key for t in node.spec.taints or []}


def _initialised(node) -> bool:
    labels = node.metadata.labels or {}
    return UNINITIALIZED not in _taints(node) and "node.kubernetes.io/instance-type" in labels


def test_no_node_waits_for_a_cloud_controller(core, instances):
    nodes = {n.metadata.name: n for n in core.list_node().items}
    waiting = [i["PrivateDnsName"] for i in instances if UNINITIALIZED in _taints(nodes[i["PrivateDnsName"]])]
    assert not waiting, f"nodes still carrying {UNINITIALIZED}: {waiting}"


def test_the_controller_runs_on_every_control_plane(k8s, core, instances, lab_env, external, ccm_version):
    apps = k8s.AppsV1Api()
    found = apps.list_namespaced_daemon_set("kube-system", field_selector=f"metadata.name={DAEMONSET}").items
    if not external:
        assert not found, "kubeadm_aws_cloud_provider is empty but the cloud controller manager is installed"
        return
    assert found, f"no DaemonSet kube-system/{DAEMONSET}"
    ds = found[0]
    image = ds.spec.template.spec.containers[0].image
    assert image == f"registry.k8s.io/provider-aws/cloud-controller-manager:{ccm_version}"
    control_planes = {i["PrivateDnsName"] for i in instances if tags_of(i)["kubeadm-aws/role"] == "control-plane"}
    assert ds.status.desired_number_scheduled == len(control_planes)
    assert ds.status.number_ready == len(control_planes), ds.status
    pods = core.list_namespaced_pod("kube-system", label_selector=f"k8s-app={DAEMONSET}").items
    assert {p.spec.node_name for p in pods} == control_planes
    # Its cloud configuration names the cluster and, in the lab, points the AWS APIs at moto.
    conf = core.read_namespaced_config_map(DAEMONSET, "kube-system").data["cloud.conf"]
    assert f'KubernetesClusterID = "{lab_env["LAB_CLUSTER"]}"' in conf, conf
    assert f'URL = "{lab_env["LAB_MOTO_URL_FROM_NODES"]}"' in conf, conf


def test_nodes_carry_zone_region_and_instance_type_from_ec2(core, instances, lab_env, external, zone_ids):
    nodes = {n.metadata.name: n for n in core.list_node().items}
    for i in instances:
        node = nodes[i["PrivateDnsName"]]
        labels = node.metadata.labels or {}
        if not external:
            assert "node.kubernetes.io/instance-type" not in labels, node.metadata.name
            continue
        az = i["Placement"]["AvailabilityZone"]
        assert {k: labels.get(k) for k in ("topology.kubernetes.io/zone", "topology.kubernetes.io/region",
                                           "node.kubernetes.io/instance-type", "topology.k8s.aws/zone-id")} == {
            "topology.kubernetes.io/zone": az,
            "topology.kubernetes.io/region": lab_env["LAB_REGION"],
            "node.kubernetes.io/instance-type": i["InstanceType"],
            "topology.k8s.aws/zone-id": zone_ids[az],
        }, node.metadata.name
        assert az == lab_env["LAB_AZ"] == "us-east-1a"


def test_node_addresses_come_from_ec2(core, instances, external):
    if not external:
        pytest.skip("no cloud controller manager: the kubelet reports its own addresses")
    nodes = {n.metadata.name: n for n in core.list_node().items}
    for i in instances:
        node = nodes[i["PrivateDnsName"]]
        addresses = {(a.type, a.address) for a in node.status.addresses or []}
        assert ("InternalIP", i["PrivateIpAddress"]) in addresses, (node.metadata.name, addresses)
        assert ("InternalDNS", i["PrivateDnsName"]) in addresses, (node.metadata.name, addresses)
        # The instances have no public address in EC2, so the nodes have none either.
        assert not {t for t, _ in addresses} & {"ExternalIP", "ExternalDNS"}, addresses


def test_the_provider_id_the_collection_set_is_kept(core, instances):
    nodes = {n.metadata.name: n for n in core.list_node().items}
    for i in instances:
        assert nodes[i["PrivateDnsName"]].spec.provider_id == (
            f"aws:///{i['Placement']['AvailabilityZone']}/{i['InstanceId']}")


def test_an_instance_terminated_in_ec2_loses_its_node(core, ec2, ssm, lab_env, instances, external):
    """The controller's node lifecycle controller deletes the Node of a terminated instance (the base of
    scale-in): a worker this test adds is joined, initialised by the controller, then its instance is
    terminated in EC2 (moto) and its machine stops, and its Node goes away with nobody deleting it; the next
    run deletes its SSM node record."""
    if not external:
        pytest.skip("no cloud controller manager: nothing deletes the Node of a terminated instance")
    with added_worker(ec2, instances) as (new, count):
        name = new["PrivateDnsName"]
        container = tags_of(new)["lab/container"]
        status_parameter = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}/nodes/{name}"
        try:
            p = run_playbook("join_workers.yml", "--limit", name, env={"LAB_WORKERS": count})
            assert p.returncode == 0, p.stdout[-4000:]
            assert set(recap(p.stdout)) == {name}
            node = wait_for(lambda: (lambda n: n if n is not None and _initialised(n) else None)(_node(core, name)),
                            timeout=240, what=f"node {name} initialised by the cloud controller manager")
            assert node.metadata.labels["node.kubernetes.io/instance-type"] == new["InstanceType"]

            ec2.terminate_instances(InstanceIds=[new["InstanceId"]])
            subprocess.run(["docker", "stop", "-t", "5", container], check=True, capture_output=True)
            state = ec2.describe_instances(InstanceIds=[new["InstanceId"]])["Reservations"][0]["Instances"][0]["State"]
            assert state["Name"] == "terminated"
            # NotReady after the node monitor grace period, then the lifecycle controller checks EC2.
            wait_for(lambda: _node(core, name) is None, timeout=300, interval=5,
                     what=f"the cloud controller manager to delete node {name}")
            # Its SSM node record goes with the next run (here a worker-only run limited to another worker).
            assert ssm.get_parameters(Names=[status_parameter])["Parameters"], "the join wrote no record"
            other = next(i["PrivateDnsName"] for i in instances if tags_of(i)["kubeadm-aws/role"] == "worker")
            p = run_playbook("join_workers.yml", "--limit", other)
            assert p.returncode == 0, p.stdout[-4000:]
            assert not ssm.get_parameters(Names=[status_parameter])["Parameters"], \
                f"the record of terminated {name} is still in SSM"
        finally:
            if _node(core, name) is not None:
                core.delete_node(name)
            try:
                ssm.delete_parameter(Name=status_parameter)
            except ssm.exceptions.ParameterNotFound:
                pass


def test_a_minor_without_a_cloud_controller_version_stops_the_first_play(instances, external):
    """Bad input: a Kubernetes minor the collection is told to support but for which cloud_controller_versions
    has no cloud-provider-aws version stops site.yml in its first play, naming the variable, before any
    host changes. Run with --check: this test runs on the converged cluster (the other cluster tests use
    it afterwards), so a run that got past the first play must not change it either."""
    if not external:
        pytest.skip("without a cloud controller manager no version is needed")
    extra = {"kubeadm_aws_kubernetes_version": "1.38.0",
             "kubeadm_aws_supported_minors": ["1.34", "1.35", "1.36", "1.37", "1.38"]}
    p = run_playbook("site.yml", "--check", "-e", json.dumps(extra))
    out = p.stdout + p.stderr
    assert p.returncode != 0, out[-3000:]
    assert "cloud_controller_versions has no cloud-provider-aws version for Kubernetes 1.38" in out, out[-3000:]
    assert all(h["changed"] == 0 for h in recap(p.stdout).values()), out[-3000:]
    assert "Prepare the nodes" not in p.stdout, "the run went past the input checks"
