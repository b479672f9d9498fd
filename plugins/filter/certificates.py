# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filter over ``kubeadm certs check-expiration -o json`` (kind CertificateExpirationInfo,
output.kubeadm.k8s.io/v1alpha3): days left per certificate and the ones below a threshold.

Documentation: ``certificate_expiry.yml`` next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

DAY = 86400


def _entries(items, authority):
    out = []
    for item in items or []:
        if not isinstance(item, Mapping):
            raise AnsibleFilterError("certificate_expiry: entries must be objects, got %s" % type(item).__name__)
        missing = bool(item.get("missing"))
        residual = int(item.get("residualTime") or 0)
        out.append({
            "name": item.get("name", ""),
            "authority": authority,
            "ca": item.get("caName", "") if not authority else "",
            "expires": item.get("expirationDate") or "",
            "days_left": None if missing else residual // DAY,
            "missing": missing,
            "external": bool(item.get("externallyManaged")),
        })
    return out


def certificate_expiry(info, min_days=0):
    """Report of a CertificateExpirationInfo (a dict, or its JSON text)."""
    if isinstance(info, str):
        # kubeadm may print a line of its own ("[check-expiration] Reading configuration ...") before the JSON.
        start = info.find("{")
        try:
            info = json.JSONDecoder().raw_decode(info[start:])[0] if start >= 0 else json.loads(info)
        except ValueError as e:
            raise AnsibleFilterError("certificate_expiry: the input is not kubeadm's JSON output: %s" % e)
    if not isinstance(info, Mapping) or info.get("kind") != "CertificateExpirationInfo":
        raise AnsibleFilterError("certificate_expiry expects kubeadm's CertificateExpirationInfo (certs check-expiration -o json)")
    certs = _entries(info.get("certificates"), False) + _entries(info.get("certificateAuthorities"), True)
    present = [c for c in certs if not c["missing"]]
    earliest = min(present, key=lambda c: c["days_left"]) if present else None
    below = [c for c in present if c["days_left"] < int(min_days)]
    return {
        "certificates": sorted(certs, key=lambda c: (c["authority"], c["name"])),
        "earliest": earliest,
        "min_days_left": earliest["days_left"] if earliest else None,
        "below": sorted(c["name"] for c in below),
        "below_detail": ["%s%s (%d days left, expires %s)" % (c["name"], " CA" if c["authority"] else "", c["days_left"], c["expires"])
                         for c in sorted(below, key=lambda c: c["days_left"])],
        "missing": sorted(c["name"] for c in certs if c["missing"]),
        "expires": dict((c["name"], c["expires"]) for c in present),
    }


class FilterModule(object):
    def filters(self):
        return {"certificate_expiry": certificate_expiry}
