"""The execution environment definition produces a build context that installs this collection
without Galaxy: `ansible-builder create` (what `awx/ee/build-context.sh` runs) and the galaxy step of
the generated Containerfile, replayed on this machine. Building the image itself needs the base image
from a registry and is not done here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from awxutil import REPO, VENV_BIN, galaxy_install_from_context  # noqa: E402
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())


def _requirements(path: Path) -> dict[str, str]:
    """name -> specifier of a pip requirements file (comments and extras dropped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", line)
        assert m, f"{path.name}: cannot parse {line!r}"
        out[m.group(1).lower()] = m.group(3).replace(" ", "")
    return out


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    ctx = tmp_path_factory.mktemp("ee") / "context"
    res = subprocess.run(
        [str(REPO / "awx" / "ee" / "build-context.sh"), str(ctx)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1] == str(ctx)
    return ctx


def test_context_has_a_containerfile_and_the_requirements(context):
    containerfile = (context / "Containerfile").read_text()
    build = context / "_build"
    for name in ("requirements.txt", "requirements.yml", "bindep.txt", "scripts/introspect.py", "scripts/assemble"):
        assert (build / name).is_file(), f"_build/{name} is missing"
    # Python 3.11+ (ansible-core 2.19) and the pinned core/runner.
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert "ansible-core>=2.19.0,<2.20.0" in containerfile and "ansible-runner>=2.4.0,<3.0.0" in containerfile
    # The galaxy step installs from the context only: no dependency resolution against Galaxy.
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--no-deps"' in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    # The image proves it holds the collection and helm.
    assert "ansible-galaxy collection list sesacthon.kubeadm_aws" in containerfile
    assert "sha256sum -c" in containerfile, "helm must be checked against its checksum"


def test_context_names_the_collection_tarball(context):
    reqs = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    names = [c["name"] for c in reqs["collections"]]
    assert names == ["collections/sesacthon-kubeadm_aws.tar.gz"], names
    tarball = context / "_build" / "collections" / "sesacthon-kubeadm_aws.tar.gz"
    assert tarball.is_file()
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        members = set(tar.getnames())
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("sesacthon", "kubeadm_aws", GALAXY["version"])
    for must in (
        "playbooks/join_workers.yml",
        "playbooks/site.yml",
        "inventory/aws_ec2.yml",
        "roles/kubeadm_join/meta/argument_specs.yml",
        "plugins/modules/ssm_join_material.py",
        "meta/execution-environment.yml",
        "meta/ee-requirements.txt",
    ):
        assert must in members, f"{must} is not in the collection tarball"
    # Built from what git knows: no local caches or state.
    junk = [m for m in members if re.search(r"(^|/)(\.pytest_cache|__pycache__|\.ansible|\.venv)(/|$)", m)]
    assert not junk, junk[:5]


def test_python_requirements_are_the_runtime_ones(context):
    ee = _requirements(context / "_build" / "requirements.txt")
    controller = _requirements(REPO / "requirements.txt")
    for pkg in ("boto3", "botocore", "kubernetes", "ansible"):
        assert pkg in ee, f"{pkg} is missing from the EE's Python requirements"
    # Same ranges as the controller's (tested) ones: the EE must not drift from what the tests run.
    for pkg, spec in ee.items():
        assert pkg in controller, f"{pkg} is not in requirements.txt"
        assert spec == controller[pkg], f"{pkg}: EE wants {spec!r}, requirements.txt {controller[pkg]!r}"
    # No test or lint tooling in the image.
    for tool in ("moto", "pytest", "molecule", "ansible-lint", "yamllint"):
        assert tool not in ee, f"{tool} does not belong in the execution environment"
    bindep = (context / "_build" / "bindep.txt").read_text()
    assert re.search(r"^openssh-clients \[platform:rpm\]", bindep, re.M)


def test_galaxy_step_installs_the_collection_offline(context, tmp_path):
    """Replay the Containerfile's galaxy step (same command, same working directory layout) into a
    scratch collections path, then load the installed collection the way a job in the EE does."""
    dest = tmp_path / "collections"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env.update(
        {
            "ANSIBLE_GALAXY_DISABLE_GPG_VERIFY": "1",
            "ANSIBLE_CONFIG": str(cfg),
            # No server can answer: a dependency lookup would fail instead of passing silently.
            "ANSIBLE_GALAXY_SERVER": "http://127.0.0.1:9/",
        }
    )
    res = galaxy_install_from_context(context / "_build", dest, env)
    assert res.returncode == 0, res.stdout + res.stderr
    installed = dest / "ansible_collections" / "sesacthon" / "kubeadm_aws"
    assert json.loads((installed / "MANIFEST.json").read_text())["collection_info"]["version"] == GALAXY["version"]
    env["ANSIBLE_COLLECTIONS_PATH"] = str(dest)
    doc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-j", "sesacthon.kubeadm_aws.ssm_join_material"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert doc.returncode == 0, doc.stderr
    assert "sesacthon.kubeadm_aws.ssm_join_material" in json.loads(doc.stdout)
    roles = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-t", "role", "-l", "sesacthon.kubeadm_aws"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert roles.returncode == 0, roles.stderr
    for role in ("kubeadm_join", "join_material", "node_identity", "node_labels"):
        assert f"sesacthon.kubeadm_aws.{role}" in roles.stdout, roles.stdout


def test_introspection_reads_the_collection_runtime_requirements(context, tmp_path):
    """The builder stage's introspection (the context's own introspect.py) over the installed
    collection: it must take meta/execution-environment.yml (runtime requirements), not the root
    requirements.txt with the controller's test tools."""
    dest = tmp_path / "collections"
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_GALAXY_DISABLE_GPG_VERIFY": "1"})
    build = context / "_build"
    res = galaxy_install_from_context(build, dest, env)
    assert res.returncode == 0, res.stdout + res.stderr
    pip_out, bindep_out = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    res = subprocess.run(
        [
            str(VENV_BIN / "python"),
            str(build / "scripts" / "introspect.py"),
            "introspect",
            "--user-pip=requirements.txt",
            "--user-bindep=bindep.txt",
            f"--write-pip={pip_out}",
            f"--write-bindep={bindep_out}",
            str(dest),
        ],
        cwd=build,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    pip_lines = pip_out.read_text().splitlines()
    from_collection = [line for line in pip_lines if line.endswith("from collection sesacthon.kubeadm_aws")]
    assert any(line.startswith("boto3") for line in from_collection), pip_lines
    assert any(line.startswith("kubernetes") for line in from_collection), pip_lines
    for tool in ("moto", "pytest", "molecule", "ansible-lint"):
        assert not any(line.startswith(tool) for line in pip_lines), f"{tool} would be installed: {pip_lines}"
    assert any(line.startswith("ansible>=") for line in pip_lines), "the dependency collections come from `ansible`"
    assert "openssh-clients [platform:rpm]" in bindep_out.read_text()
