"""Smoke tests: the lab's parts are real and fit together.

- the mirror serves a signed apt repository from which kubeadm/kubelet/kubectl install;
- the installed binaries report the pinned version (lab/versions.env);
- the registry holds every image `kubeadm config images list` names, and cloud-provider-aws's;
- containerd and runc from the mirror's release archives pull through a hosts.toml mirror of
  registry.k8s.io and run containers from the mirrored images;
- moto + the aws_ec2 inventory describe every node container, which Ansible reaches;
- every node's instance metadata service (169.254.169.254) answers with its own instance as moto has it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml
from labutil import REPO, SMOKE_IP, ansible_env, http_get, lab_nodes

KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"


def _unsafe(value):
    """ansible-inventory --list marks strings as {'__ansible_unsafe': ...}: unwrap them."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    return value


def _minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2])


# ------------------------------------------------------------------------------ apt repository
@pytest.fixture(scope="session")
def k8s_packages(mirror, versions, smoke_node):
    """kubeadm, kubelet and kubectl installed from the mirror's signed apt repository."""
    repo = f"{mirror}/pkgs.k8s.io/core:/stable:/v{_minor(versions['KUBE_VERSION'])}/deb/"
    smoke_node.check(
        f"""
        install -d -m 0755 /etc/apt/keyrings
        curl -fsSL '{repo}Release.key' | gpg --dearmor -o {KEYRING}
        echo 'deb [signed-by={KEYRING}] {repo} /' >/etc/apt/sources.list.d/kubernetes.list
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q kubeadm kubelet kubectl
        """,
        timeout=900,
    )
    return repo


def test_apt_repository_is_signed(smoke_node, k8s_packages):
    """apt verified the repository's InRelease with the mirror's Release.key (no unsigned fallback)."""
    policy = smoke_node.check("apt-cache policy kubeadm")
    assert k8s_packages.rstrip("/") in policy, policy
    # gpgv with only the repository key: a valid signature, made by that key.
    out = smoke_node.run(
        f"curl -fsSL '{k8s_packages}InRelease' -o /tmp/InRelease && gpgv --keyring {KEYRING} /tmp/InRelease"
    )
    assert out.returncode == 0, out.stderr
    assert "Good signature" in out.stderr
    # The same file with one byte changed must not verify: the check is real.
    out = smoke_node.run(
        f"sed '0,/^Date:/s/^Date:/Dat3:/' /tmp/InRelease >/tmp/InRelease.bad && gpgv --keyring {KEYRING} /tmp/InRelease.bad"
    )
    assert out.returncode != 0, "a tampered InRelease verified"


def test_kubeadm_version_is_pinned(smoke_node, k8s_packages, versions):
    assert smoke_node.check("kubeadm version -o short").strip() == versions["KUBE_VERSION"]


def test_kubelet_version_is_pinned(smoke_node, k8s_packages, versions):
    assert smoke_node.check("kubelet --version").strip() == f"Kubernetes {versions['KUBE_VERSION']}"


def test_kubectl_version_is_pinned(smoke_node, k8s_packages, versions):
    out = json.loads(smoke_node.check("kubectl version --client -o json"))
    assert out["clientVersion"]["gitVersion"] == versions["KUBE_VERSION"]


# ------------------------------------------------------------------------------ registry
@pytest.fixture(scope="session")
def kubeadm_images(smoke_node, k8s_packages, versions) -> list[str]:
    out = smoke_node.check(f"kubeadm config images list --kubernetes-version {versions['KUBE_VERSION']}")
    images = out.split()
    assert images, "kubeadm listed no images"
    return images


def test_registry_holds_every_kubeadm_image(kubeadm_images, registry):
    missing = []
    for image in kubeadm_images:
        host, _, rest = image.partition("/")
        assert host == "registry.k8s.io", image
        name, _, tag = rest.rpartition(":")
        status, body = http_get(f"http://{registry}/v2/{name}/tags/list")
        tags = json.loads(body).get("tags") or [] if status == 200 else []
        if tag not in tags:
            missing.append(f"{image} (registry tags: {tags})")
            continue
        # The manifest resolves too (what containerd asks for first).
        accept = ", ".join(
            [
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            ]
        )
        status, _ = http_get(f"http://{registry}/v2/{name}/manifests/{tag}", headers={"Accept": accept})
        if status != 200:
            missing.append(f"{image} (manifest: HTTP {status})")
    assert not missing, "images kubeadm needs that the registry lacks:\n" + "\n".join(missing)


