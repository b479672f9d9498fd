# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Action plugin for ssm_join_material: a read returns the bootstrap token and the certificate key
to the play, so its result is marked no_log here, whatever the calling task says. The values stay
usable in registered variables; they are never printed by callbacks, -v output or log_path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        result.update(
            self._execute_module(
                module_name="sesacthon.kubeadm_aws.ssm_join_material",
                module_args=self._task.args,
                task_vars=task_vars,
            )
        )
        if self._task.args.get("state") == "read":
            result["_ansible_no_log"] = True
        return result
