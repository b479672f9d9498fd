#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ssm_join_material
short_description: Store, read and delete kubeadm join material in SSM Parameter Store
version_added: 0.1.0
description:
  - Hands the material C(kubeadm join) needs from the first control plane to the other nodes through
    AWS Systems Manager Parameter Store.
  - Two C(SecureString) parameters, each holding one JSON document written with a single
    C(PutParameter) call (so a reader never sees half of an update).
  - C(<prefix>/join/worker) holds the API endpoint, bootstrap token, CA certificate hash(es) and the token's expiry.
  - C(<prefix>/join/control-plane) holds the certificate key (C(kubeadm init --upload-certs)) and its expiry.
    Keeping them apart lets IAM give workers C(ssm:GetParameters) on the worker parameter only.
  - Writes are idempotent. The stored document is decrypted and compared with the wanted one; only a
    difference (ignoring the C(updated_at) timestamp) is written. When a token (or certificate key) is
    unchanged its stored expiry is kept, so re-running with O(token_ttl) does not move the expiry.
  - Reading reports whether the token has expired, how many seconds it has left and, with O(min_ttl),
    whether it is still usable for a join, so a play can create a new token first.
  - B(Secrets.) O(token) and O(certificate_key) are C(no_log) options, so they never appear in the
    invocation shown with C(-vvv) or in the module's syslog/journal entry. Writing (O(state=present))
    returns no secret (only the token ID, the part before the dot, which kubeadm treats as public).
    Reading (O(state=read)) has to return the token and certificate key for the play to use them;
    callers B(must) set C(no_log=true) on read tasks and on the tasks that use the values, or the
    values are printed by C(-v) output and callbacks. A module cannot censor its own return values
    without also hiding them from the play (Ansible's C(no_log_values) masking is applied to the
    returned data itself).
author:
  - sesacthon platform team (@sesacthon)
options:
  state:
    description:
      - V(present) writes the bundles for which values are given (see O(api_endpoint), O(token),
        O(ca_cert_hashes), O(certificate_key)).
      - V(read) reads the bundles listed in O(material) (default the worker bundle only).
      - V(absent) deletes the bundles listed in O(material) (default both).
    type: str
    choices: [present, read, absent]
    default: present
  material:
    description:
      - Which bundles to read or delete. V(control_plane) reads need IAM access to the control-plane
        parameter; reading V(control_plane) also reads V(worker) (a control plane joins with both).
      - Ignored with O(state=present), where the bundles written follow from the options given.
      - Default V([worker]) for O(state=read) and V([worker, control_plane]) for O(state=absent).
    type: list
    elements: str
    choices: [worker, control_plane]
  api_endpoint:
    description:
      - The control plane endpoint nodes join, C(host:port) (for example C(10.0.0.10:6443) or the DNS name
        of a load balancer). A leading C(https://) is removed.
      - Required (with O(token) and O(ca_cert_hashes)) when the worker bundle does not exist yet; when it
        exists, the options given replace the stored values and the others are kept.
    type: str
  token:
    description:
      - Bootstrap token, C([a-z0-9]{6}.[a-z0-9]{16}).
    type: str
  token_ttl:
    description:
      - Lifetime of a new O(token), a duration (C(24h), C(30m), C(1h30m), seconds). Used to compute the
        stored expiry when O(token_expires) is not given and the token differs from the stored one.
      - V(0) means the token does not expire.
    type: str
    default: 24h
  token_expires:
    description:
      - Expiry of O(token) as an RFC 3339 timestamp (for example the C(EXPIRES) column of C(kubeadm token list)
        or C(2026-01-31T12:00:00Z)). Overrides O(token_ttl).
    type: str
  ca_cert_hashes:
    description:
      - Discovery CA certificate hash(es), C(sha256:<64 hex digits>) (C(--discovery-token-ca-cert-hash)).
        Stored sorted and de-duplicated.
    type: list
    elements: str
  certificate_key:
    description:
      - The key that decrypts the certificates C(kubeadm init --upload-certs) stored in the cluster
        (64 hex digits). Written to the control-plane bundle.
    type: str
  certificate_key_ttl:
    description:
      - Lifetime of a new O(certificate_key) (kubeadm deletes uploaded certificates after 2 hours).
        V(0) means it does not expire.
    type: str
    default: 2h
  certificate_key_expires:
    description:
      - Expiry of O(certificate_key) as an RFC 3339 timestamp. Overrides O(certificate_key_ttl).
    type: str
  kms_key_id:
    description:
      - KMS key (ID, ARN, alias name C(alias/x) or alias ARN) that encrypts the C(SecureString) parameters.
        Defaults to the account's C(alias/aws/ssm) key.
      - When given, a bundle whose parameter is encrypted with another key is rewritten (one extra
        C(DescribeParameters) call per run).
    type: str
  min_ttl:
    description:
      - With O(state=read), the token (and certificate key) count as usable (RV(token_usable)) only if they
        are valid for at least this long. A duration (C(30m), C(1h), seconds).
    type: str
    default: "0"
  fail_if_missing:
    description:
      - With O(state=read), fail when a requested bundle does not exist instead of returning C(found=false).
    type: bool
    default: false
notes:
  - "IAM: V(present) needs C(ssm:GetParameters) and C(ssm:PutParameter) (plus C(ssm:DescribeParameters)
    with O(kms_key_id)); V(read) C(ssm:GetParameters); V(absent) C(ssm:DeleteParameters); and C(kms:Decrypt)
    / C(kms:Encrypt) / C(kms:GenerateDataKey) on the key."
  - Supports check mode; nothing is written and the result says what would change.
  - Reads use C(WithDecryption=true) and one C(GetParameters) call for all bundles.
