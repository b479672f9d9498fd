# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Masking of kubeadm secrets in free text (error messages that are stored or returned)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_TOKEN_RE = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
_CERT_KEY_RE = re.compile(r"(--certificate-key[= ]+)[0-9a-fA-F]{64}")


def redact(text):
    """Mask kubeadm bootstrap tokens and certificate keys in free text."""
    if not text:
        return text
    text = _TOKEN_RE.sub("<redacted-token>", text)
    return _CERT_KEY_RE.sub(r"\1<redacted>", text)
