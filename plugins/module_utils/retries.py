# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The retry decorator every module of sesacthon.kubeadm_aws passes to ``module.client()``, and a bounded
backoff for errors that are not throttling but go away by themselves (EC2's eventual consistency)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

# Retried in addition to AWSRetry's defaults (RequestLimitExceeded, Throttling, ...): SSM answers
# a too high request rate with ThrottlingException, and concurrent writes with TooManyUpdates.
EXTRA_RETRY_CODES = ["ThrottlingException", "TooManyUpdates"]


def retry_decorator(retries=8, delay=1, max_delay=20):
    """AWSRetry.jittered_backoff with SSM's ThrottlingException (and TooManyUpdates) added."""
    return AWSRetry.jittered_backoff(
        retries=retries, delay=delay, max_delay=max_delay, catch_extra_error_codes=EXTRA_RETRY_CODES
    )


def bounded_backoff(timeout, delay=1, max_delay=10, clock=time.monotonic):
    """Sleep durations for retrying until ``timeout`` seconds from now: ``delay``, doubled each time up to
    ``max_delay``, the last one cut to the time that is left. Ends when the time is up (at once for
    ``timeout <= 0``)::

        delays = bounded_backoff(60)
        while not done():
            wait = next(delays, None)
            if wait is None:
                raise ...  # still not done after 60 s
            time.sleep(wait)
    """
    deadline = clock() + (timeout or 0)
    while True:
        left = deadline - clock()
        if left <= 0:
            return
        yield min(delay, left)
        delay = min(delay * 2, max_delay)