extends_documentation_fragment:
  - sesacthon.kubeadm_aws.cluster
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
# On the first control plane, after kubeadm init --upload-certs
- name: Publish join material
  sesacthon.kubeadm_aws.ssm_join_material:
    cluster_name: prod
    api_endpoint: "{{ kubeadm_api_endpoint }}"
    token: "{{ kubeadm_token }}"
    token_ttl: 24h
    ca_cert_hashes: ["{{ kubeadm_ca_hash }}"]
    certificate_key: "{{ kubeadm_certificate_key }}"
    kms_key_id: alias/kubeadm-prod
    region: eu-central-1
  no_log: true
  delegate_to: localhost

# On a worker
- name: Read join material
  sesacthon.kubeadm_aws.ssm_join_material:
    cluster_name: prod
    state: read
    min_ttl: 30m
    fail_if_missing: true
  register: join
  no_log: true   # the result holds the token
  delegate_to: localhost

- name: Join the cluster
  ansible.builtin.command:
    argv: >-
      {{ ['kubeadm', 'join', join.worker.api_endpoint, '--token', join.worker.token]
         + (join.worker.ca_cert_hashes | map('regex_replace', '^', '--discovery-token-ca-cert-hash=') | list) }}
  when: join.token_usable
  no_log: true

# A control plane reads both bundles
- name: Read control plane join material
  sesacthon.kubeadm_aws.ssm_join_material:
    cluster_name: prod
    state: read
    material: [control_plane]
  register: cp_join
  no_log: true

# Refresh only the token (endpoint and hashes are kept)
- name: Store a new token
  sesacthon.kubeadm_aws.ssm_join_material:
    cluster_name: prod
    token: "{{ new_token }}"
    token_ttl: 2h
  no_log: true

- name: Remove the join material
  sesacthon.kubeadm_aws.ssm_join_material:
    cluster_name: prod
    state: absent
"""

RETURN = r"""
parameters:
  description: The SSM parameter names of the two bundles.
  returned: always
  type: dict
  sample: {"worker": "/kubeadm-aws/prod/join/worker", "control_plane": "/kubeadm-aws/prod/join/control-plane"}
prefix:
  description: The prefix used.
  returned: always
  type: str
  sample: /kubeadm-aws/prod
written:
  description: Names of the parameters written (or, in check mode, that would be written).
  returned: when O(state=present)
  type: list
  elements: str
deleted:
  description: Names of the parameters deleted (or, in check mode, that would be deleted).
  returned: when O(state=absent)
  type: list
  elements: str
worker:
  description:
    - The worker bundle. With O(state=present) it contains no secret (C(token) is left out).
  returned: when O(state=present) with worker values, or O(state=read)
  type: dict
  contains:
    found:
      description: Whether the parameter exists (always true after a write).
      type: bool
    api_endpoint:
      description: The control plane endpoint, C(host:port).
      type: str
    token:
      description: The bootstrap token. B(Secret), only with O(state=read); use C(no_log).
      type: str
    token_id:
      description: The public part of the token (before the dot).
      type: str
    ca_cert_hashes:
      description: CA certificate hashes, C(sha256:...).
      type: list
      elements: str
    token_expires:
      description: Expiry (RFC 3339, UTC) or null when the token does not expire.
      type: str
    token_expired:
      description: Whether the token has expired.
      type: bool
    token_ttl_seconds:
      description: Seconds left (0 when expired, null when it does not expire).
      type: int
    token_usable:
      description: Not expired and valid for at least O(min_ttl).
      type: bool
    updated_at:
      description: When the bundle was last written.
      type: str
  sample:
    found: true
    api_endpoint: 10.0.0.10:6443
    token_id: abcdef
    ca_cert_hashes: ["sha256:2f6e..."]
    token_expires: "2026-01-31T12:00:00Z"
    token_expired: false
    token_ttl_seconds: 86123
    token_usable: true
