"""Helpers shared by the AWX tests (imported as awxutil: a module name no other test directory uses): the AWX configuration as configure.yml sends it (rendered by
Ansible from awx/vars.yml and awx/derived.yml), and the lab's environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


class Loader(yaml.SafeLoader):
    """YAML loader that accepts Ansible's !unsafe and !vault tags (as plain strings)."""


Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
Loader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))


def load_yaml(path: Path):
    return yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass


def ansible_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without Ansible/AWX settings, with the repository's ansible.cfg."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "KUBEADM_AWS_AWX_", "CONTROLLER_"))}
    env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp)})
    env.update(extra)
    return env


def render_awx_config(tmp: Path, extra_vars: dict | None = None) -> dict:
    """awx/vars.yml + awx/derived.yml rendered by Ansible: what configure.yml sends to AWX."""
    out = tmp / "rendered.json"
    playbook = tmp / "render.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render the AWX configuration",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "vars_files": [str(REPO / "awx" / "vars.yml"), str(REPO / "awx" / "derived.yml")],
                    "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                    "tasks": [
                        {
                            "name": "Write the values",
                            "ansible.builtin.copy": {
                                "dest": str(out),
                                "mode": "0600",
                                "content": (
                                    "{{ {'job_templates': awx_job_templates, 'workflow': kubeadm_aws_awx_workflow,"
                                    " 'workflow_nodes': awx_workflow_nodes, 'workflow_survey': awx_workflow_survey_spec,"
                                    " 'kubeconfig_type': kubeadm_aws_awx_kubeconfig_credential_type,"
                                    " 'kubeconfig_credential': kubeadm_aws_awx_kubeconfig_credential.name,"
                                    " 'inventory_source_path': kubeadm_aws_awx_inventory_source_path,"
                                    " 'inventory_source_vars': kubeadm_aws_awx_inventory_source_vars} | to_json }}"
                                ),
                            },
                        }
                    ],
                }
            ]
        )
    )
    args = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    if extra_vars:
        args += ["-e", json.dumps(extra_vars)]
    res = subprocess.run(args, cwd=REPO, env=ansible_env(tmp), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(out.read_text())


def lab_env() -> dict[str, str]:
    """lab/lab.env sourced by bash (moto credentials, endpoints, topology)."""
    out = subprocess.run(["bash", "-c", f". '{REPO}/lab/lab.env' && env -0"], check=True, capture_output=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def galaxy_install_from_context(build_dir: Path, dest: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The EE Containerfile's galaxy step, replayed: install the collection tarball named in the build
    context's requirements.yml, without dependencies (no Galaxy is reachable), into dest."""
    return subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-r", "requirements.yml",
         "--collections-path", str(dest)],
        cwd=build_dir, env=env, capture_output=True, text=True, timeout=300,
    )
