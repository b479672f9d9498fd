"""Fixtures for the lab smoke tests (`lab/lab.sh smoke`, `make lab-smoke`).

The tests run against the real lab started by `lab/lab.sh up`: the Docker engine, moto_server, the
HTTP mirror, the registry and the node containers. Installs happen in a throwaway node container
(kubeadm-aws-lab-smoke) so the lab nodes stay bare for the roles. A missing part is a failure with
a message that says which command provides it, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from labutil import LAB_SH, REPO, SMOKE_IP, SMOKE_NODE, Node, _source, ansible_env, http_get


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    return _source(REPO / "lab" / "lab.env")


@pytest.fixture(scope="session")
def versions() -> dict[str, str]:
    path = REPO / "lab" / "versions.env"
    if not path.is_file():
        pytest.fail(f"{path} is missing (it pins the lab's versions; see lab/build-artifacts.sh)", pytrace=False)
    return _source(path)


@pytest.fixture(scope="session")
def lab_up(lab_env) -> dict[str, str]:
    """The lab's host-side services answer; fails (with the fix) when they do not."""
    net = subprocess.run(["docker", "network", "inspect", lab_env["LAB_NETWORK"]], capture_output=True)
    if net.returncode != 0:
        pytest.fail(f"Docker network {lab_env['LAB_NETWORK']} is missing: run 'make lab-up'", pytrace=False)
    status, _ = http_get(f"http://127.0.0.1:{lab_env['LAB_MOTO_PORT']}/moto-api/")
    assert status == 200, "moto_server does not answer: run 'make lab-up'"
    return lab_env


@pytest.fixture(scope="session")
def mirror(lab_up, versions) -> str:
    """Base URL of the mirror; fails when the artifacts were not built yet."""
    base = lab_up["LAB_MIRROR_URL"]
    minor = ".".join(versions["KUBE_VERSION"].lstrip("v").split(".")[:2])
    url = f"{base}/pkgs.k8s.io/core:/stable:/v{minor}/deb/InRelease"
    status, _ = http_get(url)
    if status != 200:
        pytest.fail(f"the mirror has no apt repository ({url}: HTTP {status}): run 'make lab-artifacts'", pytrace=False)
    return base


@pytest.fixture(scope="session")
def registry(lab_up) -> str:
    url = f"http://{lab_up['LAB_REGISTRY']}/v2/"
    status, _ = http_get(url)
    if status != 200:
        pytest.fail(
            f"the image registry does not answer on {url}: run 'make lab-artifacts' then 'make lab-up'", pytrace=False
        )
    return lab_up["LAB_REGISTRY"]


@pytest.fixture(scope="session")
def smoke_node(lab_up) -> Node:
    """A throwaway node container like the lab's nodes, removed after the session."""
    image = f"kubeadm-aws-node:{lab_up['LAB_OS']}"
    subprocess.run([str(LAB_SH), "rm-node", SMOKE_NODE], check=True, env={**os.environ, **lab_up})
    subprocess.run(
        [str(LAB_SH), "run-node", SMOKE_NODE, SMOKE_IP, image, "smoke"], check=True, env={**os.environ, **lab_up}
    )
    try:
        subprocess.run([str(LAB_SH), "wait-node", SMOKE_NODE], check=True, env={**os.environ, **lab_up})
        yield Node(SMOKE_NODE)
    finally:
        if not os.environ.get("LAB_SMOKE_KEEP"):
            subprocess.run([str(LAB_SH), "rm-node", SMOKE_NODE], check=False, env={**os.environ, **lab_up})


@pytest.fixture(scope="session")
def inventory(lab_up) -> dict:
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible-inventory"), "-i", "inventory/lab.aws_ec2.yml", "--list"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ansible_env(lab_up),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
