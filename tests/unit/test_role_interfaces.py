"""Roles talk to each other only through what they declare.

A role reads its own variables, the collection settings (kubeadm_aws_*, roles/cluster_settings) and the
facts or inventory variables it declares in its meta/argument_specs.yml. It never reads another role's
defaults or vars, and never runs another role's task files.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES_DIR = ROOT / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "meta" / "argument_specs.yml").is_file())
# Variables from the inventory (amazon.aws.aws_ec2 with hostvars_prefix ec2_) count as outside input too.
OUTSIDE_PREFIXES = [r + "_" for r in ROLES if r != "cluster_settings"] + ["ec2_"]
CODE_DIRS = ("tasks", "handlers", "templates", "defaults", "vars")
# Names that look like another role's variable but are not: keys of the role's own dicts.
NOT_VARIABLES = {"container_runtime": {"cni_plugins"}}


def _declared(role):
    spec = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    names = set()
    for entry in spec.values():
        names |= set((entry or {}).get("options") or {})
    return names


def _code_files(role):
    for d in CODE_DIRS:
        base = ROLES_DIR / role / d
        if base.is_dir():
            yield from (p for p in sorted(base.rglob("*")) if p.is_file())


def _outside_names(role, text):
    own = role + "_"
    found = set()
    for prefix in OUTSIDE_PREFIXES:
        if prefix == own:
            continue
        found |= set(re.findall(r"(?<![A-Za-z0-9_])(?<![A-Za-z0-9_]\.)" + re.escape(prefix) + r"[a-z0-9_]+(?![a-z0-9_])(?!\.(?:ya?ml|j2))", text))
    return found


@pytest.mark.parametrize("role", ROLES)
def test_role_reads_only_declared_outside_variables(role):
    declared = _declared(role)
    undeclared = {}
    for path in _code_files(role):
        for name in _outside_names(role, path.read_text()) - declared - NOT_VARIABLES.get(role, set()):
            undeclared.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not undeclared, (
        f"role {role} reads variables of other roles or the inventory that its meta/argument_specs.yml "
        f"does not declare: {undeclared}"
    )


@pytest.mark.parametrize("role", ROLES)
def test_role_runs_no_task_file_of_another_role(role):
    offenders = []
    for path in _code_files(role):
        for m in re.finditer(r"name:\s*sesacthon\.kubeadm_aws\.(\w+)", path.read_text()):
            if m.group(1) != role and "role" in path.read_text():
                offenders.append(f"{path.relative_to(ROOT)} -> {m.group(1)}")
    assert not offenders, f"role {role} runs other roles' tasks: {offenders}"


def test_the_checker_sees_an_undeclared_read():
    """The rule above is not vacuous: a template reading another role's fact is caught."""
    text = "{{ node_identity_node_name }} {{ kubeadm_aws_cluster_name }} {{ kubeadm_join_config_dir }}"
    assert _outside_names("kubeadm_join", text) == {"node_identity_node_name"}
    assert _outside_names("cni", "{{ hostvars[h].ec2_instance_id }}") == {"ec2_instance_id"}
    assert _outside_names("cni", "map('extract', hostvars, 'ec2_tags')") == {"ec2_tags"}
    assert _outside_names("node_identity", "sesacthon.kubeadm_aws.ec2_node_identity: x.cni_y") == set()
