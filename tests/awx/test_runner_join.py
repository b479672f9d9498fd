"""playbooks/join_workers.yml run the way AWX runs a job: through ansible-runner's Python API
(`ansible_runner.run(private_data_dir=..., playbook=..., inventory=...)`), with the private data
directory laid out as AWX lays it out, against the lab cluster (`make lab`).

What is reproduced from AWX (awx/main/tasks/jobs.py, awx/main/models/inventory.py):
- project/: the repository's files as a checkout has them (no .git, no local .ansible/ state); the
  collection itself is not taken from the checkout but installed, like the execution environment's
  galaxy step installs it, from the tarball awx/ee/build-context.sh builds;
- the inventory: an inventory update runs `ansible-inventory --list --export` on the project's
  inventory file with the AWS credential and the source variables in its environment; the job gets
  that inventory back as AWX writes it, an executable script in inventory/hosts printing JSON, where
  a job slice holds only its own hosts (hosts ordered by name, every slice_count-th one);
- env/extravars: the join-workers template's extra vars and survey answers (rendered from
  awx/vars.yml), the lab's settings as a lab job template would carry them, and the kubeconfig
  credential's injected extra var pointing at the file the credential writes;
- env/envvars: the AWS credential's variables (moto's) and AWX's own ANSIBLE_* settings;
  env/settings; env/cmdline (-u root, the job's --limit).

Asserted, as the cluster tests do: the joined worker is a Ready node with its EC2 providerID, its
status in SSM is `joined`, and the control plane is never among the job's hosts.

These tests need the lab cluster (`make lab`); they add worker nodes with `lab/lab.sh up`
(LAB_WORKERS raised by one per test) and remove them again afterwards. A missing cluster fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ansible_runner
import boto3
import pytest
import yaml
from awxutil import REPO, VENV_BIN, galaxy_install_from_context, lab_env, render_awx_config

RUNNER_TIMEOUT = 2400


# ------------------------------------------------------------------------------------------------
# Lab
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab_services() -> dict[str, str]:
    """The lab without the cluster (`make lab-up`): moto answers and holds the lab's instances."""
    env = lab_env()
    try:
        ec2 = boto3.client(
            "ec2",
            region_name=env["LAB_REGION"],
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        res = ec2.describe_instances(Filters=[{"Name": "tag:kubeadm-aws/cluster", "Values": [env["LAB_CLUSTER"]]}])
    except Exception as e:  # noqa: BLE001 - any failure means the lab is not up
        pytest.fail(f"moto_server does not answer at {env['AWS_ENDPOINT_URL']} (run 'make lab-up'): {e}")
    if not any(r["Instances"] for r in res["Reservations"]):
        pytest.fail("moto holds no lab instances (run 'make lab-up')")
    return env


@pytest.fixture(scope="module")
def lab(lab_services) -> dict[str, str]:
    env = dict(lab_services)
    kubeconfig = Path(env["LAB_STATE_DIR"]) / "admin.conf"
    if not kubeconfig.is_file():
        pytest.fail(f"{kubeconfig} is missing: the lab cluster is not up (run 'make lab')")
    res = subprocess.run(
        [
            str(VENV_BIN / "python"),
            "-c",
            (
                "import sys; from kubernetes import client, config; config.load_kube_config(config_file=sys.argv[1]);"
                "print(len(client.CoreV1Api().list_node(_request_timeout=10).items))"
            ),
            str(kubeconfig),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if res.returncode != 0:
        pytest.fail(f"the lab cluster's API does not answer (run 'make lab'): {res.stderr[-800:]}")
    env["KUBECONFIG_PATH"] = str(kubeconfig)
    return env


@pytest.fixture(scope="module")
def aws(lab):
    kw = {
        "region_name": lab["LAB_REGION"],
        "endpoint_url": lab["AWS_ENDPOINT_URL"],
        "aws_access_key_id": lab["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": lab["AWS_SECRET_ACCESS_KEY"],
    }
    return {"ec2": boto3.client("ec2", **kw), "ssm": boto3.client("ssm", **kw)}


@pytest.fixture(scope="module")
def core(lab):
    from kubernetes import client, config

    config.load_kube_config(config_file=lab["KUBECONFIG_PATH"])
    return client.CoreV1Api()


def running_instances(aws, lab, role: str | None = None) -> list[dict]:
    filters = [
        {"Name": "tag:kubeadm-aws/cluster", "Values": [lab["LAB_CLUSTER"]]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    if role:
        filters.append({"Name": "tag:kubeadm-aws/role", "Values": [role]})
    res = aws["ec2"].describe_instances(Filters=filters)
    return [i for r in res["Reservations"] for i in r["Instances"]]


def lab_up(lab, workers: int) -> None:
    env = {**os.environ, "LAB_WORKERS": str(workers)}
    res = subprocess.run(
        [str(REPO / "lab" / "lab.sh"), "up"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200
    )
    assert res.returncode == 0, f"lab/lab.sh up (LAB_WORKERS={workers}) failed:\n{res.stdout}\n{res.stderr}"


@pytest.fixture(scope="module")
def added_workers(lab, aws, core):
    """Adds workers to the lab (`LAB_WORKERS=<n> lab/lab.sh up`) on request; removes them at the end:
    Node objects and SSM statuses deleted, containers removed and instances stopped by lab.sh."""
    base = len(running_instances(aws, lab, "worker"))
    added: list[dict] = []

    def add() -> dict:
        before = {i["InstanceId"] for i in running_instances(aws, lab, "worker")}
        lab_up(lab, base + len(added) + 1)
        new = [i for i in running_instances(aws, lab, "worker") if i["InstanceId"] not in before]
        assert len(new) == 1, f"lab/lab.sh up should have added one worker instance, got {new}"
        inst = new[0]
        name = inst["PrivateDnsName"]
        # A node of this name may be left from an earlier run: start from a clean slate.
        _forget_node(core, aws, lab, name)
        added.append(inst)
        return inst

    yield add
    for inst in added:
        _forget_node(core, aws, lab, inst["PrivateDnsName"])
    if added:
        lab_up(lab, base)


def _forget_node(core, aws, lab, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        core.delete_node(name)
    except ApiException as e:
        if e.status != 404:
            raise
    try:
        aws["ssm"].delete_parameter(Name=f"/kubeadm-aws/{lab['LAB_CLUSTER']}/nodes/{name}")
    except aws["ssm"].exceptions.ParameterNotFound:
        pass


# ------------------------------------------------------------------------------------------------
# AWX emulation
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ee_collections(tmp_path_factory) -> Path:
    """The execution environment's collections directory: the collection tarball that the EE build
    context holds, installed with the Containerfile's galaxy command (no Galaxy, --no-deps)."""
    tmp = tmp_path_factory.mktemp("ee")
    res = subprocess.run(
        [str(REPO / "awx" / "ee" / "build-context.sh"), str(tmp / "context")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    dest = tmp / "collections"
    cfg = tmp / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_GALAXY_DISABLE_GPG_VERIFY": "1"})
    res = galaxy_install_from_context(tmp / "context" / "_build", dest, env)
    assert res.returncode == 0, res.stdout + res.stderr
    return dest


@pytest.fixture(scope="module")
def awx_config(tmp_path_factory) -> dict:
    return render_awx_config(tmp_path_factory.mktemp("awxcfg"))


def checkout(dest: Path) -> Path:
    """The project as AWX's project update leaves it: the repository's files, without .git."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = REPO / rel
        if not src.exists() or src.is_dir():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    return dest


def inventory_update(project: Path, lab: dict, awx_config: dict, ee_collections: Path) -> dict:
    """AWX's inventory update for an inventory source from the project: `ansible-inventory --list
    --export` on the source path, run in the project with the source variables and the AWS credential
    in the environment. The lab's source path is inventory/lab.aws_ec2.yml (the production file with
    moto's endpoint and the container connection)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "AWS_", "KUBEADM_AWS", "LAB_"))}
    env.update(
        {
            # STANDARD_INVENTORY_UPDATE_ENV
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            "ANSIBLE_INVENTORY_EXPORT": "True",
            "ANSIBLE_VERBOSE_TO_STDERR": "True",
            # Amazon Web Services credential (moto's placeholder keys) and the lab's endpoint.
            "AWS_ACCESS_KEY_ID": lab["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": lab["AWS_SECRET_ACCESS_KEY"],
            "AWS_ENDPOINT_URL": lab["AWS_ENDPOINT_URL"],
            "ANSIBLE_COLLECTIONS_PATH": f"{ee_collections}",
        }
    )
    # source_vars become environment variables (the lab's cluster and region).
    env.update(
        {
            k: {"KUBEADM_AWS_CLUSTER": lab["LAB_CLUSTER"], "AWS_REGION": lab["LAB_REGION"]}.get(k, v)
            for k, v in awx_config["inventory_source_vars"].items()
        }
    )
    res = subprocess.run(
        [
            str(VENV_BIN / "ansible-inventory"),
            "--list",
            "--export",
            "-i",
            str(project / "inventory" / "lab.aws_ec2.yml"),
            "--playbook-dir",
            str(project / "inventory"),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def job_inventory(export: dict, slice_number: int = 1, slice_count: int = 1) -> dict:
    """The inventory AWX hands a job (Inventory.get_script_data(hostvars=True, towervars=True,
    slice_number, slice_count)) for an inventory imported from `export`."""
    hostvars = export["_meta"]["hostvars"]
    hosts = sorted(hostvars)
    if slice_count > 1 and slice_number > 0:
        hosts = hosts[slice_number - 1 :: slice_count]
    in_slice = set(hosts)
    groups = {name: g for name, g in export.items() if name not in ("_meta", "all", "ungrouped")}
    data: dict = {"all": {}}
    if export.get("all", {}).get("vars"):
        data["all"]["vars"] = export["all"]["vars"]
    grouped: set[str] = set()
    for name, g in groups.items():
        info = {}
        members = [h for h in g.get("hosts", []) if h in in_slice]
        if members:
            info["hosts"] = members
            grouped |= set(members)
        if g.get("children"):
            info["children"] = list(g["children"])
        if g.get("vars"):
            info["vars"] = g["vars"]
        if info:
            data[name] = info
    data["all"]["hosts"] = [h for h in hosts if h not in grouped]
    data["all"]["children"] = list(groups)
    data["_meta"] = {
        "hostvars": {
            h: {**hostvars[h], "remote_tower_enabled": "true", "remote_tower_id": i + 1} for i, h in enumerate(hosts)
        }
    }
    return data


def lab_kube_version() -> str:
    for line in (REPO / "lab" / "versions.env").read_text().splitlines():
        if line.startswith("KUBE_VERSION="):
            return line.split("=", 1)[1].strip().lstrip("v")
    raise AssertionError("lab/versions.env has no KUBE_VERSION")


def write_private(path: Path, content: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(content)
    path.chmod(mode)
    return path


class AwxJob:
    """One job of the join-workers template, run by ansible-runner from an AWX-shaped private data dir."""

    def __init__(self, root: Path, lab: dict, awx_config: dict, ee_collections: Path, project: Path):
        self.pdd = root
        self.lab = lab
        self.template = next(t for t in awx_config["job_templates"] if t["playbook"] == "playbooks/join_workers.yml")
        self.awx_config = awx_config
        self.ee_collections = ee_collections
        self.project = project

    def prepare(self, inventory: dict, limit: str | None = None) -> Path:
        """Write the private data directory; returns the inventory script's path."""
        pdd = self.pdd
        pdd.mkdir(parents=True, mode=0o700)
        (pdd / "project").symlink_to(self.project, target_is_directory=True)
        inv = write_private(
            pdd / "inventory" / "hosts",
            "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(inventory),
            0o700,
        )
        # Kubeconfig credential: the file injector writes the kubeconfig into the private data dir;
        # its extra_vars injector points kubeadm_aws_kubeconfig_path at it.
        kubeconfig = write_private(pdd / "env" / "tmp_kubeconfig", Path(self.lab["KUBECONFIG_PATH"]).read_text())
        injector = {
            k: v.replace("{{ tower.filename.kubeconfig }}", str(kubeconfig))
            for k, v in self.awx_config["kubeconfig_type"]["injectors"]["extra_vars"].items()
        }
        lab_vars = yaml.safe_load((REPO / "lab" / "lab-vars.yml").read_text())
        survey = {q["variable"]: q["default"] for q in self.template["survey_spec"]["spec"]}
        # The answers a user gives for the lab: its cluster and the Kubernetes version its mirror serves.
        survey["kubeadm_aws_cluster_name"] = self.lab["LAB_CLUSTER"]
        if "kubeadm_aws_kubernetes_version" in survey:
            survey["kubeadm_aws_kubernetes_version"] = lab_kube_version()
        extravars = {
            **self.template["extra_vars"],  # the template's extra vars (awx/vars.yml)
            **lab_vars,  # the lab job template's settings (mirror, registry, moto)
            **survey,  # survey answers
            **injector,  # credential injector
            "awx_job_id": 1,
            "tower_job_id": 1,
            "awx_job_template_name": self.template["name"],
            "awx_job_launch_type": "manual",
        }
        write_private(pdd / "env" / "extravars", yaml.safe_dump(extravars))
        envvars = {
            # AWX settings passed to every job (awx/settings/defaults.py).
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "JOB_ID": "1",
            "INVENTORY_ID": "1",
            "AWX_PRIVATE_DATA_DIR": str(pdd),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(pdd / "cp"),
            # The execution environment's PATH: ansible-playbook and its Python (the virtualenv here).
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            # Collections: requirements_collections, the project's collections_path, the EE's.
            "ANSIBLE_COLLECTIONS_PATH": ":".join(
                [
                    str(pdd / "requirements_collections"),
                    "./.ansible/collections",
                    "~/.ansible/collections",
                    str(self.ee_collections),
                ]
            ),
            # Amazon Web Services credential + the lab's endpoint (moto).
            "AWS_ACCESS_KEY_ID": self.lab["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": self.lab["AWS_SECRET_ACCESS_KEY"],
            "AWS_ENDPOINT_URL": self.lab["AWS_ENDPOINT_URL"],
            # Read by lab/lab-vars.yml (a lab job template would carry literal values instead); the
            # repository it reads lab/versions.env from is the job's project.
            **{k: v for k, v in self.lab.items() if k.startswith("LAB_")},
            "LAB_REPO_DIR": str(pdd / "project"),
        }
        write_private(pdd / "env" / "envvars", yaml.safe_dump(envvars))
        write_private(
            pdd / "env" / "settings",
            json.dumps({"job_timeout": RUNNER_TIMEOUT, "suppress_ansible_output": True, "suppress_output_file": False}),
        )
        cmdline = "-u root" + (f" -l {limit}" if limit else "")
        write_private(pdd / "env" / "cmdline", cmdline)
        (pdd / "cp").mkdir(mode=0o700, exist_ok=True)
        return inv

    def run(self, inventory: dict, limit: str | None = None):
        return self.execute(self.prepare(inventory, limit))

    def execute(self, inv: Path):
        pdd = self.pdd
        t0 = time.time()
        old_path = os.environ.get("PATH", "")
        os.environ["PATH"] = f"{VENV_BIN}:{old_path}"  # runner looks ansible-playbook up in its own PATH
        try:
            result = ansible_runner.run(
                private_data_dir=str(pdd),
                playbook="playbooks/join_workers.yml",
                inventory=str(inv),
                ident="1",
                quiet=True,
            )
        finally:
            os.environ["PATH"] = old_path
        self.duration = time.time() - t0
        self.result = result
        self.events = list(result.events)
        return result

    def stdout(self, tail: int = 6000) -> str:
        return self.result.stdout.read()[-tail:]

    def processed_hosts(self) -> set[str]:
        stats = [e for e in self.events if e.get("event") == "playbook_on_stats"]
        assert stats, "no playbook_on_stats event"
        data = stats[-1]["event_data"]
        return set(data.get("processed", {})) | set(data.get("ok", {})) | set(data.get("failures", {}))

    def playbook_path(self) -> str:
        starts = [e for e in self.events if e.get("event") == "playbook_on_start"]
        return starts[0]["event_data"]["playbook"] if starts else ""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return checkout(tmp_path_factory.mktemp("project"))


# ------------------------------------------------------------------------------------------------
# Assertions shared with the cluster tests
# ------------------------------------------------------------------------------------------------
def assert_joined(core, aws, lab, instance: dict) -> None:
    name = instance["PrivateDnsName"]
    deadline = time.time() + 120
    node = None
    while time.time() < deadline:
        node = core.read_node(name)
        if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
            break
        time.sleep(3)
    assert node is not None
    assert any(
        c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
    ), f"{name} is not Ready: {[(c.type, c.status, c.reason) for c in node.status.conditions or []]}"
    want = f"aws:///{instance['Placement']['AvailabilityZone']}/{instance['InstanceId']}"
    assert node.spec.provider_id == want
    assert "node-role.kubernetes.io/worker" in (node.metadata.labels or {})
    status = json.loads(
        aws["ssm"].get_parameter(Name=f"/kubeadm-aws/{lab['LAB_CLUSTER']}/nodes/{name}")["Parameter"]["Value"]
    )
    assert status["status"] == "joined", status
    assert status.get("role") in (None, "worker"), status
    tags = {
        t["Key"]: t["Value"]
        for t in aws["ec2"]
        .describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
        .get("Tags", [])
    }
    assert tags.get(f"kubernetes.io/cluster/{lab['LAB_CLUSTER']}") == "owned", tags
    assert tags.get("kubeadm-aws/provider-id") == want, tags


def control_planes(export: dict) -> set[str]:
    return set(export.get("kube_control_plane", {}).get("hosts", []))


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------
def test_private_data_dir_is_laid_out_as_awx_does(tmp_path, lab_services, awx_config, ee_collections, project):
    """The layout the jobs below use, checked without running a playbook."""
    lab = {**lab_services, "KUBECONFIG_PATH": str(write_private(tmp_path / "kubeconfig", "apiVersion: v1\n"))}
    job = AwxJob(tmp_path / "pdd", lab, awx_config, ee_collections, project)
    job.prepare({"all": {"hosts": []}, "_meta": {"hostvars": {}}}, limit="somehost")
    pdd = tmp_path / "pdd"
    for rel in (
        "env/extravars",
        "env/envvars",
        "env/settings",
        "env/cmdline",
        "inventory/hosts",
        "project/playbooks/join_workers.yml",
    ):
        assert (pdd / rel).exists(), rel
    assert stat.S_IMODE((pdd / "env" / "tmp_kubeconfig").stat().st_mode) == 0o600
    assert not (pdd / "project" / ".git").exists() and not (pdd / "project" / ".ansible").exists()
    extravars = yaml.safe_load((pdd / "env" / "extravars").read_text())
    assert extravars["kubeadm_aws_kubeconfig_path"] == str(pdd / "env" / "tmp_kubeconfig")
    assert extravars["kubeadm_aws_cluster_name"] == lab["LAB_CLUSTER"]
    assert (pdd / "env" / "cmdline").read_text() == "-u root -l somehost"
    envvars = yaml.safe_load((pdd / "env" / "envvars").read_text())
    assert envvars["AWS_ENDPOINT_URL"] == lab["AWS_ENDPOINT_URL"] and envvars["AWS_ACCESS_KEY_ID"]


def test_a_slice_never_targets_the_control_plane(tmp_path, lab_services, awx_config, ee_collections, project):
    """Every play of join_workers.yml, in every slice of a sliced job and in a limited job, targets
    workers only (`ansible-playbook --list-hosts` through ansible-runner, with AWX's inventory)."""
    lab = {**lab_services, "KUBECONFIG_PATH": str(write_private(tmp_path / "kubeconfig", "apiVersion: v1\n"))}
    export = inventory_update(project, lab, awx_config, ee_collections)
    cps, workers = control_planes(export), set(export.get("kube_workers", {}).get("hosts", []))
    assert cps and workers, export
    names = sorted(export["_meta"]["hostvars"])
    cases = [(f"slice {n} of 2", job_inventory(export, n, 2), None) for n in (1, 2)]
    cases.append(("limit", job_inventory(export), sorted(workers)[0]))
    for i, (what, inventory, limit) in enumerate(cases):
        job = AwxJob(tmp_path / f"pdd{i}", lab, awx_config, ee_collections, project)
        inv = job.prepare(inventory, limit)
        (job.pdd / "env" / "cmdline").write_text((job.pdd / "env" / "cmdline").read_text() + " --list-hosts")
        result = job.execute(inv)
        out = job.result.stdout.read()
        assert result.status == "successful", f"{what}: {out[-3000:]}"
        listed = {line.strip() for line in out.splitlines() if line.strip() in names}
        expected = (set(inventory["_meta"]["hostvars"]) & workers) if not limit else {limit}
        assert listed == expected, f"{what}: plays target {sorted(listed)}, expected {sorted(expected)}"
        assert not listed & cps


def test_join_workers_job_with_a_limit(lab, aws, core, added_workers, ee_collections, awx_config, project, tmp_path):
    """A join-workers job (one slice) limited to the new instance, as AWX launches it with a limit."""
    new = added_workers()
    export = inventory_update(project, lab, awx_config, ee_collections)
    assert new["PrivateDnsName"] in export["_meta"]["hostvars"], "the inventory update does not see the new instance"
    assert control_planes(export), "the inventory has no control plane"
    job = AwxJob(tmp_path / "awx_job_1", lab, awx_config, ee_collections, project)
    result = job.run(job_inventory(export), limit=new["PrivateDnsName"])
    assert result.status == "successful" and result.rc == 0, job.stdout()
    hosts = job.processed_hosts()
    assert hosts == {new["PrivateDnsName"]}, f"the job ran on {hosts}"
    assert not hosts & control_planes(export)
    assert_joined(core, aws, lab, new)


def test_join_workers_job_slice_without_the_control_plane(
    lab, aws, core, added_workers, ee_collections, awx_config, project, tmp_path
):
    """One slice of a sliced join-workers job: its inventory holds only its own hosts, all workers
    (one new, one already joined); the control plane is in another slice. The join material comes
    from SSM alone."""
    # A slice cannot refresh the token (the control plane is not in its inventory): the bootstrap or
    # an unsliced join (the test above) leaves one valid for kubeadm_aws_token_ttl (2 h).
    bundle = json.loads(
        aws["ssm"].get_parameter(Name=f"/kubeadm-aws/{lab['LAB_CLUSTER']}/join/worker", WithDecryption=True)[
            "Parameter"
        ]["Value"]
    )
    left = datetime.fromisoformat(bundle["token_expires"].replace("Z", "+00:00")) - datetime.now(timezone.utc)
    assert left > timedelta(minutes=16), (
        f"the stored join token expires in {left}: a slice cannot refresh it. Run the unsliced job first "
        "(test_join_workers_job_with_a_limit) or rebuild the lab cluster."
    )
    new = added_workers()
    export = inventory_update(project, lab, awx_config, ee_collections)
    names = sorted(export["_meta"]["hostvars"])
    cps = control_planes(export)
    # The smallest slice count that puts the new worker in a slice without a control plane.
    for count in range(2, len(names) + 1):
        number = names.index(new["PrivateDnsName"]) % count + 1
        members = set(names[number - 1 :: count])
        if not members & cps:
            break
    else:  # pragma: no cover - only with no workers at all
        pytest.fail(f"no slicing of {names} keeps {new['PrivateDnsName']} away from the control plane")
    inventory = job_inventory(export, number, count)
    assert set(inventory["_meta"]["hostvars"]) == members
    job = AwxJob(tmp_path / "awx_job_2", lab, awx_config, ee_collections, project)
    result = job.run(inventory)
    assert (
        result.status == "successful" and result.rc == 0
    ), f"slice {number} of {count} ({sorted(members)}) failed:\n{job.stdout()}"
    # localhost: the play that checks the inventory found hosts (it runs on the execution node).
    hosts = job.processed_hosts() - {"localhost"}
    assert hosts == members, f"the slice ran on {hosts}, expected {members}"
    assert not hosts & cps
    assert_joined(core, aws, lab, new)
    for other in members - {new["PrivateDnsName"]}:
        inst = next(i for i in running_instances(aws, lab) if i["PrivateDnsName"] == other)
        assert_joined(core, aws, lab, inst)