control_plane:
  description: The control-plane bundle (without C(certificate_key) for O(state=present)).
  returned: when O(state=present) with O(certificate_key), or O(state=read) with V(control_plane) in O(material)
  type: dict
  contains:
    found:
      description: Whether the parameter exists.
      type: bool
    certificate_key:
      description: The certificate key. B(Secret), only with O(state=read); use C(no_log).
      type: str
    certificate_key_expires:
      description: Expiry (RFC 3339, UTC) or null.
      type: str
    certificate_key_expired:
      description: Whether the certificate key has expired.
      type: bool
    certificate_key_ttl_seconds:
      description: Seconds left.
      type: int
    certificate_key_usable:
      description: Not expired and valid for at least O(min_ttl).
      type: bool
token_expired:
  description: Copy of RV(worker.token_expired) (true when the worker bundle is missing).
  returned: when O(state=read)
  type: bool
token_ttl_seconds:
  description: Copy of RV(worker.token_ttl_seconds).
  returned: when O(state=read)
  type: int
token_usable:
  description: Copy of RV(worker.token_usable) (false when the worker bundle is missing).
  returned: when O(state=read)
  type: bool
certificate_key_usable:
  description: Copy of RV(control_plane.certificate_key_usable) (false when missing).
  returned: when O(state=read) with V(control_plane) in O(material)
  type: bool
