# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options shared by the SSM modules of sesacthon.kubeadm_aws.
    DOCUMENTATION = r"""
options:
  cluster_name:
    description:
      - Name of the Kubernetes cluster. 1-64 characters C(a-z A-Z 0-9 _ . -), starting and ending with a
        letter or digit.
      - Used to build the default O(prefix) C(/kubeadm-aws/<cluster_name>).
    type: str
    required: true
    aliases: [cluster]
  prefix:
    description:
      - SSM Parameter Store path under which the cluster's parameters live.
      - Must start with C(/); segments may contain only C(a-z A-Z 0-9 _ . -); no empty segments; the first
        segment must not start with C(aws) or C(ssm) (reserved by SSM); at most 13 levels (SSM allows 15 and
        the modules add up to 2). A trailing C(/) is ignored.
      - Defaults to C(/kubeadm-aws/<cluster_name>).
    type: str
"""
