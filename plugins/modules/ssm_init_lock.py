#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ssm_init_lock
short_description: A cluster-wide lock in SSM Parameter Store so only one run does kubeadm init
version_added: 0.1.0
description:
  - Guards C(kubeadm init) so that two concurrent runs can never both initialise the same cluster, and
    records that the cluster has been initialised.
  - The lock is the C(String) parameter C(<prefix>/init/lock). It is taken with C(PutParameter) and
    C(Overwrite=false), which SSM performs atomically (create only if absent); of two concurrent callers
    exactly one succeeds, the other gets C(acquired=false) and the name of the holder.
  - The lock carries an expiry (O(ttl)). An expired lock of another holder can be taken over. SSM has no
    compare-and-swap, so a takeover first creates the claim parameter C(<prefix>/init/takeover/<lock id>)
    with C(Overwrite=false) (only one caller can create it for a given stale lock), then checks that the
    lock still holds that same stale value, overwrites it and removes the claim.
  - A lock held (and not expired) by the same O(holder) name is B(not) re-entered by default, because two
    runs that use the same name (for example the same inventory hostname from two controllers) must not
    both proceed; set O(reentrant=true) to treat the same name as the same run. An expired lock of the
    same holder is renewed.
  - O(state=released) deletes the lock, only when O(holder) holds it (or with O(force=true)).
  - O(state=initialized) writes C(<prefix>/init/state) (who initialised the cluster, when, with which
    Kubernetes version); every state reports RV(initialized), so a play can skip C(kubeadm init) on a
    cluster that already exists and join it instead.
author:
  - sesacthon platform team (@sesacthon)
options:
  state:
    description:
      - V(acquired) takes the lock for O(holder) (or reports who holds it).
      - V(released) releases it.
      - V(initialized) marks the cluster as initialised (does not touch the lock).
      - V(query) only reports the lock and the initialisation state.
    type: str
    choices: [acquired, released, initialized, query]
    default: acquired
  holder:
    description:
      - Who takes or holds the lock, for example the inventory hostname plus a run ID. Two runs that
        must exclude each other need different values.
      - "Characters C(a-z A-Z 0-9 _ . - : @ /), at most 128."
      - Required with O(state=acquired), and with O(state=released) unless O(force=true).
    type: str
  ttl:
    description:
      - How long the lock is valid before another holder may take it over, a duration (C(30m), C(1h),
        seconds). Must cover the time C(kubeadm init) takes.
    type: str
    default: 30m
  reentrant:
    description:
      - With O(state=acquired), whether a lock already held by O(holder) counts as acquired (no change).
      - Leave V(false) unless O(holder) is unique per run; with V(false) a second run using the same holder
        name gets RV(acquired=false) until the lock is released or expires.
    type: bool
    default: false
  force:
    description:
      - With O(state=released), delete the lock whoever holds it.
    type: bool
    default: false
  kubernetes_version:
    description:
      - With O(state=initialized), the Kubernetes version the cluster was initialised with.
    type: str
  api_endpoint:
    description:
      - With O(state=initialized), the control plane endpoint (C(host:port)) recorded in the state.
    type: str
notes:
  - "IAM: C(ssm:GetParameters), C(ssm:PutParameter), C(ssm:DeleteParameters) on C(<prefix>/init/*)."
  - Supports check mode. In check mode nothing is written; RV(acquired) then says whether the lock would
    have been acquired.
  - The lock protects against concurrent runs; it cannot protect against a holder that keeps working after
    its O(ttl) passed and the lock was taken over. Choose O(ttl) generously.
extends_documentation_fragment:
  - sesacthon.kubeadm_aws.cluster
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Take the init lock
  sesacthon.kubeadm_aws.ssm_init_lock:
    cluster_name: prod
    holder: "{{ inventory_hostname }}-{{ ansible_run_id | default(lookup('pipe', 'date +%s')) }}"
    ttl: 30m
  register: init_lock
  run_once: true
  delegate_to: localhost

- name: Initialise the cluster
  ansible.builtin.include_role:
    name: sesacthon.kubeadm_aws.kubeadm_init
  when: init_lock.acquired and not init_lock.initialized

- name: Mark the cluster initialised
  sesacthon.kubeadm_aws.ssm_init_lock:
    cluster_name: prod
    state: initialized
    holder: "{{ init_lock.holder }}"
    kubernetes_version: v1.36.3
  when: init_lock.acquired and not init_lock.initialized
  delegate_to: localhost

- name: Release the lock
  sesacthon.kubeadm_aws.ssm_init_lock:
    cluster_name: prod
    state: released
    holder: "{{ init_lock.holder }}"
  when: init_lock.acquired
  delegate_to: localhost

- name: Who holds the lock?
  sesacthon.kubeadm_aws.ssm_init_lock:
    cluster_name: prod
    state: query
  register: lock_state
