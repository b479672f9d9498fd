"""node_info: the versions a node's runtime binaries report and the version stamps a role wrote.

The binaries are small shell scripts in tmp_path that print what the real ones print (test inputs);
the module's own functions and the module itself (run the way Ansible runs it) are exercised as they are.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE_PATH = REPO / "plugins" / "modules" / "node_info.py"

_spec = importlib.util.spec_from_file_location("node_info", MODULE_PATH)
node_info = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(node_info)


def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


def fake_binary(tmp_path, name, stdout="", stderr="", rc=0, mode=0o755):
    path = tmp_path / name
    path.write_text("#!/bin/sh\nprintf '%%s' '%s'\nprintf '%%s' '%s' >&2\nexit %d\n" % (stdout, stderr, rc))
    path.chmod(mode)
    return str(path)


def run_module(args, check=False, tmp_path=None):
    """Run the module file with an ANSIBLE_MODULE_ARGS file, as Ansible does; returns (rc, result)."""
    full = dict(args, _ansible_check_mode=check)
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": full}))
    p = subprocess.run([sys.executable, str(MODULE_PATH), str(args_file)], capture_output=True, text=True,
                       check=False, timeout=60)
    out = p.stdout.strip()
    return p.returncode, json.loads(out[out.find("{"):])


# --- versions of the known binaries --------------------------------------------------------------

@pytest.mark.parametrize("name, stdout, version", [
    ("containerd", "containerd github.com/containerd/containerd/v2 v2.4.2 0123456789abcdef\n", "2.4.2"),
    ("containerd", "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n", "1.6.20"),
    ("containerd", "containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da\n", "1.7.27"),
    ("containerd", "containerd github.com/containerd/containerd/v2 v2.5.0-rc.1 abc\n", "2.5.0-rc.1"),
    ("runc", "runc version 1.5.2\ncommit: v1.5.2-0-gabc\nspec: 1.2.1\ngo: go1.26.1\nlibseccomp: 2.5.4\n", "1.5.2"),
    ("runc", "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1\nspec: 1.0.2-dev\n", "1.1.5"),
    ("crictl", "crictl version v1.37.0\n", "1.37.0"),
], ids=["containerd-release", "containerd-debian", "containerd-docker", "containerd-rc", "runc-release",
        "runc-debian", "crictl"])
def test_version_of_a_known_binary(tmp_path, name, stdout, version):
    path = fake_binary(tmp_path, name, stdout=stdout)
    got = node_info.binary_version(run, path, node_info.compile_pattern(name))
    assert got == {"path": path, "present": True, "version": version}


def test_version_printed_on_stderr(tmp_path):
    path = fake_binary(tmp_path, "crictl", stderr="crictl version v1.37.0\n")
    assert node_info.binary_version(run, path, node_info.compile_pattern("crictl"))["version"] == "1.37.0"


def test_the_pattern_is_anchored_to_the_binary_s_own_line(tmp_path):
    """A version elsewhere in the output (runc's spec line) is not taken for the binary's."""
    path = fake_binary(tmp_path, "runc", stdout="spec: 1.2.1\ngo: go1.26.1\n")
    assert node_info.binary_version(run, path, node_info.compile_pattern("runc"))["version"] is None


def test_missing_binary(tmp_path):
    path = str(tmp_path / "containerd")
    got = node_info.binary_version(run, path, node_info.compile_pattern("containerd"))
    assert got == {"path": path, "present": False, "version": None}


def test_a_file_that_is_not_executable_is_not_present(tmp_path):
    path = fake_binary(tmp_path, "crictl", stdout="crictl version v1.37.0\n", mode=0o644)
    assert node_info.binary_version(run, path, node_info.compile_pattern("crictl"))["present"] is False


def test_a_failing_binary_has_no_version(tmp_path):
    path = fake_binary(tmp_path, "containerd", stdout="containerd github.com/containerd/containerd/v2 v2.4.2 x\n", rc=1)
    got = node_info.binary_version(run, path, node_info.compile_pattern("containerd"))
    assert got == {"path": path, "present": True, "version": None}


def test_unrecognised_output_has_no_version(tmp_path):
    path = fake_binary(tmp_path, "containerd", stdout="Segmentation fault\n")
    assert node_info.binary_version(run, path, node_info.compile_pattern("containerd"))["version"] is None


def test_own_pattern_for_another_binary(tmp_path):
    path = fake_binary(tmp_path, "helm", stdout='version.BuildInfo{Version:"v3.22.0", GitCommit:"abc"}\n')
    pattern = node_info.compile_pattern("helm", r'Version:"(v?[0-9.]+)"')
    assert node_info.binary_version(run, path, pattern)["version"] == "3.22.0"


@pytest.mark.parametrize("name, pattern, message", [
    ("helm", None, "no version pattern is built in for 'helm'"),
    ("helm", "Version", "has no group to capture the version"),
    ("helm", "Version:(", "not a valid regular expression"),
])
def test_bad_patterns_are_refused(name, pattern, message):
    with pytest.raises(node_info.NodeInfoError, match=message):
        node_info.compile_pattern(name, pattern)


# --- version stamps -------------------------------------------------------------------------------

def test_stamp_with_its_required_files(tmp_path):
    (tmp_path / ".stamp").write_text("v1.10.0\n")
    (tmp_path / "bridge").write_text("")
    got = node_info.read_stamp(str(tmp_path / ".stamp"), [str(tmp_path / "bridge")])
    assert got == {"path": str(tmp_path / ".stamp"), "version": "1.10.0", "missing": []}


def test_stamp_does_not_count_when_a_required_file_is_missing(tmp_path):
    (tmp_path / ".stamp").write_text("1.10.0\n")
    (tmp_path / "bridge").write_text("")
    got = node_info.read_stamp(str(tmp_path / ".stamp"), [str(tmp_path / "bridge"), str(tmp_path / "portmap")])
    assert got["version"] is None and got["missing"] == [str(tmp_path / "portmap")]


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["no-stamp", "empty", "blank-line"])
def test_no_version_without_a_stamp(tmp_path, content):
    if content is not None:
        (tmp_path / ".stamp").write_text(content)
    assert node_info.read_stamp(str(tmp_path / ".stamp"))["version"] is None


# --- the module as Ansible runs it ----------------------------------------------------------------

def test_module_reports_every_binary_and_stamp_and_changes_nothing(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    containerd = fake_binary(bin_dir, "containerd", stdout="containerd github.com/containerd/containerd/v2 v2.4.2 x\n")
    (tmp_path / ".stamp").write_text("1.10.0\n")
    args = {
        "binaries": [{"name": "containerd", "path": containerd},
                     {"name": "runc", "path": str(bin_dir / "runc")}],
        "version_stamps": [{"name": "cni_plugins", "path": str(tmp_path / ".stamp"),
                            "requires": [str(tmp_path / ".stamp")]}],
    }
    for check in (False, True):
        rc, result = run_module(args, check=check, tmp_path=tmp_path)
        assert rc == 0, result
        assert result["changed"] is False
        assert result["binaries"] == {
            "containerd": {"path": containerd, "present": True, "version": "2.4.2"},
            "runc": {"path": str(bin_dir / "runc"), "present": False, "version": None},
        }
        assert result["version_stamps"] == {
            "cni_plugins": {"path": str(tmp_path / ".stamp"), "version": "1.10.0", "missing": []}}


def test_module_without_arguments_reports_nothing(tmp_path):
    rc, result = run_module({}, tmp_path=tmp_path)
    assert rc == 0 and result["binaries"] == {} and result["version_stamps"] == {}


@pytest.mark.parametrize("binaries, message", [
    ([{"name": "helm", "path": "/usr/local/bin/helm"}], "no version pattern is built in for 'helm'"),
    ([{"name": "runc", "path": "/a/runc"}, {"name": "runc", "path": "/b/runc"}], "names must be unique"),
    ([{"name": "runc"}], "missing required arguments: path"),
], ids=["unknown-binary", "duplicate-name", "no-path"])
def test_module_refuses_bad_input(tmp_path, binaries, message):
    rc, result = run_module({"binaries": binaries}, tmp_path=tmp_path)
    assert rc != 0 and result["failed"] is True
    assert message in result["msg"], result["msg"]
