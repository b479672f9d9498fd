# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Durations (``30m``, ``1h30m``, ``86400``), RFC 3339 timestamps and expiry facts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.errors import KubeadmAwsValidationError

_DURATION_RE = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


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
            raise KubeadmAwsValidationError(
                "%s %r is not an RFC 3339 timestamp (e.g. 2026-01-31T12:00:00Z)" % (field, value), field
            ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc)


def parse_duration(value, field="duration"):
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"30m"``, ``"24h"``, ``"1h30m"``, ``"7d"``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise KubeadmAwsValidationError("%s must be a duration, not a boolean" % field, field)
    if isinstance(value, (int, float)):
        seconds = int(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if text.isdigit():
            seconds = int(text)
        else:
            m = _DURATION_RE.match(text)
            if not text or not m or not any(m.groupdict().values()):
                raise KubeadmAwsValidationError(
                    "%s %r is not a duration (seconds, or e.g. 30m, 24h, 1h30m, 7d)" % (field, value), field
                )
            g = dict((k, int(v or 0)) for k, v in m.groupdict().items())
            seconds = g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]
    if seconds < 0:
        raise KubeadmAwsValidationError("%s must not be negative" % field, field)
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
