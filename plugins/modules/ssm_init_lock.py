#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ssm_init_lock
short_description: Cluster-wide locks in SSM Parameter Store (kubeadm init, join-material refreshes)
version_added: 0.1.0
description:
  - Guards C(kubeadm init) so that two concurrent runs can never both initialise the same cluster, and
    records that the cluster has been initialised. With O(lock) it guards other cluster-wide work the
    same way, for example the refresh of the certificate key and the bootstrap token (O(lock=join-material)),
    so two concurrent runs cannot leave SSM holding one key while the cluster encrypted its certificates
    with another.
  - The init lock (O(lock=init), the default) is the C(String) parameter C(<prefix>/init/lock); any other
    lock V(name) is C(<prefix>/locks/<name>/lock). It is taken with C(PutParameter) and C(Overwrite=false),
    which SSM performs atomically (create only if absent); of two concurrent callers exactly one succeeds,
    the other gets C(acquired=false) and the name of the holder. When that create-only write is sent
    again by the retries after its first response was lost, SSM answers C(ParameterAlreadyExists) for
    the caller's own lock; the module then reads the lock back and counts it as acquired when it carries
    the random C(lock_id) this call wrote.
  - The lock carries an expiry (O(ttl)). An expired lock of another holder can be taken over. SSM has no
    compare-and-swap, so a takeover first creates the claim parameter C(<lock directory>/takeover/<lock id>)
    (C(<prefix>/init/takeover/<lock id>) for the init lock) with C(Overwrite=false) (only one caller can
    create it for a given stale lock), then checks that the lock still holds that same stale value,
    overwrites it and removes the claim.
  - A claim records its own expiry, 60 seconds after it was made. A claim left behind by a run that died
    between claim and delete does not block later acquires; once it is older than that (by its
    C(expires_at) or by the time SSM last modified it, whichever is earlier) the next acquire claims the
    next name in line (C(<lock id>-2), C(<lock id>-3), ...) and, when its takeover is done, deletes the
    stale claims too. A claimer that needed more than 30 seconds from its claim to its write gives up
    instead of writing, so it cannot overwrite the lock of a caller that took its claim for stale.
  - A lock held (and not expired) by the same O(holder) name is B(not) re-entered by default, because two
    runs that use the same name (for example the same inventory hostname from two controllers) must not
    both proceed; set O(reentrant=true) to treat the same name as the same run. An expired lock of the
    same holder is renewed.
  - O(state=released) deletes the lock, only when O(holder) holds it (or with O(force=true)).
  - O(state=initialized) writes C(<prefix>/init/state) (who initialised the cluster, when, with which
    Kubernetes version); every state reports RV(initialized), so a play can skip C(kubeadm init) on a
    cluster that already exists and join it instead. The init state is the same whatever O(lock) names.
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
  lock:
    description:
      - Which lock. V(init) is the init lock C(<prefix>/init/lock). Any other name is the lock
        C(<prefix>/locks/<name>/lock), for example V(join-material) to serialise the refresh of the
        certificate key and the bootstrap token.
      - "1-63 characters C(a-z 0-9 _ -), starting with a letter or digit."
    type: str
    default: init
    version_added: 0.3.0
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
        seconds). Must cover the time the guarded work (C(kubeadm init)) takes.
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
  - "IAM: C(ssm:GetParameters), C(ssm:PutParameter), C(ssm:DeleteParameters) on C(<prefix>/init/*) for the
    init lock (its claims and C(init/state)); for another O(lock) also on C(<prefix>/locks/<name>/*)
    (or C(<prefix>/locks/*) for all of them) and C(ssm:GetParameters) on C(<prefix>/init/state)."
  - Supports check mode. In check mode nothing is written; RV(acquired) then says whether the lock would
    have been acquired.
  - The lock protects against concurrent runs; it cannot protect against a holder that keeps working after
    its O(ttl) passed and the lock was taken over. Choose O(ttl) generously.
  - Expiries are compared with the controller's clock; controllers that share a cluster need synchronised
    clocks (NTP).
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

- name: Serialise the refresh of the certificate key and the token between concurrent runs
  sesacthon.kubeadm_aws.ssm_init_lock:
    cluster_name: prod
    lock: join-material
    holder: "{{ inventory_hostname }}-{{ run_id }}"
    ttl: 10m
  register: refresh_lock
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
  description: Names of the lock and state parameters, and the path below which takeover claims are made.
  returned: always
  type: dict
  sample: {"lock": "/kubeadm-aws/prod/init/lock", "state": "/kubeadm-aws/prod/init/state",
           "takeover": "/kubeadm-aws/prod/init/takeover"}
lock_name:
  description: The lock O(lock) named.
  returned: always
  type: str
  sample: init
  version_added: 0.3.0
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
    age_seconds:
      description:
        - Seconds since it was acquired (0 when the record has no C(acquired_at)). A live holder of the
          init lock starts C(kubeadm init) within seconds of taking it; a playbook can tell a young lock
          from one a stopped run left behind by this age.
      type: int
      version_added: 0.3.0
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
import json
import re
import time
import uuid

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
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.naming import SSM_MAX_DEPTH, resolve_prefix
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.retries import retry_decorator
from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.ssm import (
    bundles_equal,
    create_bundle,
    decode_bundle,
    delete_parameters,
    put_bundle,
    read_bundles,
)

SCHEMA = 1
HOLDER_RE = re.compile(r"^[A-Za-z0-9_.\-:@/]{1,128}$")
LOCK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")
INIT_LOCK = "init"

CLAIM_TTL = 60  # seconds: a takeover claim older than this was left by a run that died
CLAIM_WRITE_DEADLINE = 30  # seconds: a claimer slower than this from claim to write gives up
CLAIM_GENERATIONS = 10  # stale claims skipped for one stale lock before giving up
ACQUIRE_ATTEMPTS = 3  # re-reads of a lock that changed while it was being acquired


def lock_paths(prefix, name):
    """(lock parameter, takeover claim path) of the lock ``name`` below ``prefix``."""
    directory = prefix + "/init" if name == INIT_LOCK else "%s/locks/%s" % (prefix, name)
    return directory + "/lock", directory + "/takeover"


def validate_options(params, prefix):
    """The lock's ttl in seconds; raises KubeadmAwsValidationError naming the option."""
    if not LOCK_NAME_RE.match(params["lock"] or ""):
        raise KubeadmAwsValidationError(
            "lock %r: use 1-63 characters a-z 0-9 _ - starting with a letter or digit" % params["lock"], "lock")
    if params["holder"] is not None and not HOLDER_RE.match(params["holder"]):
        raise KubeadmAwsValidationError(
            "holder %r: use 1-128 characters a-z A-Z 0-9 _ . - : @ /" % params["holder"], "holder")
    if params["state"] == "released" and not params["holder"] and not params["force"]:
        raise KubeadmAwsValidationError("state=released needs holder (or force=true)", "holder")
    claim_depth = lock_paths(prefix, params["lock"])[1].count("/") + 1  # a claim: <takeover path>/<lock id>
    if claim_depth > SSM_MAX_DEPTH:
        raise KubeadmAwsValidationError(
            "prefix %r is too deep for lock %r: its takeover claims would have %d levels, SSM allows %d"
            % (prefix, params["lock"], claim_depth, SSM_MAX_DEPTH), "prefix")
    ttl = parse_duration(params["ttl"], "ttl")
    if not ttl:
        raise KubeadmAwsValidationError("ttl must be longer than 0 seconds", "ttl")
    return ttl


def claim_stale(parameter, now):
    """Whether the takeover claim ``parameter`` (as GetParameters returns it) was left by a dead run:
    its own ``expires_at`` passed, or SSM last modified it more than CLAIM_TTL seconds ago (a claim
    without a readable expiry, for example one written by hand)."""
    deadlines = []
    modified = parameter.get("LastModifiedDate")
    if isinstance(modified, datetime.datetime):
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=datetime.timezone.utc)
        deadlines.append(modified + datetime.timedelta(seconds=CLAIM_TTL))
    try:
        expires = json.loads(parameter.get("Value") or "").get("expires_at")
        if expires:
            deadlines.append(parse_time(expires, "expires_at"))
    except (ValueError, AttributeError, KubeadmAwsValidationError):
        pass
    return bool(deadlines) and now >= min(deadlines)


class InitLock(object):
    """A lock parameter (<prefix>/init/lock, or <prefix>/locks/<name>/lock), the cluster's state
    parameter <prefix>/init/state and the lock's takeover claims <lock directory>/takeover/<lock id>,
    as seen at ``now``; a lock taken is valid for ``ttl`` seconds."""

    def __init__(self, client, prefix, now, ttl, check_mode, name=INIT_LOCK):
        self.client = client
        self.now = now
        self.ttl = ttl
        self.check_mode = check_mode
        self.name = name
        self.lock_name, self.takeover_path = lock_paths(prefix, name)
        self.state_name = prefix + "/init/state"
        self.description = "kubeadm-aws lock %s" % name

    def read(self):
        """(lock record, init state), both None when absent, with one GetParameters call."""
        both = read_bundles(self.client, [self.lock_name, self.state_name])
        return both[self.lock_name], both[self.state_name]

    def read_lock(self):
        return read_bundles(self.client, [self.lock_name])[self.lock_name]

    def new_record(self, holder):
        return {
            "schema": SCHEMA,
            "holder": holder,
            "lock_id": uuid.uuid4().hex,
            "acquired_at": format_time(self.now),
            "expires_at": format_time(self.now + datetime.timedelta(seconds=self.ttl)),
        }

    def expired(self, rec):
        return expiry_facts(rec.get("expires_at"), self.now, 0, "lock")["lock_expired"]

    def held_by(self, rec, holder):
        """Whether ``holder`` holds the (unexpired) lock ``rec``."""
        return rec is not None and bool(holder) and rec.get("holder") == holder and not self.expired(rec)

    def create(self, rec):
        """Create the lock holding ``rec`` if there is none: (created, the lock that exists otherwise).

        A create retried after a lost response finds its own record and counts as created.
        """
        created, parameter = create_bundle(self.client, self.lock_name, rec, "lock_id", description=self.description)
        return created, (None if created else decode_bundle(self.lock_name, parameter))

    def acquire(self, holder, current, reentrant=False):
        """Take the lock for ``holder``; ``current`` is the lock as read.

        Returns dict(acquired, changed, lock, taken_over, previous_holder, same_holder, warnings), where
        ``same_holder`` says the lock was refused because ``holder`` already holds it.
        """
        outcome = dict(acquired=False, changed=False, lock=current, taken_over=False, previous_holder=None,
                       same_holder=False, warnings=[])
        for dummy in range(ACQUIRE_ATTEMPTS):
            if current is None:
                rec = self.new_record(holder)
                if self.check_mode:
                    return dict(outcome, acquired=True, changed=True, lock=rec)
                created, current = self.create(rec)
                if created:
                    return dict(outcome, acquired=True, changed=True, lock=rec)
                if current is None:
                    continue  # somebody created it just now and already deleted it again: try again
            if current.get("holder") == holder:
                if not self.expired(current):
                    return dict(outcome, acquired=reentrant, lock=current, same_holder=not reentrant)
                # our own lock expired and nobody took it over: renew it (same takeover protocol)
            elif not self.expired(current):
                return dict(outcome, lock=current)
            result = self.take_over(current, holder, outcome)
            if result is not None:
                return result
            current = self.read_lock()  # the lock changed while we were taking it over: look again
        return dict(outcome, lock=current)

    def claim(self, stale_id, holder):
        """Create a takeover claim for the stale lock ``stale_id``: (claim name or None, stale claims).

        The first claim is <takeover path>/<stale id>. While the claim in line exists but is stale (its
        maker died between claim and delete), the next name is tried: <stale id>-2, <stale id>-3, ...
        None means a live claim exists: another caller is taking over this lock right now.
        """
        base = "%s/%s" % (self.takeover_path, stale_id)
        stale_claims = []
        for generation in range(1, CLAIM_GENERATIONS + 1):
            name = base if generation == 1 else "%s-%d" % (base, generation)
            now = utcnow()
            rec = {"schema": SCHEMA, "holder": holder, "claim_id": uuid.uuid4().hex, "lock_id": stale_id,
                   "claimed_at": format_time(now),
                   "expires_at": format_time(now + datetime.timedelta(seconds=CLAIM_TTL))}
            created, parameter = create_bundle(self.client, name, rec, "claim_id",
                                               description="%s takeover claim" % self.description)
            if created:
                return name, stale_claims
            if parameter is None or not claim_stale(parameter, utcnow()):
                return None, stale_claims
            stale_claims.append(name)
        raise KubeadmAwsStateError(
            message="%d stale takeover claims block lock %s (%s ... %s); delete them"
            % (len(stale_claims), self.lock_name, stale_claims[0], stale_claims[-1]),
            claims=stale_claims)

    def take_over(self, stale, holder, outcome):
        """Replace the expired lock ``stale``; only the caller that creates its claim may.

        Returns the outcome, or None when the lock changed meanwhile (the caller reads it again).
        """
        stale_id = stale.get("lock_id") or "unknown"
        if not re.match(r"^[A-Za-z0-9_.\-]+$", stale_id):
            stale_id = "invalid"
        previous = stale.get("holder")
        rec = self.new_record(holder)
        won = dict(outcome, acquired=True, changed=True, lock=rec, taken_over=previous != holder,
                   previous_holder=previous)
        if self.check_mode:
            return won
        started = time.monotonic()
        claim, stale_claims = self.claim(stale_id, holder)
        try:
            if claim is None:
                return dict(outcome, lock=stale, warnings=[
                    "another run is taking over the expired lock %s of %r right now (its claim below %s exists)"
                    % (self.lock_name, previous, self.takeover_path)])
            current = self.read_lock()
            if current is None:
                # released meanwhile: create it, unless somebody else just did
                created, current = self.create(rec)
                return dict(won, taken_over=False, previous_holder=None) if created else None
            if current.get("lock_id") != stale.get("lock_id"):
                return None
            if time.monotonic() - started > CLAIM_WRITE_DEADLINE:
                # others may take our claim for stale by now: writing could overwrite their lock
                return dict(outcome, lock=current, warnings=[
                    "gave up taking over the expired lock %s: more than %d seconds passed since its claim; "
                    "run again" % (self.lock_name, CLAIM_WRITE_DEADLINE)])
            put_bundle(self.client, self.lock_name, rec, overwrite=True, description=self.description)
        finally:
            if claim is not None:  # with a live claim of another caller, its maker cleans up
                delete_parameters(self.client, [claim] + stale_claims)
        return won


def lock_view(rec, now):
    if rec is None:
        return None
    view = dict((k, rec.get(k)) for k in ("holder", "lock_id", "acquired_at", "expires_at"))
    facts = expiry_facts(rec.get("expires_at"), now, 0, "lock")
    view["expired"] = facts["lock_expired"]
    view["ttl_seconds"] = facts["lock_ttl_seconds"]
    acquired = rec.get("acquired_at")
    view["age_seconds"] = max(int((now - parse_time(acquired, "acquired_at")).total_seconds()), 0) if acquired else 0
    return view


def report(lock, rec, init_state):
    """The keys every state returns: the lock record after the task and the init state."""
    if init_state is not None:
        init_state = dict(init_state)
        init_state.pop("schema", None)
    return dict(
        lock=lock_view(rec, lock.now),
        holder=(rec or {}).get("holder"),
        initialized=bool(init_state and init_state.get("state") == "initialized"),
        init_state=init_state,
    )


# --------------------------------------------------------------------------------------------
# states
# --------------------------------------------------------------------------------------------
def ensure_acquired(module, lock):
    """Take the lock for O(holder): create it, take over an expired one, or report its holder."""
    holder = module.params["holder"]
    current, init_state = lock.read()
    outcome = lock.acquire(holder, current, module.params["reentrant"])
    if outcome["same_holder"]:
        module.warn("the lock %s is already held by holder %r (another run using the same holder name?); "
                    "not acquired because reentrant=false" % (lock.lock_name, holder))
    for warning in outcome["warnings"]:
        module.warn(warning)
    result = dict(changed=outcome["changed"], acquired=outcome["acquired"], taken_over=outcome["taken_over"])
    if outcome["taken_over"]:
        result["previous_holder"] = outcome["previous_holder"]
    result.update(report(lock, outcome["lock"], init_state))
    return result


def ensure_released(module, lock):
    """Delete the lock if O(holder) holds it (or with O(force)); fail naming the real holder otherwise."""
    holder = module.params["holder"]
    current, init_state = lock.read()
    released = False
    if current is not None:
        if current.get("holder") != holder and not module.params["force"]:
            raise KubeadmAwsStateError(
                message="the lock %s is held by %r, not by holder %r; use force=true to release it anyway"
                % (lock.lock_name, current.get("holder"), holder),
                holder=current.get("holder"), field="holder")
        if not module.check_mode:
            delete_parameters(lock.client, [lock.lock_name])
        released = True
        current = None
    result = dict(changed=released, released=released, acquired=False, taken_over=False)
    result.update(report(lock, current, init_state))
    return result


def ensure_initialized(module, lock):
    """Write <prefix>/init/state unless it already says the same (ignoring its timestamps)."""
    current, init_state = lock.read()
    wanted = {"schema": SCHEMA, "state": "initialized"}
    for k in ("holder", "kubernetes_version", "api_endpoint"):
        if module.params[k]:
            wanted[k] = module.params[k]
    changed = not bundles_equal(init_state, wanted, volatile=("initialized_at", "updated_at"))
    if changed:
        wanted["initialized_at"] = (init_state or {}).get("initialized_at") or format_time(lock.now)
        wanted["updated_at"] = format_time(lock.now)
        if not module.check_mode:
            put_bundle(lock.client, lock.state_name, wanted, overwrite=True, description="kubeadm init state")
        init_state = wanted
    result = dict(changed=changed, acquired=lock.held_by(current, module.params["holder"]), taken_over=False)
    result.update(report(lock, current, init_state))
    return result


def query_lock(module, lock):
    """Report the lock and the init state; writes nothing."""
    current, init_state = lock.read()
    result = dict(changed=False, acquired=lock.held_by(current, module.params["holder"]), taken_over=False)
    result.update(report(lock, current, init_state))
    return result


STATES = {"acquired": ensure_acquired, "released": ensure_released, "initialized": ensure_initialized,
          "query": query_lock}


def main():
    argument_spec = dict(
        cluster_name=dict(type="str", required=True, aliases=["cluster"]),
        prefix=dict(type="str"),
        state=dict(type="str", default="acquired", choices=["acquired", "released", "initialized", "query"]),
        lock=dict(type="str", default=INIT_LOCK),
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
    base = {}
    try:
        prefix = resolve_prefix(module.params["cluster_name"], module.params["prefix"])
        ttl = validate_options(module.params, prefix)
        client = module.client("ssm", retry_decorator=retry_decorator())
        lock = InitLock(client, prefix, utcnow(), ttl, module.check_mode, module.params["lock"])
        base = dict(prefix=prefix, lock_name=lock.name,
                    parameters={"lock": lock.lock_name, "state": lock.state_name, "takeover": lock.takeover_path})
        result = STATES[module.params["state"]](module, lock)
    except KubeadmAwsError as e:
        failure = dict(base, **e.kwargs)
        if e.exception is not None:
            module.fail_json_aws(e.exception, msg=e.message, **failure)
        module.fail_json(msg=e.message, **failure)
    module.exit_json(**dict(base, **result))


if __name__ == "__main__":
    main()
