# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The retry decorator every module of sesacthon.kubeadm_aws passes to ``module.client()``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

# Retried in addition to AWSRetry's defaults (RequestLimitExceeded, Throttling, ...): SSM answers
# a too high request rate with ThrottlingException, and concurrent writes with TooManyUpdates.
EXTRA_RETRY_CODES = ["ThrottlingException", "TooManyUpdates"]


def retry_decorator(retries=8, delay=1, max_delay=20):
    """AWSRetry.jittered_backoff with SSM's ThrottlingException (and TooManyUpdates) added."""
    return AWSRetry.jittered_backoff(
        retries=retries, delay=delay, max_delay=max_delay, catch_extra_error_codes=EXTRA_RETRY_CODES
    )
