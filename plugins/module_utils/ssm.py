# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""SSM Parameter Store helpers shared by the ssm_* modules.

A "bundle" is one SSM parameter holding one JSON object. Bundles are read decrypted and batched
(GetParameters takes 10 names per call), compared ignoring volatile keys such as ``updated_at``,
and written with one PutParameter each, so a reader sees the old or the new document, never a mix.

Every function takes a client made with ``module.client("ssm", retry_decorator=retry_decorator())``
and raises KubeadmAwsApiError when a call fails, KubeadmAwsStateError when a parameter does not hold
a JSON object; none of them reports to the module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.errors import (
    KubeadmAwsStateError,
    aws_call,
)

# Keys of a bundle that change on every write and must not make a write "changed".
VOLATILE_KEYS = ("updated_at",)

SSM_GET_PARAMETERS_MAX = 10  # GetParameters / DeleteParameters take at most 10 names per call
SSM_DESCRIBE_FILTER_MAX = 50  # values of one DescribeParameters filter


# --------------------------------------------------------------------------------------------
# bundles
# --------------------------------------------------------------------------------------------
def canonical_json(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def strip_volatile(data, volatile=VOLATILE_KEYS):
    if not isinstance(data, dict):
        return data
    return dict((k, v) for k, v in data.items() if k not in volatile)


def bundles_equal(a, b, volatile=VOLATILE_KEYS):
    if a is None or b is None:
        return a is b
    return canonical_json(strip_volatile(a, volatile)) == canonical_json(strip_volatile(b, volatile))


def decode_bundle(name, parameter):
    """The JSON object stored in an SSM parameter (None if absent)."""
    if parameter is None:
        return None
    try:
        data = json.loads(parameter["Value"])
    except ValueError:
        raise KubeadmAwsStateError(
            message="SSM parameter %s does not hold a JSON document; refusing to interpret it" % name,
            parameter=name,
        ) from None
    if not isinstance(data, dict):
        raise KubeadmAwsStateError(message="SSM parameter %s holds JSON that is not an object" % name, parameter=name)
    return data


def read_bundles(client, names, decrypt=True):
    """{name: bundle or None} for ``names``, with one GetParameters call per 10 names."""
    found = get_parameters(client, names, decrypt=decrypt)
    return dict((name, decode_bundle(name, found.get(name))) for name in names)


def kms_key_matches(stored, wanted):
    """Whether the KeyId SSM reports for a parameter is the key the caller asked for.

    SSM reports the key the way it was given (alias, key id or ARN); accept a suffix match so an
    ARN and a bare key id (or ``alias/x`` and its alias ARN) compare equal.
    """
    if not wanted:
        return True
    if not stored:
        return False
    return stored == wanted or stored.endswith("/" + wanted) or wanted.endswith("/" + stored) or \
        stored.endswith(":" + wanted) or wanted.endswith(":" + stored)


# --------------------------------------------------------------------------------------------
# API calls
# --------------------------------------------------------------------------------------------
def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def get_parameters(client, names, decrypt=True):
    """GetParameters for several names (10 per call). {name: parameter dict} for those that exist."""
    found = {}
    for chunk in _chunks(list(names), SSM_GET_PARAMETERS_MAX):
        with aws_call("read SSM parameters %s" % ", ".join(chunk)):
            resp = client.get_parameters(Names=chunk, WithDecryption=decrypt, aws_retry=True)
        for p in resp.get("Parameters", []):
            found[p["Name"]] = p
    return found


def describe_parameters(client, names):
    """DescribeParameters for several names (filter Name Equals, 50 names per filter). {name: metadata}."""
    found = {}
    for chunk in _chunks(list(names), SSM_DESCRIBE_FILTER_MAX):
        kwargs = dict(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": chunk}])
        with aws_call("describe SSM parameters %s" % ", ".join(chunk)):
            while True:
                resp = client.describe_parameters(aws_retry=True, **kwargs)
                for p in resp.get("Parameters", []):
                    found[p["Name"]] = p
                if not resp.get("NextToken"):
                    break
                kwargs["NextToken"] = resp["NextToken"]
    return found


def put_bundle(client, name, data, secure=False, kms_key_id=None, overwrite=True, description=None):
    """Write a JSON bundle as one parameter (one PutParameter: the whole document is replaced at once).

    Returns the new version, or None when ``overwrite=False`` and the parameter already exists.
    """
    kwargs = dict(
        Name=name,
        Value=canonical_json(data),
        Type="SecureString" if secure else "String",
        Overwrite=overwrite,
    )
    if secure and kms_key_id:
        kwargs["KeyId"] = kms_key_id
    if description:
        kwargs["Description"] = description
    with aws_call("write SSM parameter %s" % name):
        try:
            resp = client.put_parameter(aws_retry=True, **kwargs)
        except is_boto3_error_code("ParameterAlreadyExists"):
            if overwrite:  # pragma: no cover - SSM only raises this for Overwrite=False
                raise
            return None
    return resp.get("Version")


def create_bundle(client, name, data, id_key, secure=False, description=None):
    """Create ``name`` holding ``data`` only if it does not exist yet (PutParameter ``Overwrite=false``).

    Returns ``(created, parameter)``: ``created`` is True when ``data`` is what the parameter now holds
    because of this call; ``parameter`` is the stored parameter as GetParameters returns it (None when
    this call created it, or when it vanished again before it could be read).

    SSM answers a create-only write with ParameterAlreadyExists also when AWSRetry sends it again after
    the first attempt took effect but its response was lost (a 500, a timeout). So after
    ParameterAlreadyExists the parameter is read back, and it counts as created by this call when its
    ``id_key`` (a random ID the caller put into ``data``) is the one this call wrote.
    """
    if put_bundle(client, name, data, secure=secure, overwrite=False, description=description) is not None:
        return True, None
    parameter = get_parameters(client, [name], decrypt=secure).get(name)
    if parameter is not None and data.get(id_key):
        try:
            stored = json.loads(parameter["Value"])
        except ValueError:
            stored = None
        if isinstance(stored, dict) and stored.get(id_key) == data[id_key]:
            return True, parameter
    return False, parameter


def delete_parameters(client, names):
    """DeleteParameters (10 names per call). Returns the names that were deleted."""
    deleted = []
    for chunk in _chunks(list(names), SSM_GET_PARAMETERS_MAX):
        with aws_call("delete SSM parameters %s" % ", ".join(chunk)):
            resp = client.delete_parameters(Names=chunk, aws_retry=True)
        deleted.extend(resp.get("DeletedParameters", []))
    return deleted


def get_parameters_by_path(client, path, recursive=False, decrypt=True):
    """All parameters below ``path`` (GetParametersByPath, following NextToken)."""
    params = []
    kwargs = dict(Path=path, Recursive=recursive, WithDecryption=decrypt, MaxResults=10)
    with aws_call("list SSM parameters below %s" % path):
        while True:
            resp = client.get_parameters_by_path(aws_retry=True, **kwargs)
            params.extend(resp.get("Parameters", []))
            if not resp.get("NextToken"):
                break
            kwargs["NextToken"] = resp["NextToken"]
    return params
