"""What a user checks on a node after container_runtime (molecule's testinfra verifier).

The converged node is molecule-container-runtime. The bad-input tests and the distro-source test
run the role with ansible-playbook against molecule-container-runtime-pristine, which the
converge step never touched.
"""

import json
import os
import sys
import uuid
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from nodetest import output, run_role  # noqa: E402

NODE = "molecule-container-runtime"
PRISTINE = "molecule-container-runtime-pristine"
V = lambda name, default: os.environ.get(name, default).lstrip("v")  # noqa: E731
CONTAINERD = V("CONTAINERD_VERSION", "2.4.2")
RUNC = V("RUNC_VERSION", "1.5.2")
CRICTL = V("CRICTL_VERSION", "1.37.0")
# The pause tag kubeadm of the lab's Kubernetes version deploys (measured by the lab build).
PAUSE = os.environ.get("PAUSE_VERSION", "3.10.2")
REGISTRY = os.environ.get("LAB_REGISTRY", "10.213.0.1:5000")
PAUSE_IMAGE = f"registry.k8s.io/pause:{PAUSE}"
INSTALLED_PATHS = ["/usr/local/bin/containerd", "/usr/local/sbin/runc", "/usr/local/bin/crictl",
                   "/etc/containerd/config.toml", "/etc/systemd/system/containerd.service", "/etc/crictl.yaml",
                   "/opt/cni/bin/bridge"]