"""

RETURN = r"""
prefix:
  description: The prefix used.
  returned: always
  type: str
  sample: /kubeadm-aws/prod
parameters:
  description: Names of the lock and state parameters.
  returned: always
  type: dict
  sample: {"lock": "/kubeadm-aws/prod/init/lock", "state": "/kubeadm-aws/prod/init/state"}
acquired:
  description:
    - Whether O(holder) holds the lock after this task (for O(state=acquired); in check mode, whether it
      would). False for the other states unless O(holder) is the current holder.
  returned: always
  type: bool
holder:
  description: The current holder of the lock (null when nobody holds it).
  returned: always
  type: str
  sample: cp1-1769860800
lock:
  description: The lock record after this task (null when there is none).
  returned: always
  type: dict
  contains:
    holder:
      description: Holder.
      type: str
    lock_id:
      description: Random ID of this acquisition (changes on takeover).
      type: str
    acquired_at:
      description: When it was acquired (RFC 3339, UTC).
      type: str
    expires_at:
      description: When it expires.
      type: str
    expired:
      description: Whether it has expired.
      type: bool
    ttl_seconds:
      description: Seconds left.
      type: int
taken_over:
  description: Whether an expired lock of another holder was taken over.
  returned: always
  type: bool
previous_holder:
  description: Holder of the expired lock that was taken over.
  returned: when RV(taken_over) is true
  type: str
released:
  description: Whether the lock was deleted.
  returned: when O(state=released)
  type: bool
initialized:
  description: Whether C(<prefix>/init/state) says the cluster has been initialised.
  returned: always
  type: bool
init_state:
  description: The content of C(<prefix>/init/state) (null when absent).
  returned: always
  type: dict
  sample: {"state": "initialized", "holder": "cp1", "kubernetes_version": "v1.36.3", "initialized_at": "2026-01-31T12:00:00Z"}
