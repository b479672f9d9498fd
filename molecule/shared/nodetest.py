"""Helpers shared by the scenarios' testinfra tests.

`run_role` runs a role (or one of its task files) with ansible-playbook against a molecule node
container, the way a user would, and returns the exit code and the output, so that tests can
assert on error messages and on what the node looks like afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    venv_bin = REPO / ".venv" / "bin"
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(REPO / ".ansible" / "collections")
    env["ANSIBLE_ROLES_PATH"] = str(REPO / "roles")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    env.pop("ANSIBLE_CALLBACK_WHITELIST", None)
    env["ANSIBLE_STDOUT_CALLBACK"] = "default"
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
    env["ANSIBLE_FACT_CACHING"] = "memory"
    env.pop("ANSIBLE_INVENTORY", None)
    return env


LAB_VARS = Path(__file__).resolve().parent / "vars" / "lab.yml"


def run_role(container: str, role: str, extra_vars: dict | None = None, tasks_from: str = "main",
             timeout: int = 900, lab_vars: bool = True) -> subprocess.CompletedProcess:
    """Run sesacthon.kubeadm_aws.<role> against `container`; never raises on failure.

    With lab_vars, the lab's mirror/registry/version settings (vars/lab.yml) apply first and
    `extra_vars` override them.
    """
    play = [{
        "name": f"{role} from a test",
        "hosts": container,
        "gather_facts": True,
        "tasks": [{
            "name": f"Run {role}",
            "ansible.builtin.include_role": {"name": f"sesacthon.kubeadm_aws.{role}", "tasks_from": tasks_from},
        }],
    }]
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(json.dumps(play))
        varsfile = Path(tmp) / "vars.json"
        varsfile.write_text(json.dumps(extra_vars or {}))
        cmd = ["ansible-playbook", "-i", f"{container},", "-c", "community.docker.docker"]
        if lab_vars:
            cmd += ["-e", f"@{LAB_VARS}"]
        cmd += ["-e", f"@{varsfile}", str(playbook)]
        return subprocess.run(cmd, env=_ansible_env(), cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, check=False)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr
