"""Helpers shared by the lab smoke tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import os
import shlex
import subprocess
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB_SH = REPO / "lab" / "lab.sh"
SMOKE_NODE = "kubeadm-aws-lab-smoke"
SMOKE_IP = "10.213.0.200"


def _source(path: Path) -> dict[str, str]:
    """Environment after sourcing a shell file (lab/lab.env, lab/versions.env)."""
    out = subprocess.run(
        ["bash", "-c", f"set -a; . {shlex.quote(str(path))}; env -0"],
        check=True,
        capture_output=True,
        cwd=REPO,
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def http_get(url: str, timeout: float = 10, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (lab URL)
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, OSError) as err:
        pytest.fail(f"{url}: {err} (is the lab up? run 'make lab-up')", pytrace=False)


class Node:
    """A node container, driven with `docker exec`."""

    def __init__(self, name: str):
        self.name = name

    def run(self, script: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "exec", self.name, "bash", "-euo", "pipefail", "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def check(self, script: str, timeout: float = 600) -> str:
        result = self.run(script, timeout)
        if result.returncode != 0:
            pytest.fail(
                f"in {self.name}: exit {result.returncode}\n$ {script}\n"
                f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
            )
        return result.stdout


def lab_nodes(lab_env) -> list[dict]:
    """The configured lab nodes (as lab/lab.sh computes them)."""
    nodes = []
    for i in range(1, int(lab_env["LAB_CONTROL_PLANES"]) + 1):
        nodes.append({"container": f"kubeadm-aws-lab-cp{i}", "role": "control-plane", "ip": f"10.213.0.{10 + i}"})
    for i in range(1, int(lab_env["LAB_WORKERS"]) + 1):
        nodes.append({"container": f"kubeadm-aws-lab-w{i}", "role": "worker", "ip": f"10.213.0.{20 + i}"})
    for node in nodes:
        node["name"] = "ip-" + node["ip"].replace(".", "-") + ".ec2.internal"
        short = node["container"].removeprefix("kubeadm-aws-lab-")
        node["tags"] = dict(t.split("=", 1) for t in lab_env.get(f"LAB_TAGS_{short}", "").split())
    return nodes


def ansible_env(lab_env) -> dict[str, str]:
    return {
        **os.environ,
        **lab_env,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_DEPRECATION_WARNINGS": "false",
    }
