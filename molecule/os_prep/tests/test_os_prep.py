"""What a user checks on a node after os_prep (run by molecule's testinfra verifier)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from nodetest import output, run_role  # noqa: E402

NODE = "molecule-os-prep"


def test_modules_persisted(host):
    f = host.file("/etc/modules-load.d/kubernetes.conf")
    assert f.exists and f.user == "root" and f.mode == 0o644
    lines = [ln for ln in f.content_string.splitlines() if ln and not ln.startswith("#")]
    assert lines == ["overlay", "br_netfilter"]


def test_modules_active(host):
    # Built into the lab kernel (module loading is disabled): what they provide must be there.
    assert host.file("/sys/module/overlay").exists or "overlay" in host.file("/proc/filesystems").content_string
    assert host.file("/proc/sys/net/bridge/bridge-nf-call-iptables").exists


@pytest.mark.parametrize("name", ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
                                  "net.bridge.bridge-nf-call-ip6tables"])
def test_sysctl_applied_and_persisted(host, name):
    assert host.sysctl(name) == 1
    assert f"{name}=1" in host.file("/etc/sysctl.d/99-kubernetes.conf").content_string.replace(" ", "")


@pytest.mark.parametrize("path", ["/etc/cni/net.d", "/opt/cni/bin"])
def test_cni_directories(host, path):
    d = host.file(path)
    assert d.is_directory and d.mode == 0o755


@pytest.mark.parametrize("pkg", ["conntrack", "socat", "iptables", "ethtool", "ebtables", "ca-certificates", "curl",
                                 "gnupg"])
def test_packages(host, pkg):
    assert host.package(pkg).is_installed


def test_swap_left_alone_in_a_container(host):
    """Inside a container the role must not call swapoff (it would act on the host's kernel)."""
    before = host.file("/etc/fstab").content_string
    res = run_role(NODE, "os_prep", tasks_from="swap")
    assert res.returncode == 0, output(res)
    assert "Swap left untouched" in output(res)
    assert host.file("/etc/fstab").content_string == before


def test_swap_disabled_persistently_on_a_machine(host):
    """The machine code path: fstab swap entries commented out, swap units masked.

    Forced with os_prep_in_container=false. swapoff itself runs only when /proc/swaps lists a
    swap area; /proc/swaps is the host's, so the test refuses to run when the host has swap.
    """
    if len(host.file("/proc/swaps").content_string.strip().splitlines()) > 1:
        pytest.skip("the host has active swap: forcing the machine path would turn it off")
    unit = "/usr/lib/systemd/system/swapfile.swap"
    host.run_expect([0], "cp /etc/fstab /etc/fstab.molecule")
    try:
        # systemd's fstab generator ignores swap entries inside containers, so the swap unit a
        # machine would get from the fstab line is installed as a vendor unit file instead.
        host.run_expect([0], "echo '/swapfile none swap sw 0 0' >> /etc/fstab")
        host.run_expect([0], f"printf '[Swap]\\nWhat=/swapfile\\n' > {unit} && systemctl daemon-reload")
        assert "swapfile.swap" in host.run("systemctl list-unit-files --type=swap --no-legend").stdout
        res = run_role(NODE, "os_prep", {"os_prep_in_container": False}, tasks_from="swap")
        assert res.returncode == 0, output(res)
        fstab = host.file("/etc/fstab").content_string
        assert "\n/swapfile none swap" not in "\n" + fstab
        assert "# disabled for kubeadm by sesacthon.kubeadm_aws.os_prep: /swapfile none swap sw 0 0" in fstab
        assert host.run("systemctl is-enabled swapfile.swap").stdout.strip() == "masked"
        again = run_role(NODE, "os_prep", {"os_prep_in_container": False}, tasks_from="swap")
        assert again.returncode == 0 and "changed=0" in output(again), output(again)
    finally:
        host.run(f"systemctl unmask swapfile.swap; rm -f {unit}; mv /etc/fstab.molecule /etc/fstab; systemctl daemon-reload")


def test_unsupported_sysctl_value_fails_early(host):
    res = run_role(NODE, "os_prep", {"os_prep_sysctls": {"net.ipv4.ip_forward": ""}})
    assert res.returncode != 0
    assert "os_prep_sysctls must map each kernel parameter" in output(res)


def test_drift_is_put_back(host):
    """A re-run undoes drift: an edited modules-load.d file, a CNI directory with another mode and
    a kernel parameter set back by hand (3 changes); then it changes nothing."""
    host.run_expect([0], "echo '# drift' >> /etc/modules-load.d/kubernetes.conf && chmod 0700 /etc/cni/net.d"
                         " && sysctl -w net.ipv4.ip_forward=0")
    res = run_role(NODE, "os_prep")
    assert res.returncode == 0 and "changed=3" in output(res), output(res)
    assert "# drift" not in host.file("/etc/modules-load.d/kubernetes.conf").content_string
    assert host.file("/etc/cni/net.d").mode == 0o755
    assert host.sysctl("net.ipv4.ip_forward") == 1
    again = run_role(NODE, "os_prep")
    assert again.returncode == 0 and "changed=0" in output(again), output(again)