def test_registry_holds_the_lab_cni_images(registry, versions):
    """The lab CNI (flannel) images, under registry.k8s.io/lab/ (lab/build-artifacts.sh)."""
    wanted = {
        "lab/flannel": versions["FLANNEL_VERSION"],
        "lab/flannel-cni-plugin": versions["FLANNEL_CNI_PLUGIN_VERSION"],
    }
    for name, tag in wanted.items():
        status, body = http_get(f"http://{registry}/v2/{name}/tags/list")
        assert status == 200 and tag in (
            json.loads(body).get("tags") or []
        ), f"{name}:{tag}: HTTP {status} {body[:200]!r}"


def _cloud_controller_version(kube_version: str) -> str:
    """The cloud-provider-aws version roles/cloud_controller deploys for a Kubernetes version."""
    table = yaml.safe_load((REPO / "roles" / "cloud_controller" / "defaults" / "main.yml").read_text())
    return table["cloud_controller_versions"][_minor(kube_version)]


def test_registry_holds_the_cloud_controller_image(registry, versions):
    """cloud-provider-aws at the version the role deploys for the lab's minor, built from the Go module
    proxy, under its upstream name (registry.k8s.io/provider-aws/cloud-controller-manager)."""
    name, tag = "provider-aws/cloud-controller-manager", _cloud_controller_version(versions["KUBE_VERSION"])
    status, body = http_get(f"http://{registry}/v2/{name}/tags/list")
    assert status == 200 and tag in (json.loads(body).get("tags") or []), f"{name}:{tag}: HTTP {status} {body[:200]!r}"
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    status, manifest = http_get(f"http://{registry}/v2/{name}/manifests/{tag}", headers={"Accept": accept})
    assert status == 200, f"{name}:{tag} manifest: HTTP {status}"
    # The image's configuration: upstream's entrypoint.
    digest = json.loads(manifest)["config"]["digest"]
    status, config = http_get(f"http://{registry}/v2/{name}/blobs/{digest}")
    assert status == 200
    assert json.loads(config)["config"]["Entrypoint"] == ["/bin/aws-cloud-controller-manager"]


# ------------------------------------------------------------------------------ containerd
def _release(versions, mirror) -> dict[str, str]:
    gh = f"{mirror}/github.com"
    c, r, t = versions["CONTAINERD_VERSION"], versions["RUNC_VERSION"], versions["CRICTL_VERSION"]
    return {
        "containerd": f"{gh}/containerd/containerd/releases/download/{c}/containerd-{c.lstrip('v')}-linux-amd64.tar.gz",
        "runc": f"{gh}/opencontainers/runc/releases/download/{r}/runc.amd64",
        "runc_sums": f"{gh}/opencontainers/runc/releases/download/{r}/runc.sha256sum",
        "crictl": f"{gh}/kubernetes-sigs/cri-tools/releases/download/{t}/crictl-{t}-linux-amd64.tar.gz",
    }