"""

import datetime
import re
import uuid

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.kubeadm_aws import (
    KubeadmAwsError,
    bundles_equal,
    decode_bundle,
    delete_parameters,
    expiry_facts,
    format_time,
    get_parameters,
    parse_duration,
    put_bundle,
    resolve_prefix,
    retry_decorator,
    utcnow,
)

SCHEMA = 1
HOLDER_RE = re.compile(r"^[A-Za-z0-9_.\-:@/]{1,128}$")


def lock_view(rec, now):
    if rec is None:
        return None
    view = dict((k, rec.get(k)) for k in ("holder", "lock_id", "acquired_at", "expires_at"))
    facts = expiry_facts(rec.get("expires_at"), now, 0, "lock")
    view["expired"] = facts["lock_expired"]
    view["ttl_seconds"] = facts["lock_ttl_seconds"]
    return view


class InitLock(object):
    def __init__(self, module, client, prefix, now):
        self.module = module
        self.client = client
        self.now = now
        self.lock_name = prefix + "/init/lock"
        self.state_name = prefix + "/init/state"
        self.takeover_path = prefix + "/init/takeover"

    def read(self, names=None):
        names = names or [self.lock_name, self.state_name]
        found = get_parameters(self.module, self.client, names)
        return dict((n, decode_bundle(self.module, n, found.get(n))) for n in names)

    def read_lock(self):
        return self.read([self.lock_name])[self.lock_name]

    def new_record(self, holder, ttl):
        return {
            "schema": SCHEMA,
            "holder": holder,
            "lock_id": uuid.uuid4().hex,
            "acquired_at": format_time(self.now),
            "expires_at": format_time(self.now + datetime.timedelta(seconds=ttl)),
        }

    def expired(self, rec):
        return expiry_facts(rec.get("expires_at"), self.now, 0, "lock")["lock_expired"]

    def create(self, rec):
        """PutParameter Overwrite=False: True if we created it, False if it already existed."""
        return put_bundle(self.module, self.client, self.lock_name, rec, overwrite=False,
                          description="kubeadm init lock") is not None

    def acquire(self, holder, ttl, current, reentrant=False):
        """Returns (acquired, changed, record, taken_over, previous_holder); ``current`` is the lock as read."""
        for attempt in range(2):
            if current is None:
                rec = self.new_record(holder, ttl)
                if self.module.check_mode:
                    return True, True, rec, False, None
                if self.create(rec):
                    return True, True, rec, False, None
                current = self.read_lock()  # lost the race: somebody created it just now
                if current is None:
                    continue  # ... and already deleted it again; try once more
            if current.get("holder") == holder:
                if not self.expired(current):
                    if not reentrant:
                        self.module.warn(
                            "the init lock is already held by holder %r (another run using the same holder name?); "
                            "not acquired because reentrant=false" % holder)
                    return reentrant, False, current, False, None
                # our own lock expired and nobody took it over: renew it (same takeover protocol)
            elif not self.expired(current):
                return False, False, current, False, None
            return self.take_over(current, holder, ttl)
        return False, False, current, False, None

    def take_over(self, stale, holder, ttl):
        stale_id = stale.get("lock_id") or "unknown"
        if not re.match(r"^[A-Za-z0-9_.\-]+$", stale_id):
            stale_id = "invalid"
        previous = stale.get("holder")
        rec = self.new_record(holder, ttl)
        if self.module.check_mode:
            return True, True, rec, previous != holder, previous
        claim = "%s/%s" % (self.takeover_path, stale_id)
        claimed = put_bundle(self.module, self.client, claim,
                             {"holder": holder, "claimed_at": format_time(self.now)}, overwrite=False,
                             description="kubeadm init lock takeover claim") is not None
        if not claimed:
            # another caller is taking over this same stale lock
            return False, False, self.read_lock() or stale, False, None
        try:
            current = self.read_lock()
            if current is not None and current.get("lock_id") != stale.get("lock_id"):
                return False, False, current, False, None  # changed under us: not stale any more
            put_bundle(self.module, self.client, self.lock_name, rec, overwrite=True,
                       description="kubeadm init lock")
        finally:
            delete_parameters(self.module, self.client, [claim])
        return True, True, rec, previous != holder, previous


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True, aliases=["cluster"]),
        prefix=dict(type="str"),
        state=dict(type="str", default="acquired", choices=["acquired", "released", "initialized", "query"]),
        holder=dict(type="str"),
        ttl=dict(type="str", default="30m"),
        reentrant=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
        kubernetes_version=dict(type="str"),
        api_endpoint=dict(type="str"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "acquired", ["holder"])],
    )
    p = module.params
    try:
        prefix = resolve_prefix(p["cluster_name"], p["prefix"])
        if p["holder"] is not None and not HOLDER_RE.match(p["holder"]):
            raise KubeadmAwsError("holder %r: use 1-128 characters a-z A-Z 0-9 _ . - : @ /" % p["holder"], "holder")
        if p["state"] == "released" and not p["holder"] and not p["force"]:
            raise KubeadmAwsError("state=released needs holder (or force=true)", "holder")
        ttl = parse_duration(p["ttl"], "ttl")
        if not ttl:
            raise KubeadmAwsError("ttl must be longer than 0 seconds", "ttl")
    except KubeadmAwsError as e:
        module.fail_json(msg=str(e), field=e.field)

    now = utcnow()
    client = module.client("ssm", retry_decorator=retry_decorator())
    lock = InitLock(module, client, prefix, now)
    result = dict(changed=False, prefix=prefix, acquired=False, taken_over=False,
                  parameters={"lock": lock.lock_name, "state": lock.state_name})

    both = lock.read()  # one GetParameters call for lock and state
    current, init_state = both[lock.lock_name], both[lock.state_name]
    state = p["state"]

    if state == "acquired":
        acquired, changed, rec, taken_over, previous = lock.acquire(p["holder"], ttl, current, p["reentrant"])
        result.update(acquired=acquired, changed=changed, taken_over=taken_over)
        if taken_over:
            result["previous_holder"] = previous
        current = rec
    elif state == "released":
        released = False
        if current is not None:
            if current.get("holder") != p["holder"] and not p["force"]:
                module.fail_json(
                    msg="the init lock %s is held by %r, not by holder %r; use force=true to release it anyway"
                    % (lock.lock_name, current.get("holder"), p["holder"]),
                    holder=current.get("holder"), field="holder")
            if not module.check_mode:
                delete_parameters(module, client, [lock.lock_name])
            released = True
            current = None
        result.update(changed=released, released=released)
    elif state == "initialized":
        wanted = {"schema": SCHEMA, "state": "initialized"}
        for k in ("holder", "kubernetes_version", "api_endpoint"):
            if p[k]:
                wanted[k] = p[k]
        if not bundles_equal(init_state, wanted, volatile=("initialized_at", "updated_at")):
            wanted["initialized_at"] = (init_state or {}).get("initialized_at") or format_time(now)
            wanted["updated_at"] = format_time(now)
            if not module.check_mode:
                put_bundle(module, client, lock.state_name, wanted, overwrite=True,
                           description="kubeadm init state")
            init_state = wanted
            result["changed"] = True
        if current is not None and p["holder"] and current.get("holder") == p["holder"] and not lock.expired(current):
            result["acquired"] = True
    else:  # query
        if current is not None and p["holder"] and current.get("holder") == p["holder"] and not lock.expired(current):
            result["acquired"] = True

    if init_state is not None:
        init_state = dict(init_state)
        init_state.pop("schema", None)
    result.update(
        lock=lock_view(current, now),
        holder=(current or {}).get("holder"),
        initialized=bool(init_state and init_state.get("state") == "initialized"),
        init_state=init_state,
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
