"""Argo CD on the lab cluster: the argocd role (playbooks/argocd.yml) against a real cluster.

Needs the lab cluster (`make lab`); a missing cluster is a failure that names the command, never a
skip. The module runs playbooks/argocd.yml itself, with -v, the lab's variables (lab/lab-vars.yml)
and its own: a random admin password, an AppProject and a root Application. It then checks what a
user of the cluster would see: the Helm release deployed, the CRDs Established, the AppProject and
the root Application as specified, the password stored as a bcrypt hash that verifies and never
printed, a second run that changes nothing, and invalid settings refused before anything changes.

Where the lab registry holds Argo CD images (lab/build/argocd/build.sh), the role runs with
argocd_wait: true and the rollout is checked too; otherwise (or with ARGOCD_TEST_IMAGES=0) that one
test is skipped with the reason.

    .venv/bin/python -m pytest -v tests/cluster/test_argocd.py
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shlex
import subprocess
import urllib.request
from pathlib import Path

import pytest
from conftest import lab_vars_args

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = "playbooks/argocd.yml"
NAMESPACE = "argocd"
RELEASE = "argocd"
CRDS = ("applications.argoproj.io", "applicationsets.argoproj.io", "appprojects.argoproj.io")
ROOT_APP = "root"
PROJECT = "platform"
# A Git URL inside the lab (the mirror answers 404 for it): Argo CD's repo server tries it and reports
# the failure, and no lookup or connection leaves the lab.
REPO_URL = (
    f"http://{os.environ.get('LAB_GATEWAY', '10.213.0.1')}:{os.environ.get('LAB_MIRROR_PORT', '8080')}"
    "/git/kubeadm-aws-lab-apps.git"
)
APP_PATH = "clusters/lab"
FINALIZER = "resources-finalizer.argocd.argoproj.io"
# The lab's Argo CD images (lab/build/argocd/build.sh), served through the registry.k8s.io mirror.
ARGOCD_IMAGE_REPO = "lab/argocd"
REDIS_IMAGE_REPO = "lab/redis"


def _source(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["bash", "-c", f"set -a; . {shlex.quote(str(path))}; env -0"], check=True, capture_output=True, cwd=REPO
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def _registry_has(registry: str, repo: str, tag: str) -> bool:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        method="HEAD",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (lab registry)
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def lab_env() -> dict[str, str]:
    env = _source(REPO / "lab" / "lab.env")
    env.update(_source(REPO / "lab" / "versions.env"))
    return env


@pytest.fixture(scope="module")
def kubeconfig(lab_env) -> str:
    result = subprocess.run([str(REPO / "lab" / "lab.sh"), "kubeconfig"], capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        pytest.fail(f"no lab cluster ({result.stderr.strip()}): run 'make lab'")
    return result.stdout.strip()


@pytest.fixture(scope="module")
def api(kubeconfig):
    from kubernetes import client, config

    config.load_kube_config(config_file=kubeconfig)
    try:
        nodes = client.CoreV1Api().list_node(_request_timeout=15).items
    except Exception as err:  # noqa: BLE001 (any failure to reach the API is the same finding)
        pytest.fail(f"the lab cluster's API does not answer ({err}): run 'make lab'")
    assert nodes, "the lab cluster has no nodes: run 'make lab'"
    return client


@pytest.fixture(scope="module")
def images(lab_env) -> dict | None:
    """Lab Argo CD images, when lab/build/argocd/build.sh has put them in the registry.

    ARGOCD_TEST_IMAGES=0 runs without them (argocd_wait false) even when they exist.
    """
    if os.environ.get("ARGOCD_TEST_IMAGES", "auto") == "0":
        return None
    tag = lab_env.get("ARGOCD_VERSION", "v2.14.21")
    redis_tag = lab_env.get("REDIS_IMAGE_TAG", f"debian-{lab_env.get('DEBIAN_SUITE', 'bookworm')}")
    registry = lab_env["LAB_REGISTRY"]
    if _registry_has(registry, ARGOCD_IMAGE_REPO, tag) and _registry_has(registry, REDIS_IMAGE_REPO, redis_tag):
        return {"argocd": tag, "redis": redis_tag}
    return None


def _vars(lab_env, images, **extra) -> dict:
    gateway = lab_env["LAB_GATEWAY"]
    # No dex image in the lab. Without Argo CD images, the chart's pre-install hook (the job that
    # creates the redis password with the argocd image) could never finish: leave it out.
    values: dict = {"dex": {"enabled": False}, "redisSecretInit": {"enabled": bool(images)}}
    if images:
        # Always: a rebuilt lab image keeps its tag, and nodes must not run a stale copy.
        values["global"] = {
            "image": {
                "repository": f"registry.k8s.io/{ARGOCD_IMAGE_REPO}",
                "tag": images["argocd"],
                "imagePullPolicy": "Always",
            }
        }
        values["redis"] = {"image": {"repository": f"registry.k8s.io/{REDIS_IMAGE_REPO}", "tag": images["redis"]}}
    data = {
        # The lab's chart (never committed) and helm from the lab mirror.
        "argocd_chart_ref": lab_env["LAB_ARGOCD_CHART"],
        "argocd_helm_base_url": f"http://{gateway}:{lab_env['LAB_MIRROR_PORT']}/get.helm.sh",
        "argocd_helm_version": lab_env.get("HELM_VERSION", "v3.22.0"),
        "argocd_helm_install_dir": f"{lab_env['KUBEADM_AWS_CACHE']}/helm/{lab_env.get('HELM_VERSION', 'v3.22.0')}",
        "argocd_wait": bool(images),
        "argocd_wait_timeout": 900,
        "argocd_values": values,
        "argocd_project_enabled": True,
        "argocd_project_name": PROJECT,
        "argocd_root_app_enabled": True,
        "argocd_root_app_name": ROOT_APP,
        "argocd_root_app_repo_url": REPO_URL,
        "argocd_root_app_path": APP_PATH,
    }
    data.update(extra)
    return data


def run_playbook(lab_env, tmp_path: Path, variables: dict, name: str) -> subprocess.CompletedProcess:
    vars_file = tmp_path / f"{name}.json"
    vars_file.write_text(json.dumps(variables))
    vars_file.chmod(0o600)
    env = {
        **os.environ,
        **lab_env,
        "LAB_REPO_DIR": str(REPO),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_DEPRECATION_WARNINGS": "false",
        "ANSIBLE_NOCOLOR": "1",
    }
    cmd = [
        str(REPO / ".venv" / "bin" / "ansible-playbook"),
        "-v",
        "-i",
        "inventory/lab.aws_ec2.yml",
        PLAYBOOK,
        *lab_vars_args(),
        "-e",
        f"@{vars_file}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=1800)
    (tmp_path / f"{name}.log").write_text(result.stdout + result.stderr)
    return result


def recap_changed(output: str) -> int:
    return sum(int(n) for n in re.findall(r"\bchanged=(\d+)", output.split("PLAY RECAP", 1)[-1]))


@pytest.fixture(scope="module")
def password() -> str:
    return "Lab-" + secrets.token_urlsafe(18)


@pytest.fixture(scope="module")
def first_run(kubeconfig, lab_env, images, password, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("argocd")
    result = run_playbook(lab_env, tmp, _vars(lab_env, images, argocd_admin_password=password), "first")
    assert result.returncode == 0, f"playbook failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def second_run(first_run, lab_env, images, password, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("argocd-again")
    result = run_playbook(lab_env, tmp, _vars(lab_env, images, argocd_admin_password=password), "second")
    assert result.returncode == 0, f"second run failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result


def _secret(api, name: str):
    try:
        return api.CoreV1Api().read_namespaced_secret(name, NAMESPACE)
    except api.exceptions.ApiException as err:
        if err.status == 404:
            return None
        raise


def _custom(api, plural: str, name: str) -> dict:
    return api.CustomObjectsApi().get_namespaced_custom_object("argoproj.io", "v1alpha1", NAMESPACE, plural, name)


def test_release_deployed(api, first_run):
    secrets_ = api.CoreV1Api().list_namespaced_secret(NAMESPACE, label_selector=f"owner=helm,name={RELEASE}").items
    deployed = [s for s in secrets_ if s.metadata.labels.get("status") == "deployed"]
    assert len(deployed) == 1, f"helm release {RELEASE} is not deployed: {[s.metadata.labels for s in secrets_]}"
    assert deployed[0].metadata.name.startswith(f"sh.helm.release.v1.{RELEASE}.v")
    # The chart's objects exist: argocd-server and the application controller.
    assert api.AppsV1Api().read_namespaced_deployment("argocd-server", NAMESPACE)
    assert api.AppsV1Api().read_namespaced_stateful_set("argocd-application-controller", NAMESPACE)


def test_crds_established(api, first_run):
    ext = api.ApiextensionsV1Api()
    for name in CRDS:
        crd = ext.read_custom_resource_definition(name)
        conditions = {c.type: c.status for c in crd.status.conditions or []}
        assert conditions.get("Established") == "True", f"{name}: {conditions}"


def test_root_application(api, first_run):
    app = _custom(api, "applications", ROOT_APP)
    spec = app["spec"]
    assert spec["source"]["repoURL"] == REPO_URL
    assert spec["source"]["path"] == APP_PATH
    assert spec["source"]["targetRevision"] == "HEAD"
    assert spec["project"] == PROJECT
    assert spec["destination"] == {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE}
    assert spec["syncPolicy"]["automated"]["prune"] is True
    assert spec["syncPolicy"]["automated"]["selfHeal"] is True
    assert FINALIZER in app["metadata"].get("finalizers", [])


def test_app_project(api, first_run):
    project = _custom(api, "appprojects", PROJECT)
    assert project["spec"]["sourceRepos"] == [REPO_URL]
    assert {"server": "https://kubernetes.default.svc", "namespace": "*"} in project["spec"]["destinations"]
    assert FINALIZER in project["metadata"].get("finalizers", [])


def test_admin_password_stored_as_bcrypt_and_never_printed(api, first_run, password):
    secret = _secret(api, "argocd-secret")
    assert secret is not None and "admin.password" in (secret.data or {}), "argocd-secret has no admin.password"
    stored = base64.b64decode(secret.data["admin.password"]).decode()
    assert re.match(r"^\$2[aby]\$10\$", stored), "admin.password is not a bcrypt hash of cost 10"
    from passlib.hash import bcrypt

    assert bcrypt.verify(password, stored), "admin.password does not verify against the password given"
    assert not bcrypt.verify(password + "x", stored)
    assert "admin.passwordMtime" in secret.data
    assert _secret(api, "argocd-initial-admin-secret") is None, "the generated initial password was kept"
    output = first_run.stdout + first_run.stderr
    assert password not in output, "the admin password appears in the ansible-playbook -v output"
    assert stored not in output, "the admin password hash appears in the ansible-playbook -v output"


def test_second_run_changes_nothing(api, second_run, password):
    assert recap_changed(second_run.stdout) == 0, second_run.stdout[-4000:]
    assert password not in second_run.stdout + second_run.stderr
    deployed = (
        api.CoreV1Api()
        .list_namespaced_secret(NAMESPACE, label_selector=f"owner=helm,name={RELEASE},status=deployed")
        .items
    )
    assert len(deployed) == 1


def test_rollout(api, first_run, images):
    if not images:
        pytest.skip(
            "no Argo CD images in the lab registry (lab/build/argocd/build.sh): the role ran with argocd_wait false"
        )
    apps = api.AppsV1Api()
    for deploy in apps.list_namespaced_deployment(NAMESPACE).items:
        assert (deploy.status.ready_replicas or 0) == deploy.spec.replicas, f"{deploy.metadata.name} not ready"
    for sts in apps.list_namespaced_stateful_set(NAMESPACE).items:
        assert (sts.status.ready_replicas or 0) == sts.spec.replicas, f"{sts.metadata.name} not ready"
    # Argo CD itself processed the root Application (its Git repository does not exist: the
    # controller records the comparison and its error, which proves it reconciled the object).
    app = _custom(api, "applications", ROOT_APP)
    assert app.get("status", {}).get("reconciledAt") or app.get("status", {}).get("conditions"), app.get("status")


def test_invalid_settings_are_refused(api, second_run, lab_env, images, password, tmp_path):
    before = _custom(api, "applications", ROOT_APP)["metadata"]["resourceVersion"]
    result = run_playbook(
        lab_env, tmp_path, _vars(lab_env, images, argocd_admin_password=password, argocd_root_app_repo_url=""), "bad"
    )
    assert result.returncode != 0
    assert "argocd_root_app_repo_url" in result.stdout
    assert recap_changed(result.stdout) == 0
    assert _custom(api, "applications", ROOT_APP)["metadata"]["resourceVersion"] == before


def test_password_change_is_applied(api, second_run, lab_env, images, tmp_path):
    new = "Lab-" + secrets.token_urlsafe(18)
    result = run_playbook(lab_env, tmp_path, _vars(lab_env, images, argocd_admin_password=new), "change")
    assert result.returncode == 0, result.stdout[-4000:]
    assert new not in result.stdout + result.stderr
    from passlib.hash import bcrypt

    stored = base64.b64decode(_secret(api, "argocd-secret").data["admin.password"]).decode()
    assert bcrypt.verify(new, stored)