def _find(obj, key):
    """Every value of `key` anywhere in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                yield v
            yield from _find(v, key)
    elif isinstance(obj, list):
        for v in obj:
            yield from _find(v, key)


def cri_info(host):
    return json.loads(host.check_output("crictl info"))


def conditions(info):
    return {c["type"]: c["status"] for c in info["status"]["conditions"]}


def test_containerd_service(host):
    svc = host.service("containerd")
    assert svc.is_enabled and svc.is_running


def test_versions(host):
    assert CONTAINERD in host.check_output("/usr/local/bin/containerd --version")
    assert f"runc version {RUNC}" in host.check_output("runc --version")
    assert CRICTL in host.check_output("crictl --version")


def test_cri_runtime_ready_with_systemd_cgroup(host):
    info = cri_info(host)
    assert conditions(info)["RuntimeReady"] is True
    assert list(_find(info, "SystemdCgroup")) == [True]


def test_config_rendered(host):
    cfg = host.file("/etc/containerd/config.toml")
    assert cfg.mode == 0o644
    text = cfg.content_string
    assert "version = 3" in text  # containerd 2.x format
    assert "SystemdCgroup = true" in text
    assert f'sandbox = "{PAUSE_IMAGE}"' in text
    assert 'config_path = "/etc/containerd/certs.d"' in text


def test_registry_mirror_hosts_toml(host):
    text = host.file("/etc/containerd/certs.d/registry.k8s.io/hosts.toml").content_string
    assert 'server = "https://registry.k8s.io"' in text
    assert f'[host."http://{REGISTRY}"]' in text
    assert 'capabilities = ["pull", "resolve"]' in text


def test_crictl_config(host):
    text = host.file("/etc/crictl.yaml").content_string
    assert "runtime-endpoint: unix:///run/containerd/containerd.sock" in text


@pytest.mark.parametrize("plugin", ["bridge", "host-local", "loopback", "portmap"])
def test_cni_plugins(host, plugin):
    f = host.file(f"/opt/cni/bin/{plugin}")
    assert f.is_file and f.mode & 0o111


def test_pull_through_the_mirror(host):
    """registry.k8s.io is unreachable here: a pull succeeds only through the configured mirror."""
    host.run(f"crictl rmi {PAUSE_IMAGE}")
    host.check_output(f"crictl pull {PAUSE_IMAGE}")
    assert PAUSE_IMAGE.split(":")[0] in host.check_output("crictl images")


def test_pod_sandbox_runs_in_a_systemd_scope(host):
    """A CRI pod sandbox (the pinned pause image, runc, systemd cgroups) starts and runs."""
    uid = uuid.uuid4().hex[:8]
    pod = {"metadata": {"name": f"molecule-{uid}", "namespace": "default", "uid": uid, "attempt": 0},
           "log_directory": f"/tmp/molecule-{uid}",
           "linux": {"cgroup_parent": "molecule.slice",
                     "security_context": {"namespace_options": {"network": 2}}}}  # host network: no CNI needed
    host.run_expect([0], f"echo '{json.dumps(pod)}' > /tmp/pod-{uid}.json")
    pod_id = host.check_output(f"crictl runp /tmp/pod-{uid}.json").strip()
    try:
        state = json.loads(host.check_output(f"crictl inspectp {pod_id}"))["status"]["state"]
        assert state == "SANDBOX_READY"
        scopes = host.check_output("systemctl list-units --type=scope --all --plain --no-legend")
        assert f"cri-containerd-{pod_id}.scope" in scopes
    finally:
        host.run(f"crictl stopp {pod_id}; crictl rmp {pod_id}")


def _containerd_pid(host):
    return host.check_output("systemctl show -p MainPID --value containerd").strip()


def test_drifted_files_are_put_back(host):
    """A re-run undoes drift: an edited config.toml (containerd restarted for it), a changed mode, a
    deleted hosts.toml (3 files + the restart: changed=4); then changes nothing."""
    hosts_toml = "/etc/containerd/certs.d/registry.k8s.io/hosts.toml"
    pid = _containerd_pid(host)
    host.run_expect([0], "echo '# drift' >> /etc/containerd/config.toml && chmod 0600 /etc/crictl.yaml"
                         f" && rm {hosts_toml}")
    res = run_role(NODE, "container_runtime")
    assert res.returncode == 0 and "changed=4" in output(res), output(res)
    assert "# drift" not in host.file("/etc/containerd/config.toml").content_string
    assert host.file("/etc/crictl.yaml").mode == 0o644
    assert f'[host."http://{REGISTRY}"]' in host.file(hosts_toml).content_string
    assert _containerd_pid(host) != pid, "containerd was not restarted for its changed configuration"
    assert conditions(cri_info(host))["RuntimeReady"] is True
    again = run_role(NODE, "container_runtime")
    assert again.returncode == 0 and "changed=0" in output(again), output(again)


def test_missing_binaries_are_installed_again(host):
    """The archives are skipped only while what they installed is in place: a deleted runc and a
    deleted core CNI plugin are installed again from the verified archives (2 changes)."""
    host.run_expect([0], "rm /usr/local/sbin/runc /opt/cni/bin/portmap")
    res = run_role(NODE, "container_runtime")
    assert res.returncode == 0 and "changed=2" in output(res), output(res)
    assert f"runc version {RUNC}" in host.check_output("/usr/local/sbin/runc --version")
    assert host.file("/opt/cni/bin/portmap").is_file
    again = run_role(NODE, "container_runtime")
    assert again.returncode == 0 and "changed=0" in output(again), output(again)


# --- bad input on the pristine node: clear message, nothing installed ----------------------------

@pytest.fixture(scope="module")
def pristine():
    return testinfra.get_host(f"docker://{PRISTINE}")


def assert_untouched(pristine):
    present = [p for p in INSTALLED_PATHS if pristine.file(p).exists]
    assert present == [], f"the failed run installed {present}"


@pytest.mark.parametrize("extra, message", [
    ({"container_runtime_source": "podman"}, "container_runtime_source"),
    ({"container_runtime_containerd_version": "2.4"},
     "container_runtime_containerd_version must be a version like 1.2.3"),
    ({"container_runtime_runc_version": "latest"}, "container_runtime_runc_version must be a version like 1.2.3"),
    ({"container_runtime_crictl_checksum": "md5:abc"}, "container_runtime_crictl_checksum must be empty or 'sha256:'"),
    ({"kubeadm_aws_kubernetes_version": "1.99.0"}, "No pause image tag is known for Kubernetes 1.99"),
], ids=["unknown-source", "malformed-containerd-version", "malformed-runc-version", "malformed-checksum",
        "unknown-kubernetes-minor"])
def test_bad_input_fails_early(pristine, extra, message):
    res = run_role(PRISTINE, "container_runtime", extra)
    assert res.returncode != 0
    assert message in output(res), output(res)
    assert_untouched(pristine)


def test_unknown_source_names_the_choices(pristine):
    res = run_role(PRISTINE, "container_runtime", {"container_runtime_source": "podman"})
    assert res.returncode != 0
    out = output(res)
    assert "container_runtime_source" in out and "release" in out and "distro" in out and "docker" in out


def test_wrong_checksum_installs_nothing(pristine):
    res = run_role(PRISTINE, "container_runtime", {"container_runtime_containerd_checksum": "sha256:" + "0" * 64})
    assert res.returncode != 0
    out = output(res)
    assert "Release archive download or verification failed, nothing was installed" in out, out
    assert "container_runtime_containerd_checksum" in out and "did not match" in out
    assert_untouched(pristine)


# --- the distro source: Debian's containerd 1.6, config format 2 --------------------------------

def test_distro_source_uses_the_v2_format(pristine):
    res = run_role(PRISTINE, "container_runtime", {"container_runtime_source": "distro"})
    assert res.returncode == 0, output(res)
    version = pristine.check_output("/usr/bin/containerd --version")
    text = pristine.file("/etc/containerd/config.toml").content_string
    assert " 1." in version or " v1." in version, version  # Debian ships containerd 1.6 (bookworm) / 1.7 (trixie)
    assert "version = 2" in text and 'plugins."io.containerd.grpc.v1.cri"' in text
    assert f'sandbox_image = "{PAUSE_IMAGE}"' in text
    info = cri_info(pristine)
    assert conditions(info)["RuntimeReady"] is True
    assert True in list(_find(info, "SystemdCgroup"))
    pristine.run(f"crictl rmi {PAUSE_IMAGE}")
    pristine.check_output(f"crictl pull {PAUSE_IMAGE}")
    again = run_role(PRISTINE, "container_runtime", {"container_runtime_source": "distro"})
    assert again.returncode == 0 and "changed=0" in output(again), output(again)
