"""What a user checks on a node after kube_packages (molecule's testinfra verifier)."""

import os
import sys
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from nodetest import output, run_role  # noqa: E402

NODE = "molecule-kube-packages"
PRISTINE = "molecule-kube-packages-pristine"
KUBE = os.environ.get("KUBE_VERSION", "v1.36.3").lstrip("v")
MINOR = ".".join(KUBE.split(".")[:2])
MIRROR = os.environ.get("LAB_MIRROR_URL", "http://10.213.0.1:8080")
PACKAGES = ["kubeadm", "kubelet", "kubectl"]


def test_kubeadm_version_is_the_pin(host):
    assert host.check_output("kubeadm version -o short").strip() == f"v{KUBE}"


def test_kubelet_and_kubectl_versions(host):
    assert host.check_output("kubelet --version").strip() == f"Kubernetes v{KUBE}"
    assert f"v{KUBE}" in host.check_output("kubectl version --client")


@pytest.mark.parametrize("pkg", PACKAGES)
def test_package_pinned_to_the_exact_patch(host, pkg):
    p = host.package(pkg)
    assert p.is_installed and p.version.startswith(f"{KUBE}-")


def test_packages_are_held(host):
    held = host.check_output("apt-mark showhold").split()
    assert sorted(set(PACKAGES) & set(held)) == sorted(PACKAGES)


def test_deb822_source_with_signed_by(host):
    text = host.file("/etc/apt/sources.list.d/kubernetes.sources").content_string
    assert f"URIs: {MIRROR}/pkgs.k8s.io/core:/stable:/v{MINOR}/deb/" in text
    assert "Suites: /" in text
    assert "Signed-By:" in text
    # apt trusts the repository through that key only: the index is signed and verifies.
    res = host.run("apt-get update")
    assert res.rc == 0, res.stderr
    assert "pkgs.k8s.io" in res.stdout
    for bad in ("NO_PUBKEY", "not signed", "EXPKEYSIG", "is not signed", "Err:"):
        assert bad not in res.stdout + res.stderr, res.stdout + res.stderr


def test_kubelet_enabled(host):
    assert host.service("kubelet").is_enabled


def test_apt_upgrade_leaves_them_alone(host):
    sim = host.check_output("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    for pkg in PACKAGES:
        assert f"Inst {pkg} " not in sim


def test_rerun_with_another_version_fails_and_changes_nothing(host):
    res = run_role(NODE, "kube_packages", {"kube_packages_version": f"{MINOR}.0"})
    assert res.returncode != 0
    out = output(res)
    assert "kube_packages_allow_upgrade" in out and f"kubeadm={KUBE}-" in out, out
    assert host.check_output("kubeadm version -o short").strip() == f"v{KUBE}"


def test_rerun_with_the_same_version_changes_nothing(host):
    res = run_role(NODE, "kube_packages")
    assert res.returncode == 0 and "changed=0" in output(res), output(res)


# --- bad input on the pristine node --------------------------------------------------------------

@pytest.fixture(scope="module")
def pristine():
    return testinfra.get_host(f"docker://{PRISTINE}")


@pytest.mark.parametrize("extra, message", [
    ({"kube_packages_version": "1.36"}, "kube_packages_version must be an exact Kubernetes patch version"),
    ({"kube_packages_version": "latest"}, "kube_packages_version must be an exact Kubernetes patch version"),
    ({"kube_packages_deb_revision": "1 1"}, "kube_packages_deb_revision must be a Debian revision"),
    ({"ansible_os_family": "RedHat", "ansible_distribution": "Rocky"},
     "kube_packages installs Debian packages and supports Debian and Ubuntu only"),
], ids=["minor-only", "latest", "bad-revision", "redhat-family"])
def test_bad_input_fails_early(pristine, extra, message):
    res = run_role(PRISTINE, "kube_packages", extra)
    assert res.returncode != 0
    assert message in output(res), output(res)
    assert not pristine.file("/etc/apt/sources.list.d/kubernetes.sources").exists
    assert not pristine.package("kubeadm").is_installed


def test_container_runtime_rerun_after_the_packages_changes_nothing(host):
    """cri-tools and kubernetes-cni (kubeadm's dependencies) must not fight container_runtime."""
    res = run_role(NODE, "container_runtime")
    assert res.returncode == 0 and "changed=0" in output(res), output(res)


# Last: it moves the converged node to another version.
UPGRADE = os.environ.get("KUBE_UPGRADE_VERSION", "1.37.2").lstrip("v")
UPGRADE_MINOR = ".".join(UPGRADE.split(".")[:2])


def test_upgrade_only_when_allowed(host):
    """kube_packages_allow_upgrade=true moves the held packages (and the repository) to the new version."""
    release = f"{MIRROR}/pkgs.k8s.io/core:/stable:/v{UPGRADE_MINOR}/deb/Release"
    if host.run(f"curl -sf -o /dev/null {release}").rc != 0:
        pytest.skip(f"the lab mirror has no v{UPGRADE_MINOR} repository (KUBE_VERSIONS=... make lab-artifacts)")
    res = run_role(NODE, "kube_packages", {"kube_packages_version": UPGRADE, "kube_packages_allow_upgrade": True})
    assert res.returncode == 0, output(res)
    assert host.check_output("kubeadm version -o short").strip() == f"v{UPGRADE}"
    assert host.check_output("kubelet --version").strip() == f"Kubernetes v{UPGRADE}"
    assert sorted(set(PACKAGES) & set(host.check_output("apt-mark showhold").split())) == sorted(PACKAGES)
    assert f"core:/stable:/v{UPGRADE_MINOR}/deb/" in host.file("/etc/apt/sources.list.d/kubernetes.sources").content_string
    again = run_role(NODE, "kube_packages", {"kube_packages_version": UPGRADE})
    assert again.returncode == 0 and "changed=0" in output(again), output(again)