@pytest.fixture(scope="session")
def containerd(mirror, registry, versions, k8s_packages, smoke_node):
    """containerd + runc from the mirror's release archives (checksums verified), with
    registry.k8s.io mirrored to the lab registry through hosts.toml, as the roles configure it."""
    url = _release(versions, mirror)
    smoke_node.check(
        f"""
        cd /tmp
        curl -fsSLO '{url["containerd"]}' -O '{url["containerd"]}.sha256sum'
        sha256sum -c "$(basename '{url["containerd"]}').sha256sum"
        tar -C /usr/local -xzf "$(basename '{url["containerd"]}')"
        curl -fsSLO '{url["runc"]}' -O '{url["runc_sums"]}'
        grep ' \\*\\?runc.amd64$' runc.sha256sum | sha256sum -c -
        install -m 0755 runc.amd64 /usr/local/sbin/runc
        if ! command -v crictl >/dev/null; then
          curl -fsSLO '{url["crictl"]}' -O '{url["crictl"]}.sha256'
          echo "$(cat "$(basename '{url["crictl"]}').sha256")  $(basename '{url["crictl"]}')" | sha256sum -c -
          tar -C /usr/local/bin -xzf "$(basename '{url["crictl"]}')"
        fi
        mkdir -p /etc/containerd/certs.d/registry.k8s.io
        cat >/etc/containerd/certs.d/registry.k8s.io/hosts.toml <<'EOF'
        server = "https://registry.k8s.io"
        [host."http://{registry}"]
          capabilities = ["pull", "resolve"]
        EOF
        cat >/etc/containerd/config.toml <<'EOF'
        version = 3
        [plugins.'io.containerd.cri.v1.images'.registry]
          config_path = '/etc/containerd/certs.d'
        [plugins.'io.containerd.cri.v1.images'.pinned_images]
          sandbox = 'registry.k8s.io/pause:{versions["PAUSE_VERSION"]}'
        EOF
        cat >/etc/systemd/system/containerd.service <<'EOF'
        [Unit]
        Description=containerd (lab smoke test)
        After=network.target
        [Service]
        ExecStart=/usr/local/bin/containerd
        Delegate=yes
        KillMode=process
        [Install]
        WantedBy=multi-user.target
        EOF
        systemctl daemon-reload
        systemctl restart containerd
        for i in $(seq 1 30); do ctr version >/dev/null 2>&1 && break; sleep 1; done
        printf 'runtime-endpoint: unix:///run/containerd/containerd.sock\\nimage-endpoint: unix:///run/containerd/containerd.sock\\n' >/etc/crictl.yaml
        """,
        timeout=600,
    )
    return smoke_node


def test_containerd_is_the_pinned_release(containerd, versions):
    out = containerd.check("ctr version")
    assert f"Version:  {versions['CONTAINERD_VERSION']}" in out, out
    assert versions["RUNC_VERSION"].lstrip("v") in containerd.check("runc --version")
    status = json.loads(containerd.check("crictl info -o json"))["status"]["conditions"]
    assert any(c["type"] == "RuntimeReady" and c["status"] for c in status), status


def test_pull_through_registry_mirror_and_run_pause(containerd, versions, lab_up):
    """The CRI pulls registry.k8s.io/pause via the hosts.toml mirror (registry.k8s.io itself is
    unreachable here) and runc runs it."""
    image = f"registry.k8s.io/pause:{versions['PAUSE_VERSION']}"
    registry_log = Path(lab_up["LAB_STATE_DIR"]) / "registry.log"
    seen = registry_log.read_text(errors="replace").count(SMOKE_IP) if registry_log.exists() else 0
    containerd.check(f"crictl pull {image}", timeout=300)
    assert image in containerd.check("crictl images -o json")
    # The lab registry served it, asked as a mirror of registry.k8s.io (containerd adds ?ns=).
    served = registry_log.read_text(errors="replace").splitlines()
    pulls = [line for line in served if SMOKE_IP in line and "?ns=registry.k8s.io" in line]
    assert len([line for line in served if SMOKE_IP in line]) > seen and pulls, f"no pull in {registry_log}"
    containerd.check(f"ctr -n k8s.io run -d {image} smoke-pause")
    try:
        tasks = containerd.check("ctr -n k8s.io tasks ls")
        assert any(line.split()[:1] == ["smoke-pause"] and "RUNNING" in line for line in tasks.splitlines()), tasks
    finally:
        containerd.run(
            "ctr -n k8s.io tasks kill -s SIGKILL smoke-pause; sleep 1; ctr -n k8s.io tasks rm -f smoke-pause; ctr -n k8s.io containers rm smoke-pause"
        )


def test_run_etcd_from_mirrored_image(containerd, versions):
    image = f"registry.k8s.io/etcd:{versions['ETCD_IMAGE_TAG']}"
    containerd.check(f"crictl pull {image}", timeout=300)
    # ctr appends its arguments to the image's ENTRYPOINT when it has one (the lab's etcd image
    # does, upstream's does not): `--version` alone for the first, `etcd --version` for the second.
    out = containerd.run(f"ctr -n k8s.io run --rm {image} smoke-etcd --version").stdout
    if "etcd Version" not in out:
        out = containerd.check(f"ctr -n k8s.io run --rm {image} smoke-etcd2 etcd --version")
    assert f"etcd Version: {versions['ETCD_VERSION'].lstrip('v')}" in out, out


