#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: node_info
short_description: Read the versions of a node's runtime binaries and of the release archives a role unpacked
version_added: 0.1.0
description:
  - Reads, in one module run, what a role needs to decide whether a release archive must be downloaded and
    unpacked again, the one decision where a probe pays (an archive costs a download and an unpack; a binary
    at the wanted version needs neither).
  - For each entry of O(binaries), runs C(<path> --version) and extracts the version with a regular expression
    (one per known binary, see O(binaries[].pattern)). A missing or non-executable file, a failing command or an
    output the expression does not match gives RV(binaries.version=null), never an error.
  - For each entry of O(version_stamps), reads the version a role recorded in a stamp file when it unpacked an
    archive that has no binary to ask (the CNI plugins). The stamp counts only when every path of
    O(version_stamps[].requires) exists; otherwise RV(version_stamps.version=null).
  - It only reads; files, services and packages are left to the modules that manage them.
author:
  - sesacthon platform team (@sesacthon)
options:
  binaries:
    description:
      - Binaries whose version is read with C(<path> --version).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The key of the binary in RV(binaries). Names C(containerd), C(runc) and C(crictl) come with a
            built-in O(binaries[].pattern).
        type: str
        required: true
      path:
        description: Absolute path of the binary.
        type: path
        required: true
      pattern:
        description:
          - Python regular expression (multi-line mode) applied to the command's standard output followed by its
            standard error; its first group is the version. A leading C(v) is never part of the result.
          - Built in for C(containerd) (C(^containerd\s+\S+\s+v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)), for example
            C(containerd github.com/containerd/containerd/v2 v2.4.2 a1b2c3) or Debian's
            C(containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1)), C(runc)
            (C(^runc version v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)), first line of C(runc --version)) and C(crictl)
            (C(^crictl version v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)), C(crictl version v1.37.0)).
          - Required for any other name.
        type: str
  version_stamps:
    description:
      - Stamp files holding the version of something a role unpacked (the first line of the file, trimmed, a
        leading C(v) removed).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The key of the stamp in RV(version_stamps).
        type: str
        required: true
      path:
        description: Absolute path of the stamp file.
        type: path
        required: true
      requires:
        description:
          - Paths that must all exist for the stamp to count (for example the core CNI plugins next to the stamp);
            when one is missing, RV(version_stamps.version) is null and RV(version_stamps.missing) names it.
        type: list
        elements: path
        default: []
notes:
  - Supports check mode; the module never changes anything and always reports C(changed=false).
  - The result is a snapshot taken when the module ran. Register it and use it before the tasks that install
    what it describes; ask again after an install when the new version matters.
"""

EXAMPLES = r"""
- name: Read what the release archives installed before
  sesacthon.kubeadm_aws.node_info:
    binaries:
      - name: containerd
        path: /usr/local/bin/containerd
      - name: runc
        path: /usr/local/sbin/runc
      - name: crictl
        path: /usr/local/bin/crictl
      - name: helm
        path: /usr/local/bin/helm
        pattern: 'Version:"v?([0-9.]+)"'
    version_stamps:
      - name: cni_plugins
        path: /opt/cni/bin/.kubeadm-aws-cni-plugins-version
        requires:
          - /opt/cni/bin/bridge
          - /opt/cni/bin/host-local
  register: node

- name: Download containerd only when another version is installed
  ansible.builtin.get_url:
    url: "https://github.com/containerd/containerd/releases/download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz"
    dest: /var/cache/containerd-2.4.2-linux-amd64.tar.gz
    checksum: "sha256:https://github.com/containerd/containerd/releases/download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz.sha256sum"
    mode: "0644"
  when: node.binaries.containerd.version != '2.4.2'
"""

RETURN = r"""
binaries:
  description: One entry per O(binaries) item, keyed by its name.
  returned: always
  type: dict
  contains:
    path:
      description: The path that was asked.
      type: str
      sample: /usr/local/bin/containerd
    present:
      description: Whether the path is an executable file.
      type: bool
      sample: true
    version:
      description:
        - The version the binary reports, without a leading C(v); null when it is not present, its command failed
          or the pattern did not match.
      type: str
      sample: 2.4.2
  sample:
    containerd: {path: /usr/local/bin/containerd, present: true, version: 2.4.2}
    runc: {path: /usr/local/sbin/runc, present: false, version: null}