"""

import datetime
import re

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.durations import (
    expiry_facts,
    format_time,
    parse_duration,
    parse_time,
    utcnow,
)
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.errors import (
    KubeadmAwsError,
    KubeadmAwsStateError,
    KubeadmAwsValidationError,
)
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.naming import resolve_prefix
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.retries import retry_decorator
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.ssm import (
    bundles_equal,
    delete_parameters,
    describe_parameters,
    get_parameters,
    kms_key_matches,
    put_bundle,
    read_bundles,
)

SCHEMA = 1
MATERIALS = ("worker", "control_plane")  # also the order in which bundles are read and written
WORKER_KEYS = ("api_endpoint", "token", "ca_cert_hashes")
TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
CA_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CERT_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
ENDPOINT_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):[0-9]{1,5}$")


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------
def parameter_names(prefix):
    return {"worker": prefix + "/join/worker", "control_plane": prefix + "/join/control-plane"}


def _validate_ca_cert_hashes(hashes):
    norm = set()
    for h in hashes:
        h2 = (h or "").strip().lower()
        if not h2.startswith("sha256:"):
            h2 = "sha256:" + h2
        if not CA_HASH_RE.match(h2):
            raise KubeadmAwsValidationError("ca_cert_hashes entry %r is not sha256:<64 hex digits>" % h, "ca_cert_hashes")
        norm.add(h2)
    if not norm:
        raise KubeadmAwsValidationError("ca_cert_hashes must not be empty", "ca_cert_hashes")
    return sorted(norm)


def validate_options(params):
    """The options normalised (secrets and material only under their key when given), and ``now``.

    Raises KubeadmAwsValidationError naming the option; a message never echoes a secret.
    """
    opts = dict(now=utcnow())
    if params.get("api_endpoint") is not None:
        ep = re.sub(r"^https://", "", params["api_endpoint"].strip()).rstrip("/")
        if not ENDPOINT_RE.match(ep):
            raise KubeadmAwsValidationError("api_endpoint %r must be host:port (e.g. 10.0.0.10:6443)" % ep, "api_endpoint")
        opts["api_endpoint"] = ep
    if params.get("token") is not None:
        token = params["token"].strip()
        if not TOKEN_RE.match(token):
            raise KubeadmAwsValidationError(
                "token is not a kubeadm bootstrap token (6 + 16 characters a-z 0-9, joined by a dot)", "token")
        opts["token"] = token
    if params.get("ca_cert_hashes") is not None:
        opts["ca_cert_hashes"] = _validate_ca_cert_hashes(params["ca_cert_hashes"])
    if params.get("certificate_key") is not None:
        key = params["certificate_key"].strip().lower()
        if not CERT_KEY_RE.match(key):
            raise KubeadmAwsValidationError("certificate_key is not 64 hex digits", "certificate_key")
        opts["certificate_key"] = key
    for name in ("token_ttl", "certificate_key_ttl", "min_ttl"):
        opts[name] = parse_duration(params.get(name), name) or 0
    for name in ("token_expires", "certificate_key_expires"):
        t = parse_time(params.get(name), name)
        opts[name] = format_time(t) if t else None
    return opts


# --------------------------------------------------------------------------------------------
# what the module returns about a bundle
# --------------------------------------------------------------------------------------------
def worker_view(bundle, min_ttl, now, include_secret):
    view = {"found": bundle is not None}
    if bundle is None:
        view.update(expiry_facts(None, now, min_ttl, "token"))
        view.update(token_expired=True, token_usable=False, token_ttl_seconds=0)
        return view
    view["api_endpoint"] = bundle.get("api_endpoint")
    view["ca_cert_hashes"] = bundle.get("ca_cert_hashes", [])
    view["token_id"] = (bundle.get("token") or "").split(".")[0] or None
    view["updated_at"] = bundle.get("updated_at")
    if include_secret:
        view["token"] = bundle.get("token")
    view.update(expiry_facts(bundle.get("token_expires"), now, min_ttl, "token"))
    return view


def control_plane_view(bundle, min_ttl, now, include_secret):
    view = {"found": bundle is not None}
    if bundle is None:
        view.update(certificate_key_expires=None, certificate_key_expired=True,
                    certificate_key_ttl_seconds=0, certificate_key_usable=False)
        return view
    view["updated_at"] = bundle.get("updated_at")
    if include_secret:
        view["certificate_key"] = bundle.get("certificate_key")
    view.update(expiry_facts(bundle.get("certificate_key_expires"), now, min_ttl, "certificate_key"))
    return view


VIEWS = {"worker": worker_view, "control_plane": control_plane_view}


# --------------------------------------------------------------------------------------------
# state=read
# --------------------------------------------------------------------------------------------
def read_material(module, client, names, opts):
    """Read the requested bundles (control_plane implies worker) with one GetParameters call."""
    material = set(module.params["material"] or ["worker"])
    if "control_plane" in material:
        material.add("worker")
    wanted = [m for m in MATERIALS if m in material]
    stored = read_bundles(client, [names[m] for m in wanted])
    bundles = dict((m, stored[names[m]]) for m in wanted)
    missing = [names[m] for m in sorted(material) if bundles[m] is None]
    if missing and module.params["fail_if_missing"]:
        raise KubeadmAwsStateError(message="Join material not found: %s" % ", ".join(missing), missing=missing)

    result = dict(changed=False)
    for m in wanted:
        result[m] = VIEWS[m](bundles[m], opts["min_ttl"], opts["now"], include_secret=True)
    for k in ("token_expired", "token_ttl_seconds", "token_usable"):
        result[k] = result["worker"][k]
    if "control_plane" in result:
        result["certificate_key_usable"] = result["control_plane"]["certificate_key_usable"]
    return result


# --------------------------------------------------------------------------------------------
# state=absent
# --------------------------------------------------------------------------------------------
def ensure_absent(module, client, names, opts):
    """Delete the bundles in ``material`` (default both) that exist, with one DeleteParameters call."""
    material = module.params["material"] or list(MATERIALS)
    wanted = [names[m] for m in MATERIALS if m in material]
    existing = get_parameters(client, wanted, decrypt=False)
    to_delete = [n for n in wanted if n in existing]
    if to_delete and not module.check_mode:
        delete_parameters(client, to_delete)
    return dict(changed=bool(to_delete), deleted=to_delete)


# --------------------------------------------------------------------------------------------
# state=present
# --------------------------------------------------------------------------------------------
def _expiry(explicit, ttl, new_secret, old_bundle, secret_key, expires_key, now):
    """The expiry to store: explicit value; else the stored one if the secret is unchanged; else now+ttl."""
    if explicit:
        return explicit
    if old_bundle and old_bundle.get(secret_key) == new_secret and expires_key in old_bundle:
        return old_bundle.get(expires_key)
    if not ttl:
        return None
    return format_time(now + datetime.timedelta(seconds=ttl))


def wanted_worker(name, old, opts):
    """The worker bundle to store: the stored one with the given values replaced."""
    new = dict(old or {})
    new.pop("updated_at", None)
    for k in WORKER_KEYS:
        if k in opts:
            new[k] = opts[k]
    missing = [k for k in WORKER_KEYS if not new.get(k)]
    if missing:
        raise KubeadmAwsValidationError(
            "the worker bundle %s does not exist yet: %s required" % (name, ", ".join(missing)), missing[0])
    new["schema"] = SCHEMA
    new["token_expires"] = _expiry(opts["token_expires"], opts["token_ttl"], new["token"], old,
                                   "token", "token_expires", opts["now"])
    return new


def wanted_control_plane(name, old, opts):
    """The control-plane bundle to store."""
    new = dict(old or {})
    new.pop("updated_at", None)
    if "certificate_key" in opts:
        new["certificate_key"] = opts["certificate_key"]
    if not new.get("certificate_key"):
        raise KubeadmAwsValidationError(
            "the control-plane bundle %s does not exist yet: certificate_key required" % name, "certificate_key")
    new["schema"] = SCHEMA
    new["certificate_key_expires"] = _expiry(opts["certificate_key_expires"], opts["certificate_key_ttl"],
                                             new["certificate_key"], old, "certificate_key",
                                             "certificate_key_expires", opts["now"])
    return new


WANTED = {"worker": wanted_worker, "control_plane": wanted_control_plane}


def _materials_given(opts):
    given = []
    if any(k in opts for k in WORKER_KEYS) or opts["token_expires"]:
        given.append("worker")
    if "certificate_key" in opts or opts["certificate_key_expires"]:
        given.append("control_plane")
    return given


def _encrypted_with_other_key(client, unchanged, kms_key_id):
    """Names among ``unchanged`` whose parameter is not encrypted with ``kms_key_id`` (one DescribeParameters)."""
    if not kms_key_id or not unchanged:
        return set()
    meta = describe_parameters(client, unchanged)
    return set(n for n in unchanged if not kms_key_matches(meta.get(n, {}).get("KeyId"), kms_key_id))


def ensure_present(module, client, names, opts):
    """Write the bundles whose values are given, each only when its content (or KMS key) differs."""
    given = _materials_given(opts)
    if not given:
        raise KubeadmAwsValidationError(
            "state=present needs worker material (api_endpoint, token, ca_cert_hashes) "
            "and/or control-plane material (certificate_key)", "token")
    stored = read_bundles(client, [names[m] for m in given])
    desired = dict((m, (stored[names[m]], WANTED[m](names[m], stored[names[m]], opts))) for m in given)
    unchanged = [names[m] for m, (old, new) in desired.items() if bundles_equal(old, new)]
    rekey = _encrypted_with_other_key(client, unchanged, module.params["kms_key_id"])

    result = dict(changed=False, written=[])
    for m in given:
        old, new = desired[m]
        if names[m] in unchanged and names[m] not in rekey:
            bundle = old
        else:
            new["updated_at"] = format_time(opts["now"])
            if not module.check_mode:
                put_bundle(client, names[m], new, secure=True, kms_key_id=module.params["kms_key_id"],
                           description="kubeadm join material (%s) for cluster %s" % (m, module.params["cluster_name"]))
            result["written"].append(names[m])
            bundle = new
        result[m] = VIEWS[m](bundle, opts["min_ttl"], opts["now"], include_secret=False)
    result["changed"] = bool(result["written"])
    return result


STATES = {"read": read_material, "present": ensure_present, "absent": ensure_absent}


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True, aliases=["cluster"]),
        prefix=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "read", "absent"]),
        material=dict(type="list", elements="str", choices=list(MATERIALS)),
        api_endpoint=dict(type="str"),
        token=dict(type="str", no_log=True),
        token_ttl=dict(type="str", default="24h", no_log=False),
        token_expires=dict(type="str", no_log=False),
        ca_cert_hashes=dict(type="list", elements="str"),
        certificate_key=dict(type="str", no_log=True),
        certificate_key_ttl=dict(type="str", default="2h", no_log=False),
        certificate_key_expires=dict(type="str", no_log=False),
        kms_key_id=dict(type="str"),
        min_ttl=dict(type="str", default="0"),
        fail_if_missing=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    base = {}
    try:
        prefix = resolve_prefix(module.params["cluster_name"], module.params["prefix"])
        opts = validate_options(module.params)
        names = parameter_names(prefix)
        base = dict(prefix=prefix, parameters=names)
        client = module.client("ssm", retry_decorator=retry_decorator())
        result = STATES[module.params["state"]](module, client, names, opts)
    except KubeadmAwsError as e:
        failure = dict(base, **e.kwargs)
        if e.exception is not None:
            module.fail_json_aws(e.exception, msg=e.message, **failure)
        module.fail_json(msg=e.message, **failure)
    module.exit_json(**dict(base, **result))


if __name__ == "__main__":
    main()