# ------------------------------------------------------------------------------ moto + inventory
def test_inventory_lists_every_node_in_its_group(inventory, lab_up):
    inv = _unsafe(inventory)
    nodes = lab_nodes(lab_up)
    groups = {g: set(inv.get(g, {}).get("hosts", [])) for g in ("kube_control_plane", "kube_workers")}
    assert groups["kube_control_plane"] == {n["name"] for n in nodes if n["role"] == "control-plane"}
    assert groups["kube_workers"] == {n["name"] for n in nodes if n["role"] == "worker"}
    hostvars = inv["_meta"]["hostvars"]
    for node in nodes:
        hv = hostvars[node["name"]]
        assert hv["ansible_host"] == node["container"]
        assert hv["ansible_connection"] == "community.docker.docker"
        assert hv["ec2_private_ip_address"] == node["ip"]
        assert hv["kubeadm_aws_tag_role"] == node["role"]
        assert hv["ec2_provider_id"] == f"aws:///{lab_up['LAB_AZ']}/{hv['ec2_instance_id']}"
        want_labels = {
            k.removeprefix("k8s.io/label/"): v for k, v in node["tags"].items() if k.startswith("k8s.io/label/")
        }
        want_taints = [
            {"key": k.removeprefix("k8s.io/taint/"), "value": v.rpartition(":")[0], "effect": v.rpartition(":")[2]}
            for k, v in node["tags"].items()
            if k.startswith("k8s.io/taint/")
        ]
        assert hv["kubeadm_aws_tag_labels"] == want_labels
        assert hv["kubeadm_aws_tag_taints"] == want_taints


def test_node_hostname_is_the_private_dns_name(lab_up):
    for node in lab_nodes(lab_up):
        out = subprocess.run(["docker", "exec", node["container"], "hostname"], capture_output=True, text=True)
        assert out.stdout.strip() == node["name"], out.stderr


def test_ansible_reaches_every_node(lab_up, inventory):
    result = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "ansible"),
            "-i",
            "inventory/lab.aws_ec2.yml",
            "kube_cluster",
            "-m",
            "ansible.builtin.ping",
            "-o",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ansible_env(lab_up),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for node in lab_nodes(lab_up):
        assert f"{node['name']} | SUCCESS" in result.stdout, result.stdout


def test_lab_inventory_matches_production():
    """inventory/lab.aws_ec2.yml differs from inventory/aws_ec2.yml only where the lab must."""
    prod = yaml.safe_load((REPO / "inventory" / "aws_ec2.yml").read_text())
    lab = yaml.safe_load((REPO / "inventory" / "lab.aws_ec2.yml").read_text())
    lab_only = {"ansible_connection", "ansible_host"}
    for key in set(prod) | set(lab):
        if key in ("regions", "endpoint_url", "filters", "compose"):
            continue
        assert prod.get(key) == lab.get(key), key
    assert set(prod["filters"]) == set(lab["filters"])
    assert prod["filters"]["instance-state-name"] == lab["filters"]["instance-state-name"]
    for key in set(prod["compose"]) | set(lab["compose"]):
        if key not in lab_only:
            assert prod["compose"].get(key) == lab["compose"].get(key), key
    assert prod["compose"]["ansible_host"] == "ec2_private_ip_address"


def test_production_inventory_reads_the_same_instances(inventory, lab_up):
    """inventory/aws_ec2.yml, pointed at moto only through AWS_ENDPOINT_URL and the cluster name,
    yields the same hosts, groups and variables; only the connection differs (SSH to the private IP)."""
    env = {**ansible_env(lab_up), "KUBEADM_AWS_CLUSTER": lab_up["LAB_CLUSTER"], "AWS_REGION": lab_up["LAB_REGION"]}
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible-inventory"), "-i", "inventory/aws_ec2.yml", "--list"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    prod, lab = _unsafe(json.loads(result.stdout)), _unsafe(inventory)
    for group in ("kube_control_plane", "kube_workers", "kube_cluster"):
        assert set(prod[group]["hosts"]) == set(lab[group]["hosts"]), group
    for host, lab_vars in lab["_meta"]["hostvars"].items():
        prod_vars = prod["_meta"]["hostvars"][host]
        assert prod_vars["ansible_host"] == prod_vars["ec2_private_ip_address"]
        assert "ansible_connection" not in prod_vars
        # Facts cached by earlier runs (discovered_interpreter_python, ...) are not inventory variables.
        cached = {k for k in set(prod_vars) | set(lab_vars) if k.startswith(("discovered_", "ansible_facts"))}
        differ = {k for k in (set(prod_vars) | set(lab_vars)) - cached if prod_vars.get(k) != lab_vars.get(k)}
        assert differ == {"ansible_host", "ansible_connection"}, differ


