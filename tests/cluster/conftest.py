"""Fixtures for the cluster tests: they run against the lab cluster built by playbooks/site.yml
(`make lab`, or molecule's `cluster` / `ha` scenarios). A missing cluster is a failure, never a skip.

Environment: the lab's (lab/lab.env): AWS_ENDPOINT_URL points at moto_server, LAB_STATE_DIR holds the
admin kubeconfig the collection wrote on the controller.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lab"))


def _lab_env() -> dict[str, str]:
    out = subprocess.run(
        ["bash", "-c", f". '{REPO}/lab/lab.env' && env -0"], check=True, capture_output=True, text=False
    ).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return env


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    env = _lab_env()
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "LAB_", "KUBEADM_AWS"))})
    return env


@pytest.fixture(scope="session")
def kubeconfig(lab_env) -> str:
    path = Path(lab_env["LAB_STATE_DIR"]) / "admin.conf"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the lab cluster is not up (run 'make lab')")
    assert oct(path.stat().st_mode & 0o777) == "0o600", f"{path} must be mode 0600"
    return str(path)


@pytest.fixture(scope="session")
def k8s(kubeconfig):
    from kubernetes import client, config

    config.load_kube_config(config_file=kubeconfig)
    return client


@pytest.fixture(scope="session")
def core(k8s):
    return k8s.CoreV1Api()


@pytest.fixture(scope="session")
def ec2(lab_env):
    return boto3.client("ec2", region_name=lab_env["LAB_REGION"], endpoint_url=lab_env["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="session")
def ssm(lab_env):
    return boto3.client("ssm", region_name=lab_env["LAB_REGION"], endpoint_url=lab_env["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="session")
def instances(ec2, lab_env) -> list[dict]:
    """The lab's running EC2 instances (moto), one per node container."""
    res = ec2.describe_instances(
        Filters=[
            {"Name": "tag:kubeadm-aws/cluster", "Values": [lab_env["LAB_CLUSTER"]]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )
    out = [i for r in res["Reservations"] for i in r["Instances"]]
    assert out, "moto has no running lab instances: run 'make lab'"
    return out


def tags_of(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def lab_vars_args() -> list[str]:
    """The lab's variables: lab/lab-vars.yml, and lab/no-ccm-vars.yml in the LAB_CLOUD_PROVIDER=none variant."""
    args = ["-e", f"@{REPO / 'lab' / 'lab-vars.yml'}"]
    if os.environ.get("LAB_CLOUD_PROVIDER", _lab_env().get("LAB_CLOUD_PROVIDER")) == "none":
        args += ["-e", f"@{REPO / 'lab' / 'no-ccm-vars.yml'}"]
    return args


def run_playbook(playbook: str, *args: str, env: dict | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """ansible-playbook against the lab inventory with the lab's variables, as lab/lab.sh runs it."""
    cmd = [
        str(REPO / ".venv" / "bin" / "ansible-playbook"),
        "-i", str(REPO / "inventory" / "lab.aws_ec2.yml"),
        *lab_vars_args(),
        str(REPO / "playbooks" / playbook),
        *args,
    ]
    full_env = dict(os.environ)
    full_env.update(_lab_env())
    full_env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    full_env["ANSIBLE_FORCE_COLOR"] = "0"
    full_env["ANSIBLE_NOCOLOR"] = "1"
    full_env.update(env or {})
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP of an ansible-playbook run: {host: {ok, changed, failed, ...}}."""
    hosts: dict[str, dict[str, int]] = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line and "=" in line:
            host, _, rest = line.partition(":")
            hosts[host.strip()] = {k: int(v) for k, v in (kv.split("=") for kv in rest.split())}
    return hosts


def wait_for(predicate, timeout: float = 180, interval: float = 3, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
