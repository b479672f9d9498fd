# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The errors the sesacthon.kubeadm_aws module_utils and module state functions raise.

Nothing below a module's ``main()`` calls ``module.fail_json*``: helpers raise one of these and
``main()`` reports it once, the way amazon.aws modules handle ``AnsibleAWSError``::

    try:
        result = STATES[state](module, client, ...)
    except KubeadmAwsError as e:
        if e.exception is not None:
            module.fail_json_aws(e.exception, msg=e.message, **e.kwargs)
        module.fail_json(msg=e.message, **e.kwargs)

``message`` is the text for the user, ``exception`` the botocore exception when an AWS call failed
(``fail_json_aws`` then adds its error code and response), ``kwargs`` the extra keys of the failure
result (``field`` names the offending option).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError


class KubeadmAwsError(AnsibleAWSError):
    """Base of every error this collection's modules report."""


class KubeadmAwsValidationError(KubeadmAwsError):
    """An option has a value the module cannot use; ``field`` names the option."""

    def __init__(self, message, field=None, exception=None, **kwargs):
        if field is not None:
            kwargs["field"] = field
        super(KubeadmAwsValidationError, self).__init__(message=message, exception=exception, **kwargs)
        self.field = field


class KubeadmAwsStateError(KubeadmAwsError):
    """What AWS holds does not allow the request: a lock held by another holder, a missing bundle,
    a parameter that does not hold the expected JSON document."""


class KubeadmAwsApiError(KubeadmAwsError):
    """An AWS call failed (after the retries); ``exception`` is the botocore exception."""


@contextlib.contextmanager
def aws_call(description, **kwargs):
    """Turn a botocore failure inside the block into KubeadmAwsApiError("Failed to <description>")."""
    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise KubeadmAwsApiError(message="Failed to %s" % description, exception=e, **kwargs) from e