# ------------------------------------------------------------------------------ instance metadata
def _imds(container: str, path: str) -> str:
    """GET http://169.254.169.254/<path> from inside a node, with an IMDSv2 session token (as the AWS
    SDKs ask first)."""
    script = (
        "t=$(curl -fsS -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)"
        f" && curl -fsS -m 5 -H \"X-aws-ec2-metadata-token: $t\" http://169.254.169.254/{path}"
    )
    out = subprocess.run(["docker", "exec", container, "bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"{container}: GET {path}: {out.stderr}"
    return out.stdout


def test_every_node_answers_its_own_instance_metadata(lab_up):
    """Each node's IMDS (amazon-ec2-metadata-mock, configured from moto) answers with that node's
    instance: id, type, zone, region, private IP and DNS name, identity document, instance profile."""
    ec2 = boto3.client("ec2", region_name=lab_up["LAB_REGION"], endpoint_url=lab_up["AWS_ENDPOINT_URL"])
    iam = boto3.client("iam", region_name=lab_up["LAB_REGION"], endpoint_url=lab_up["AWS_ENDPOINT_URL"])
    res = ec2.describe_instances(
        Filters=[{"Name": "tag-key", "Values": ["lab/container"]}, {"Name": "instance-state-name", "Values": ["running"]}]
    )
    by_container = {
        {t["Key"]: t["Value"] for t in i["Tags"]}["lab/container"]: (i, r) for r in res["Reservations"] for i in r["Instances"]
    }
    for node in lab_nodes(lab_up):
        instance, reservation = by_container[node["container"]]
        md = "latest/meta-data"
        got = {
            key: _imds(node["container"], f"{md}/{key}")
            for key in ("instance-id", "instance-type", "placement/availability-zone", "placement/region",
                        "local-ipv4", "local-hostname", "hostname", "mac")
        }
        assert got == {
            "instance-id": instance["InstanceId"],
            "instance-type": instance["InstanceType"],
            "placement/availability-zone": instance["Placement"]["AvailabilityZone"],
            "placement/region": lab_up["LAB_REGION"],
            "local-ipv4": node["ip"],
            "local-hostname": node["name"],
            "hostname": node["name"],
            "mac": instance["NetworkInterfaces"][0]["MacAddress"],
        }, node["container"]
        mac = got["mac"]
        assert _imds(node["container"], f"{md}/network/interfaces/macs/{mac}/vpc-id") == instance["VpcId"]
        assert _imds(node["container"], f"{md}/network/interfaces/macs/{mac}/subnet-id") == instance["SubnetId"]
        document = json.loads(_imds(node["container"], "latest/dynamic/instance-identity/document"))
        assert (document["instanceId"], document["availabilityZone"], document["region"], document["privateIp"],
                document["accountId"]) == (instance["InstanceId"], instance["Placement"]["AvailabilityZone"],
                                           lab_up["LAB_REGION"], node["ip"], reservation["OwnerId"])
        # The instance profile moto has for the instance, and its role's credentials (the lab's placeholders).
        profile = iam.get_instance_profile(InstanceProfileName=instance["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1])
        role = profile["InstanceProfile"]["Roles"][0]["RoleName"]
        assert _imds(node["container"], f"{md}/iam/security-credentials/").split() == [role]
        creds = json.loads(_imds(node["container"], f"{md}/iam/security-credentials/{role}"))
        assert creds["Code"] == "Success" and creds["AccessKeyId"] == lab_up["AWS_ACCESS_KEY_ID"]
        # What moto has no data for is not invented: the instance has no public address.
        probe = subprocess.run(
            ["docker", "exec", node["container"], "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
             f"http://169.254.169.254/{md}/public-ipv4"], capture_output=True, text=True, timeout=30)
        assert probe.stdout == "404", (node["container"], probe.stdout)