version_stamps:
  description: One entry per O(version_stamps) item, keyed by its name.
  returned: always
  type: dict
  contains:
    path:
      description: The stamp file that was read.
      type: str
      sample: /opt/cni/bin/.kubeadm-aws-cni-plugins-version
    version:
      description:
        - The recorded version without a leading C(v); null when the stamp is missing or empty or a required path
          is missing.
      type: str
      sample: 1.10.0
    missing:
      description: The required paths that do not exist.
      type: list
      elements: str
      sample: [/opt/cni/bin/bridge]
  sample:
    cni_plugins: {path: /opt/cni/bin/.kubeadm-aws-cni-plugins-version, version: 1.10.0, missing: []}
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

# The version group of each expression also takes a pre-release suffix (2.4.2-rc.1), which the
# collection's version variables allow; a distribution suffix (1.6.20~ds1) is left out.
_VERSION = r"v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)"
VERSION_PATTERNS = {
    # containerd github.com/containerd/containerd/v2 v2.4.2 <revision>
    "containerd": r"^containerd\s+\S+\s+" + _VERSION,
    # runc version 1.5.2 (first of several lines: commit, spec, go, libseccomp)
    "runc": r"^runc version " + _VERSION,
    # crictl version v1.37.0
    "crictl": r"^crictl version " + _VERSION,
}


class NodeInfoError(Exception):
    """Bad input: reported once by main()."""


def compile_pattern(name, pattern=None):
    """The compiled version expression of a binary: the given one, else the built-in one for its name."""
    text = pattern if pattern else VERSION_PATTERNS.get(name)
    if text is None:
        raise NodeInfoError(
            "binaries: no version pattern is built in for '%s' (built in: %s); give it a pattern"
            % (name, ", ".join(sorted(VERSION_PATTERNS))))
    try:
        compiled = re.compile(text, re.MULTILINE)
    except re.error as e:
        raise NodeInfoError("binaries: the pattern of '%s' is not a valid regular expression: %s" % (name, e))
    if compiled.groups < 1:
        raise NodeInfoError("binaries: the pattern of '%s' has no group to capture the version" % name)
    return compiled


def parse_version(pattern, output):
    """The version in a command's output (first group of the first match, no leading v), or None."""
    match = pattern.search(output or "")
    if match is None or not match.group(1):
        return None
    return match.group(1)[1:] if match.group(1).startswith("v") else match.group(1)


def is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def binary_version(run, path, pattern):
    """{path, present, version} of one binary; run(argv) -> (rc, stdout, stderr)."""
    if not is_executable(path):
        return {"path": path, "present": False, "version": None}
    rc, out, err = run([path, "--version"])
    version = parse_version(pattern, (out or "") + "\n" + (err or "")) if rc == 0 else None
    return {"path": path, "present": True, "version": version}


def read_stamp(path, requires=()):
    """{path, version, missing} of a version stamp file."""
    missing = [p for p in requires if not os.path.exists(p)]
    version = None
    if not missing:
        try:
            with open(path) as fh:
                first = fh.readline().strip()
        except (IOError, OSError):
            first = ""
        if first:
            version = first[1:] if first.startswith("v") else first
    return {"path": path, "version": version, "missing": missing}


def node_info(run, binaries, version_stamps):
    """Everything the module returns; raises NodeInfoError on bad input (before running anything)."""
    names = [b["name"] for b in binaries]
    duplicates = sorted(set(n for n in names if names.count(n) > 1))
    if duplicates:
        raise NodeInfoError("binaries: names must be unique, got %s more than once" % ", ".join(duplicates))
    compiled = [(b, compile_pattern(b["name"], b.get("pattern"))) for b in binaries]
    return {
        "binaries": dict((b["name"], binary_version(run, b["path"], p)) for b, p in compiled),
        "version_stamps": dict((s["name"], read_stamp(s["path"], s.get("requires") or [])) for s in version_stamps),
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            binaries=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                path=dict(type="path", required=True),
                pattern=dict(type="str"),
            )),
            version_stamps=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                path=dict(type="path", required=True),
                requires=dict(type="list", elements="path", default=[]),
            )),
        ),
        supports_check_mode=True,
    )

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C", "LANG": "C"})

    try:
        result = node_info(run, module.params["binaries"], module.params["version_stamps"])
    except NodeInfoError as e:
        module.fail_json(msg=str(e))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
