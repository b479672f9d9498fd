# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""``redact_secrets``: hide kubeadm's secrets in text that is shown or stored (an error recorded in SSM,
a failure message): bootstrap tokens (``[a-z0-9]{6}.[a-z0-9]{16}``), certificate keys (64 hex digits,
also as ``certificateKey: <hex>`` or ``--certificate-key <hex>``) and PEM private keys.

Documentation: ``redact_secrets.yml`` next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

REDACTED = "<redacted>"
_PATTERNS = (
    # PEM private keys, whole.
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    # Bootstrap tokens: [a-z0-9]{6}.[a-z0-9]{16}.
    re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}"),
    # Certificate keys (and any other 64-hex secret), in any form: certificateKey: "<hex>", --certificate-key <hex>.
    re.compile(r"(?<![0-9a-fA-F:])(?<!sha256:)[0-9a-fA-F]{64}(?![0-9a-fA-F])"),
)


def redact_secrets(text, tail=0):
    """``text`` with every secret replaced by ``<redacted>``; with ``tail``, only its last ``tail`` characters."""
    out = "" if text is None else str(text)
    for pattern in _PATTERNS:
        out = pattern.sub(REDACTED, out)
    tail = int(tail or 0)
    return out[-tail:] if tail > 0 else out


class FilterModule(object):
    def filters(self):
        return {"redact_secrets": redact_secrets}
