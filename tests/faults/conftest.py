"""Fixtures of the fault suite: the cluster tests' fixtures (tests/cluster/conftest.py), and a bare lab
for every test (lab/lab.sh down + up: fresh node containers, a fresh moto)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "cluster_conftest", Path(__file__).resolve().parents[1] / "cluster" / "conftest.py"
)
cluster = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster)
globals().update({k: v for k, v in vars(cluster).items() if not k.startswith("_") and k != "pytest"})

REPO = cluster.REPO


def lab_sh(*args: str, **env: str) -> None:
    subprocess.run([str(REPO / "lab" / "lab.sh"), *args], check=True, env={**os.environ, **env},
                   capture_output=True, text=True)


@pytest.fixture()
def bare_lab(lab_env):
    """A lab with bare nodes and an empty moto (no SSM parameters, no init state)."""
    lab_sh("down")
    lab_sh("up")
    yield


@pytest.fixture()
def instances(bare_lab, ec2, lab_env) -> list[dict]:
    """The running EC2 instances of the fresh lab (moto was restarted: new instance IDs)."""
    res = ec2.describe_instances(Filters=[
        {"Name": "tag:kubeadm-aws/cluster", "Values": [lab_env["LAB_CLUSTER"]]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ])
    out = [i for r in res["Reservations"] for i in r["Instances"]]
    assert out, "moto has no running lab instances after lab/lab.sh up"
    return out


@pytest.fixture()
def core(bare_lab, lab_env):
    """CoreV1Api of the cluster the test brings up: the kubeconfig is read at each call (every test
    builds a new cluster with a new CA)."""
    from kubernetes import client, config

    path = str(Path(lab_env["LAB_STATE_DIR"]) / "admin.conf")

    class Core:
        def __getattr__(self, name):
            return getattr(client.CoreV1Api(api_client=config.new_client_from_config(config_file=path)), name)

    return Core()


def playbook_cmd(playbook: str, *args: str) -> tuple[list[str], dict[str, str]]:
    cmd = [
        str(REPO / ".venv" / "bin" / "ansible-playbook"),
        "-i", str(REPO / "inventory" / "lab.aws_ec2.yml"),
        "-e", f"@{REPO / 'lab' / 'lab-vars.yml'}",
        str(REPO / "playbooks" / playbook), *args,
    ]
    env = dict(os.environ)
    env.update(cluster._lab_env())
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return cmd, env


def interrupt_at(playbook: str, task: str, delay: float, *args: str, timeout: float = 1200) -> str:
    """Run a playbook, send SIGINT to its process group `delay` seconds after `task` starts (as Ctrl-C
    in a terminal would), and return what it printed. Fails when the task never starts."""
    cmd, env = playbook_cmd(playbook, *args)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    out: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if line.startswith("TASK [") and task in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if started.wait(timeout):
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    reader.join(timeout=10)
    text = "".join(out)
    assert started.is_set(), f"task {task!r} never started:\n{text[-3000:]}"
    return text
