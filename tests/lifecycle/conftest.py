"""Fixtures for the day-2 tests: they run, in file order, against the lab cluster the molecule scenario
`lifecycle` builds (1 control plane + 2 workers behind tests/lifecycle/lb.py), and change it as they go:
each file starts from the state the one before left. A missing cluster is a failure, never a skip.

The cluster tests' fixtures (tests/cluster/conftest.py: lab_env, kubeconfig, core, ec2, ssm, instances,
run_playbook, recap, wait_for) are reused; playbooks run with lab/lab-vars.yml and
tests/lifecycle/lifecycle-vars.yml (the load balancer as the API endpoint).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

_spec = importlib.util.spec_from_file_location("cluster_conftest", REPO / "tests" / "cluster" / "conftest.py")
cluster = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster)

# The cluster tests' fixtures, under the same names.
lab_env = cluster.lab_env
kubeconfig = cluster.kubeconfig
k8s = cluster.k8s
core = cluster.core
ec2 = cluster.ec2
ssm = cluster.ssm
recap = cluster.recap
wait_for = cluster.wait_for
tags_of = cluster.tags_of

VARS = HERE / "lifecycle-vars.yml"
CLUSTER = os.environ.get("LAB_CLUSTER", "lab")
PREFIX = "/kubeadm-aws/%s" % CLUSTER


def run_playbook(playbook: str, *args: str, env: dict | None = None, timeout: int = 2400) -> subprocess.CompletedProcess:
    """ansible-playbook against the lab inventory with the lab's variables and the load balancer endpoint."""
    p = cluster.run_playbook(playbook, "-e", "@%s" % VARS, *args, env=env, timeout=timeout)
    # Keep every run's output for a look afterwards (the test output shows only the tail).
    log_dir = REPO / ".ansible" / "lifecycle-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / ("%s-%s.log" % (time.strftime("%H%M%S"), playbook.replace("/", "_")))).write_text(
        "$ %s %s\n%s\n%s" % (playbook, " ".join(args), p.stdout, p.stderr))
    return p


def tail(p: subprocess.CompletedProcess, n: int = 6000) -> str:
    return (p.stdout + p.stderr)[-n:]


def changed_hosts(p: subprocess.CompletedProcess) -> dict[str, int]:
    return {h: r["changed"] for h, r in recap(p.stdout).items() if r.get("changed")}


def assert_refused(p: subprocess.CompletedProcess, *words: str) -> None:
    """The run failed, its output names the problem, and no host reports a change."""
    out = p.stdout + p.stderr
    assert p.returncode != 0, tail(p)
    for w in words:
        assert w in out, "%r not in the output:\n%s" % (w, tail(p))
    assert changed_hosts(p) == {}, "a refused run changed something: %s\n%s" % (changed_hosts(p), tail(p))


def lab_sh(*args: str, **env: str) -> str:
    p = subprocess.run([str(REPO / "lab" / "lab.sh"), *args], env={**os.environ, **cluster._lab_env(), **env},
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, "lab/lab.sh %s: %s%s" % (" ".join(args), p.stdout[-2000:], p.stderr[-3000:])
    return p.stdout


def lab_up(control_planes: int | None = None, workers: int | None = None) -> None:
    """lab/lab.sh up keeping the node counts the lab has now (or the ones given)."""
    counts = lab_counts()
    lab_sh("up", LAB_CONTROL_PLANES=str(control_planes or counts["LAB_CONTROL_PLANES"]),
           LAB_WORKERS=str(counts["LAB_WORKERS"] if workers is None else workers))


def lab_counts() -> dict[str, str]:
    """LAB_CONTROL_PLANES / LAB_WORKERS of the lab as it is (the inventory and lab.sh read them)."""
    names = docker("ps", "-a", "--filter", "label=io.sesacthon.kubeadm-aws.lab=1", "--format", "{{.Names}}").stdout.split()
    return {"LAB_CONTROL_PLANES": str(sum(1 for n in names if n.startswith("kubeadm-aws-lab-cp") and not n.endswith("-imds"))),
            "LAB_WORKERS": str(sum(1 for n in names if n.startswith("kubeadm-aws-lab-w") and not n.endswith("-imds")))}


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert p.returncode == 0, "docker %s: %s" % (" ".join(args), p.stderr)
    return p


def node_exec(container: str, script: str, check: bool = True) -> str:
    p = docker("exec", container, "bash", "-euo", "pipefail", "-c", script, check=False)
    if check:
        assert p.returncode == 0, "in %s: %s\n%s%s" % (container, script, p.stdout[-2000:], p.stderr[-2000:])
    return p.stdout


def container_of(name: str) -> str:
    """The lab container of a node name: ip-10-213-0-21.ec2.internal -> kubeadm-aws-lab-w1."""
    last = int(name.split(".")[0].rsplit("-", 1)[1])
    return "kubeadm-aws-lab-%s%d" % (("cp", last - 10) if last < 20 else ("w", last - 20))


def name_of(container: str) -> str:
    short = container.rsplit("-", 1)[1]
    n = int(short.lstrip("cpw"))
    ip = 10 + n if short.startswith("cp") else 20 + n
    return "ip-10-213-0-%d.ec2.internal" % ip


def nodes(core) -> dict:
    return {n.metadata.name: n for n in core.list_node().items}


def ready(node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def ssm_records(ssm) -> dict[str, dict]:
    out = {}
    kwargs = {"Path": PREFIX + "/nodes", "Recursive": False}
    while True:
        resp = ssm.get_parameters_by_path(**kwargs)
        for p in resp["Parameters"]:
            out[p["Name"].rsplit("/", 1)[1]] = json.loads(p["Value"])
        if not resp.get("NextToken"):
            return out
        kwargs["NextToken"] = resp["NextToken"]


def ssm_names(ssm) -> list[str]:
    out, kwargs = [], {"Path": PREFIX, "Recursive": True}
    while True:
        resp = ssm.get_parameters_by_path(**kwargs)
        out += [p["Name"] for p in resp["Parameters"]]
        if not resp.get("NextToken"):
            return sorted(out)
        kwargs["NextToken"] = resp["NextToken"]


@pytest.fixture(scope="session")
def kube_versions(lab_env) -> list[str]:
    """The Kubernetes versions the lab mirror serves (lab/build-artifacts.sh with KUBE_VERSIONS)."""
    listing = Path(lab_env["KUBEADM_AWS_CACHE"]) / "build"
    return sorted(p.name.removeprefix("kubernetes-v") for p in listing.glob("kubernetes-v*") if (p / ".complete").exists())
