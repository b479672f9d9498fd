# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""SSM naming rules: cluster names, the parameter prefix of a cluster, names appended below it.

Every check runs before any AWS call and raises KubeadmAwsValidationError naming the option.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.errors import KubeadmAwsValidationError

DEFAULT_PREFIX_ROOT = "/kubeadm-aws"

# SSM: names may contain a-zA-Z0-9_.- and '/' as the hierarchy separator; a hierarchy may have at
# most 15 levels; AWS documents 1011 characters for the fully qualified name.
SSM_MAX_DEPTH = 15
SSM_MAX_NAME_LENGTH = 1011
_SSM_SEGMENT_RE = re.compile(r"^[a-zA-Z0-9_.\-]+$")
_CLUSTER_NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_.\-]{0,62}[a-zA-Z0-9])?$")


def validate_cluster_name(name, field="cluster_name"):
    if name is None or not str(name).strip():
        raise KubeadmAwsValidationError("%s is required and must not be empty" % field, field)
    if not _CLUSTER_NAME_RE.match(name):
        raise KubeadmAwsValidationError(
            "%s %r is invalid: use 1-64 characters a-z A-Z 0-9 _ . - starting and ending with a letter or digit"
            % (field, name),
            field,
        )
    return name


def validate_prefix(prefix, field="prefix"):
    """Validate an SSM hierarchy prefix such as ``/kubeadm-aws/prod``; returns it without a trailing '/'."""
    if prefix is None or prefix == "":
        raise KubeadmAwsValidationError("%s must not be empty" % field, field)
    if not prefix.startswith("/"):
        raise KubeadmAwsValidationError("%s %r must start with '/'" % (field, prefix), field)
    if len(prefix) > 1 and prefix.endswith("/"):
        prefix = prefix.rstrip("/")
    segments = prefix[1:].split("/")
    for seg in segments:
        if seg == "":
            raise KubeadmAwsValidationError("%s %r contains an empty path segment ('//')" % (field, prefix), field)
        if not _SSM_SEGMENT_RE.match(seg):
            bad = sorted(set(c for c in seg if not re.match(r"[a-zA-Z0-9_.\-]", c)))
            raise KubeadmAwsValidationError(
                "%s %r contains characters SSM does not allow in parameter names: %s "
                "(allowed: a-z A-Z 0-9 _ . - and '/' between segments)" % (field, prefix, " ".join(repr(c) for c in bad)),
                field,
            )
    first = segments[0].lower()
    if first.startswith("aws") or first.startswith("ssm"):
        raise KubeadmAwsValidationError(
            "%s %r: SSM reserves names starting with 'aws' or 'ssm' (case-insensitive)" % (field, prefix), field
        )
    # leave room for the names the modules append below the prefix (e.g. /nodes/<name>, /join/control-plane)
    if len(segments) > SSM_MAX_DEPTH - 2:
        raise KubeadmAwsValidationError(
            "%s %r has %d levels; SSM allows %d and the modules add up to 2 below the prefix"
            % (field, prefix, len(segments), SSM_MAX_DEPTH),
            field,
        )
    if len(prefix) > SSM_MAX_NAME_LENGTH - 300:
        raise KubeadmAwsValidationError("%s is too long (%d characters)" % (field, len(prefix)), field)
    return prefix


def validate_name_segment(value, field):
    """A single segment appended below the prefix (a node name, for example)."""
    if value is None or value == "":
        raise KubeadmAwsValidationError("%s is required and must not be empty" % field, field)
    if not _SSM_SEGMENT_RE.match(value):
        raise KubeadmAwsValidationError(
            "%s %r contains characters SSM does not allow (allowed: a-z A-Z 0-9 _ . -)" % (field, value), field
        )
    return value


def resolve_prefix(cluster_name, prefix=None):
    """``prefix`` if given (validated), else ``/kubeadm-aws/<cluster_name>``."""
    validate_cluster_name(cluster_name)
    if prefix:
        return validate_prefix(prefix)
    return validate_prefix("%s/%s" % (DEFAULT_PREFIX_ROOT, cluster_name))
