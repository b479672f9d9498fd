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
    p = subprocess.run([str(REPO / "lab" / "lab.sh"), *args], env={**os.environ, **env},
                       capture_output=True, text=True)
    assert p.returncode == 0, f"lab/lab.sh {' '.join(args)} failed ({p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}"


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


def docker_exec(container: str, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", container, *cmd], capture_output=True, text=True)


def kill_in_container(container: str, program: str) -> list[str]:
    """Kill -9 the processes of `program` in a node container, by their ids (a node losing power
    mid-command, as far as that command is concerned). Returns the ids killed."""
    pids = docker_exec(container, "pidof", program).stdout.split()
    for pid in pids:
        docker_exec(container, "kill", "-9", pid)
    return pids


def kill_when(playbook: str, task: str, *args: str, when=None, delay: float = 0.0, sig: int = signal.SIGKILL,
              on_kill=None, env: dict | None = None, timeout: float = 1200, condition_timeout: float = 300) -> str:
    """Run a playbook; once `task` has started (and `when()` holds, polled every 0.5 s, if given), wait
    `delay` seconds, call `on_kill()` if given (a fault on a node) and send `sig` to the playbook's
    process group (SIGKILL: the controller dies, nothing of it runs on; SIGINT: Ctrl-C). Returns what it
    printed. Fails when the task never starts or `when` never holds."""
    cmd, run_env = playbook_cmd(playbook, *args)
    run_env.update(env or {})
    proc = subprocess.Popen(cmd, cwd=REPO, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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
    held = False
    if started.wait(timeout):
        deadline = time.time() + condition_timeout
        while when is not None and proc.poll() is None and time.time() < deadline:
            if when():
                held = True
                break
            time.sleep(0.5)
        if when is None or held:
            time.sleep(delay)
            if on_kill is not None:
                on_kill()
            if proc.poll() is None:
                os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    reader.join(timeout=10)
    text = "".join(out)
    assert started.is_set(), f"task {task!r} never started:\n{text[-3000:]}"
    assert when is None or held, f"the fault's condition never held while {task!r} ran:\n{text[-3000:]}"
    return text


def ssm_snapshot(ssm, prefix: str) -> dict[str, int]:
    """{parameter name: version} of every parameter under `prefix` (SSM untouched = equal snapshots)."""
    names: dict[str, int] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix, Recursive=True):
        names.update({p["Name"]: p["Version"] for p in page["Parameters"]})
    return names


def tag_snapshot(ec2, cluster: str) -> dict[str, dict[str, str]]:
    res = ec2.describe_instances(Filters=[{"Name": "tag:kubeadm-aws/cluster", "Values": [cluster]}])
    return {i["InstanceId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            for r in res["Reservations"] for i in r["Instances"]}


_unit_spec = importlib.util.spec_from_file_location(
    "unit_conftest", Path(__file__).resolve().parents[1] / "unit" / "conftest.py"
)
_unit = importlib.util.module_from_spec(_unit_spec)
_unit_spec.loader.exec_module(_unit)


class ThrottlingProxy(_unit.Proxy):
    """The unit tests' recording proxy (tests/unit/conftest.py) in front of the lab's moto, answering
    every `every`-th SSM and EC2 call with AWS's throttling error instead of passing it on (SSM:
    ThrottlingException; EC2: RequestLimitExceeded), for a whole playbook run."""

    def __init__(self, upstream: str, every: int = 3):
        super().__init__(upstream)
        self.every = every
        self._n = 0

    def _should_throttle(self, action):
        with self.lock:
            self._n += 1
            return self._n % self.every == 0
