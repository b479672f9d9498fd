# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filter over the static pod manifests kubeadm writes (/etc/kubernetes/manifests/<component>.yaml).

* ``static_pod_flags``: the image and the ``--flag=value`` arguments of a manifest's container, so that a
  playbook can run a tool with the settings the component runs with (etcd's name and peer URL for
  ``etcdutl snapshot restore``, for example).

Documentation: ``static_pod_flags.yml`` next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.yaml import yaml_load


def static_pod_flags(manifest, container=""):
    """{image, command, flags} of the container ``container`` (default: the first) of a Pod manifest."""
    if isinstance(manifest, str):
        try:
            manifest = yaml_load(manifest)
        except Exception as e:
            raise AnsibleFilterError("static_pod_flags: the manifest is not YAML: %s" % e)
    if not isinstance(manifest, Mapping) or manifest.get("kind") != "Pod":
        raise AnsibleFilterError("static_pod_flags expects a Pod manifest")
    containers = ((manifest.get("spec") or {}).get("containers")) or []
    chosen = next((c for c in containers if not container or c.get("name") == container), None)
    if chosen is None:
        raise AnsibleFilterError("static_pod_flags: the manifest has no container %r" % (container or "at all"))
    words = list(chosen.get("command") or []) + list(chosen.get("args") or [])
    flags = {}
    command = []
    for word in words:
        word = str(word)
        if word.startswith("--"):
            name, sep, value = word[2:].partition("=")
            flags[name] = value if sep else "true"
        else:
            command.append(word)
    return {"image": chosen.get("image", ""), "command": command, "flags": flags}


class FilterModule(object):
    def filters(self):
        return {"static_pod_flags": static_pod_flags}
