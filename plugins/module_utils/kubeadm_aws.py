# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Shared helpers for the sesacthon.kubeadm_aws AWS modules.

* SSM parameter naming rules (cluster names, path prefixes, parameter names).
* The retry decorator every module uses (AWSRetry.jittered_backoff, with SSM's
  ThrottlingException added, which AWSRetry does not retry by default).
* JSON "bundles": one SSM parameter holds one JSON document; read (decrypted, batched),
  compare (ignoring volatile keys such as timestamps) and write (one PutParameter, so each
  bundle is replaced atomically).
* Durations (``30m``, ``1h30m``, ``86400``) and RFC 3339 timestamps.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

DEFAULT_PREFIX_ROOT = "/kubeadm-aws"

# SSM: names may contain a-zA-Z0-9_.- and '/' as the hierarchy separator; a hierarchy may have at
# most 15 levels; the fully qualified name (incl. the ARN part) may be at most 1011 characters, the
# name itself is limited to 2048 by the API but AWS documents 1011 for the full name.
SSM_MAX_DEPTH = 15
SSM_MAX_NAME_LENGTH = 1011
_SSM_SEGMENT_RE = re.compile(r"^[a-zA-Z0-9_.\-]+$")
_CLUSTER_NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_.\-]{0,62}[a-zA-Z0-9])?$")
_DURATION_RE = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")

# Codes that are retried in addition to AWSRetry's defaults (RequestLimitExceeded, Throttling, ...).
EXTRA_RETRY_CODES = ["ThrottlingException", "TooManyUpdates"]

# Keys of a bundle that change on every write and must not make a write "changed".
VOLATILE_KEYS = ("updated_at",)

SSM_GET_PARAMETERS_MAX = 10  # GetParameters / DeleteParameters take at most 10 names per call


class KubeadmAwsError(Exception):
    """A user-facing validation error; ``field`` names the offending option."""

    def __init__(self, msg, field=None):
        super(KubeadmAwsError, self).__init__(msg)
        self.field = field


def retry_decorator(retries=8, delay=1, max_delay=20):
    """AWSRetry.jittered_backoff with SSM's ThrottlingException (and TooManyUpdates) added."""
    return AWSRetry.jittered_backoff(
        retries=retries, delay=delay, max_delay=max_delay, catch_extra_error_codes=EXTRA_RETRY_CODES
    )


# --------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------
def validate_cluster_name(name, field="cluster_name"):
    if name is None or not str(name).strip():
        raise KubeadmAwsError("%s is required and must not be empty" % field, field)
    if not _CLUSTER_NAME_RE.match(name):
        raise KubeadmAwsError(
            "%s %r is invalid: use 1-64 characters a-z A-Z 0-9 _ . - starting and ending with a letter or digit"
            % (field, name),
            field,
        )
    return name


def validate_prefix(prefix, field="prefix"):
    """Validate an SSM hierarchy prefix such as ``/kubeadm-aws/prod``; returns it without a trailing '/'."""
    if prefix is None or prefix == "":
        raise KubeadmAwsError("%s must not be empty" % field, field)
    if not prefix.startswith("/"):
        raise KubeadmAwsError("%s %r must start with '/'" % (field, prefix), field)
    if len(prefix) > 1 and prefix.endswith("/"):
        prefix = prefix.rstrip("/")
    segments = prefix[1:].split("/")
    for seg in segments:
        if seg == "":
            raise KubeadmAwsError("%s %r contains an empty path segment ('//')" % (field, prefix), field)
        if not _SSM_SEGMENT_RE.match(seg):
            bad = sorted(set(c for c in seg if not re.match(r"[a-zA-Z0-9_.\-]", c)))
            raise KubeadmAwsError(
                "%s %r contains characters SSM does not allow in parameter names: %s "
                "(allowed: a-z A-Z 0-9 _ . - and '/' between segments)" % (field, prefix, " ".join(repr(c) for c in bad)),
                field,
            )
    first = segments[0].lower()
    if first.startswith("aws") or first.startswith("ssm"):
        raise KubeadmAwsError(
            "%s %r: SSM reserves names starting with 'aws' or 'ssm' (case-insensitive)" % (field, prefix), field
        )
    # leave room for the names the modules append below the prefix (e.g. /nodes/<name>, /join/control-plane)
    if len(segments) > SSM_MAX_DEPTH - 2:
        raise KubeadmAwsError(
            "%s %r has %d levels; SSM allows %d and the modules add up to 2 below the prefix"
            % (field, prefix, len(segments), SSM_MAX_DEPTH),
            field,
        )
    if len(prefix) > SSM_MAX_NAME_LENGTH - 300:
        raise KubeadmAwsError("%s is too long (%d characters)" % (field, len(prefix)), field)
    return prefix


def validate_name_segment(value, field):
    """A single segment appended below the prefix (a node name, for example)."""
    if value is None or value == "":
        raise KubeadmAwsError("%s is required and must not be empty" % field, field)
    if not _SSM_SEGMENT_RE.match(value):
        raise KubeadmAwsError(
            "%s %r contains characters SSM does not allow (allowed: a-z A-Z 0-9 _ . -)" % (field, value), field
        )
    return value


def resolve_prefix(cluster_name, prefix=None):
    """``prefix`` if given (validated), else ``/kubeadm-aws/<cluster_name>``."""
    validate_cluster_name(cluster_name)
    if prefix:
        return validate_prefix(prefix)
    return validate_prefix("%s/%s" % (DEFAULT_PREFIX_ROOT, cluster_name))


def fail_on_validation(module, func, *args, **kwargs):
    """Run a validator; turn KubeadmAwsError into module.fail_json naming the field."""
    try:
        return func(*args, **kwargs)
    except KubeadmAwsError as e:
        module.fail_json(msg=str(e), field=e.field)


# --------------------------------------------------------------------------------------------
# time and durations
# --------------------------------------------------------------------------------------------
def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def format_time(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value, field="time"):
    """Parse an RFC 3339 / ISO 8601 timestamp; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise KubeadmAwsError("%s %r is not an RFC 3339 timestamp (e.g. 2026-01-31T12:00:00Z)" % (field, value), field)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc)


def parse_duration(value, field="duration"):
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"30m"``, ``"24h"``, ``"1h30m"``, ``"7d"``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise KubeadmAwsError("%s must be a duration, not a boolean" % field, field)
    if isinstance(value, (int, float)):
        seconds = int(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if text.isdigit():
            seconds = int(text)
        else:
            m = _DURATION_RE.match(text)
            if not text or not m or not any(m.groupdict().values()):
                raise KubeadmAwsError(
                    "%s %r is not a duration (seconds, or e.g. 30m, 24h, 1h30m, 7d)" % (field, value), field
                )
            g = dict((k, int(v or 0)) for k, v in m.groupdict().items())
            seconds = g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]
    if seconds < 0:
        raise KubeadmAwsError("%s must not be negative" % field, field)
    return seconds


def expiry_facts(expires, now=None, min_ttl=0, prefix="token"):
    """{<prefix>_expires, <prefix>_expired, <prefix>_ttl_seconds, <prefix>_usable} for an expiry time.

    No expiry (``None``) means "never expires": expired False, ttl None, usable True.
    """
    now = now or utcnow()
    exp = parse_time(expires, prefix + "_expires") if expires else None
    if exp is None:
        return {
            prefix + "_expires": None,
            prefix + "_expired": False,
            prefix + "_ttl_seconds": None,
            prefix + "_usable": True,
        }
    ttl = int((exp - now).total_seconds())
    return {
        prefix + "_expires": format_time(exp),
        prefix + "_expired": ttl <= 0,
        prefix + "_ttl_seconds": max(ttl, 0),
        prefix + "_usable": ttl > 0 and ttl >= (min_ttl or 0),
    }


# --------------------------------------------------------------------------------------------
# SSM JSON bundles
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


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def get_parameters(module, client, names, decrypt=True):
    """GetParameters for several names (10 per call). Returns {name: parameter dict} for those that exist."""
    found = {}
    for chunk in _chunks(list(names), SSM_GET_PARAMETERS_MAX):
        try:
            resp = client.get_parameters(Names=chunk, WithDecryption=decrypt, aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg="Failed to read SSM parameters %s" % ", ".join(chunk))
        for p in resp.get("Parameters", []):
            found[p["Name"]] = p
    return found


def decode_bundle(module, name, parameter):
    """The JSON document stored in an SSM parameter (None if absent); fails on non-JSON content."""
    if parameter is None:
        return None
    try:
        data = json.loads(parameter["Value"])
    except ValueError:
        module.fail_json(msg="SSM parameter %s does not hold a JSON document; refusing to interpret it" % name)
    if not isinstance(data, dict):
        module.fail_json(msg="SSM parameter %s holds JSON that is not an object" % name)
    return data


def describe_parameters(module, client, names):
    """DescribeParameters for several names in one call (filter Name Equals). {name: metadata}."""
    found = {}
    if not names:
        return found
    for chunk in _chunks(list(names), 50):
        kwargs = dict(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": chunk}])
        try:
            while True:
                resp = client.describe_parameters(aws_retry=True, **kwargs)
                for p in resp.get("Parameters", []):
                    found[p["Name"]] = p
                if not resp.get("NextToken"):
                    break
                kwargs["NextToken"] = resp["NextToken"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg="Failed to describe SSM parameters %s" % ", ".join(chunk))
    return found


def put_bundle(module, client, name, data, secure=False, kms_key_id=None, overwrite=True, description=None):
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
    try:
        resp = client.put_parameter(aws_retry=True, **kwargs)
    except is_boto3_error_code("ParameterAlreadyExists"):
        if overwrite:  # pragma: no cover - SSM only raises this for Overwrite=False
            raise
        return None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Failed to write SSM parameter %s" % name)
    return resp.get("Version")


def delete_parameters(module, client, names):
    """DeleteParameters (10 names per call). Returns the names that were deleted."""
    deleted = []
    for chunk in _chunks(list(names), SSM_GET_PARAMETERS_MAX):
        try:
            resp = client.delete_parameters(Names=chunk, aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg="Failed to delete SSM parameters %s" % ", ".join(chunk))
        deleted.extend(resp.get("DeletedParameters", []))
    return deleted


def get_parameters_by_path(module, client, path, recursive=False, decrypt=True):
    """All parameters directly below ``path`` (GetParametersByPath, following NextToken)."""
    params = []
    kwargs = dict(Path=path, Recursive=recursive, WithDecryption=decrypt, MaxResults=10)
    try:
        while True:
            resp = client.get_parameters_by_path(aws_retry=True, **kwargs)
            params.extend(resp.get("Parameters", []))
            if not resp.get("NextToken"):
                break
            kwargs["NextToken"] = resp["NextToken"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Failed to list SSM parameters below %s" % path)
    return params


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
# redaction
# --------------------------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
_CERT_KEY_RE = re.compile(r"(--certificate-key[= ]+)[0-9a-fA-F]{64}")


def redact(text):
    """Mask kubeadm bootstrap tokens and certificate keys in free text (error messages)."""
    if not text:
        return text
    text = _TOKEN_RE.sub("<redacted-token>", text)
    return _CERT_KEY_RE.sub(r"\1<redacted>", text)
