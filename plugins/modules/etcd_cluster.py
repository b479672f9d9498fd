#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_cluster
short_description: Read the members of a kubeadm control plane's etcd, remove one, or take a verified snapshot
version_added: 0.3.0
description:
  - Talks to the etcd of a kubeadm control plane through etcd's v3 JSON gateway on its client port
    (C(https://127.0.0.1:2379/v3/...)) with the client certificate kubeadm gives the API server, so the node
    needs neither C(etcdctl) nor any package; run it on a control plane (it reads the certificates there).
  - O(state=query) lists the members and asks every started member for its status on its own client URL;
    a member is healthy when it answers and knows a leader. RV(quorum) counts the voting members (learners do
    not vote).
  - O(state=member_absent) removes the member named O(member_name) (kubeadm names a member after its node;
    a member that never started has no name and is found by O(member_address) on its peer URL). It refuses to
    remove the last voting member, and a removal that would leave fewer healthy voting members than the
    quorum of the remaining ones unless O(force=true). Removing a member that is not there changes nothing.
  - O(state=snapshot) streams a snapshot of the member at O(endpoint) into O(path) (mode C(0600), written to
    a temporary file and renamed only once it is complete and verified - the SHA-256 that etcd appends to every
    snapshot and the checksum of the bbolt meta page, which C(etcdutl snapshot restore) checks too). A
    snapshot is always a change.
  - O(state=verify) checks the snapshot file O(path) the same way, without talking to etcd (for a snapshot
    brought back from a backup before it is restored).
author:
  - sesacthon platform team (@sesacthon)
options:
  state:
    description:
      - V(query) reports the members and their health; V(member_absent) removes a member; V(snapshot) saves a
        verified snapshot to O(path); V(verify) checks the snapshot file O(path).
    type: str
    choices: [query, member_absent, snapshot, verify]
    default: query
  member_name:
    description:
      - With O(state=member_absent), the name of the member to remove (the node name, with kubeadm).
      - One of O(member_name) and O(member_address) is required with O(state=member_absent).
    type: str
  member_address:
    description:
      - With O(state=member_absent), the IP address or host of the member's peer URL; finds a member that has
        no name yet (added but never started) and is used when no member is called O(member_name).
    type: str
  force:
    description:
      - With O(state=member_absent), remove the member even when fewer than a quorum of the remaining voting
        members are healthy. The last voting member is never removed.
    type: bool
    default: false
  path:
    description:
      - With O(state=snapshot), the file to write; its directory must exist; an existing file is replaced.
      - With O(state=verify), the snapshot file to check.
    type: path
  endpoint:
    description:
      - Client URL of the member the module talks to (lists members, removes, snapshots).
    type: str
    default: https://127.0.0.1:2379
  ca_cert:
    description: CA certificate of etcd's serving certificates (kubeadm's etcd CA).
    type: path
    default: /etc/kubernetes/pki/etcd/ca.crt
  client_cert:
    description: Client certificate signed by the etcd CA.
    type: path
    default: /etc/kubernetes/pki/apiserver-etcd-client.crt
  client_key:
    description: Key of O(client_cert).
    type: path
    default: /etc/kubernetes/pki/apiserver-etcd-client.key
  timeout:
    description:
      - Seconds to wait for each answer (a member that does not answer in time is unhealthy). A snapshot
        may take several times this in all; the limit applies to each read of its stream.
    type: int
    default: 10
notes:
  - Supports check mode. O(state=member_absent) then reports the member it would remove (and fails the same
    way when the removal is unsafe); O(state=snapshot) writes nothing.
  - Plain C(http://) endpoints work too (no client certificate is sent then); kubeadm's etcd uses TLS.
"""

EXAMPLES = r"""
- name: Members and their health, from a control plane
  sesacthon.kubeadm_aws.etcd_cluster:
    state: query
  become: true
  register: etcd

- name: Remove the member of a lost control plane (refused when it would cost the quorum)
  sesacthon.kubeadm_aws.etcd_cluster:
    state: member_absent
    member_name: ip-10-0-0-12.ec2.internal
  become: true

- name: Take a verified snapshot
  sesacthon.kubeadm_aws.etcd_cluster:
    state: snapshot
    path: /var/lib/kubeadm-aws/etcd-snapshots/snapshot.db
  become: true
  register: snapshot

- name: Check a snapshot brought back from S3 before restoring it
  sesacthon.kubeadm_aws.etcd_cluster:
    state: verify
    path: /var/lib/kubeadm-aws/etcd-restore/snapshot.db
"""

RETURN = r"""
members:
  description: The members after the task, sorted by name.
  returned: unless O(state=verify)
  type: list
  elements: dict
  contains:
    id:
      description: Member ID in hexadecimal, as C(etcdctl member list) prints it.
      type: str
      sample: 2e1b3a4c5d6e7f80
    name:
      description: Member name (the node name with kubeadm); empty for a member that never started.
      type: str
    peer_urls:
      description: Peer URLs.
      type: list
      elements: str
    client_urls:
      description: Client URLs (empty until the member started).
      type: list
      elements: str
    learner:
      description: Whether the member is a learner (does not vote).
      type: bool
    healthy:
      description: Whether the member answered its status request and knows a leader.
      type: bool
    leader:
      description: Whether the member is the leader.
      type: bool
    version:
      description: etcd version the member reports.
      type: str
    db_size:
      description: Size of its database in bytes.
      type: int
    error:
      description: Why the member is not healthy.
      type: str
quorum:
  description: Counts over the voting members.
  returned: unless O(state=verify)
  type: dict
  contains:
    member_count:
      description: Members, learners included.
      type: int
    voter_count:
      description: Voting members.
      type: int
    healthy_count:
      description: Healthy voting members.
      type: int
    quorum:
      description: Votes needed to commit.
      type: int
    has_quorum:
      description: Whether at least a quorum of the voting members is healthy.
      type: bool
  sample: {"member_count": 3, "voter_count": 3, "healthy_count": 3, "quorum": 2, "has_quorum": true}
leader:
  description: Name of the leader (empty when there is none).
  returned: unless O(state=verify)
  type: str
removed:
  description: The member removed (or that would be, in check mode); null when there was none to remove.
  returned: when O(state=member_absent)
  type: dict
snapshot:
  description: The snapshot written (O(state=snapshot)) or checked (O(state=verify)).
  returned: when O(state=snapshot) and not in check mode, and when O(state=verify)
  type: dict
  contains:
    path:
      description: O(path).
      type: str
    size:
      description: Bytes.
      type: int
    sha256:
      description: SHA-256 of the file.
      type: str
    revision:
      description: The member's store revision when the snapshot started (not with O(state=verify)).
      type: int
    txid:
      description: Transaction ID of the snapshot's database.
      type: int
    member:
      description: Name of the member the snapshot was taken from (not with O(state=verify)).
      type: str
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.urls import open_url

from ansible_collections.sesacthon.kubeadm_aws.plugins.module_utils.etcd import (
    EtcdError,
    find_member,
    iter_json_stream,
    member_record,
    quorum_summary,
    removal_problem,
    snapshot_blobs,
    verify_snapshot,
)

CHUNK = 64 * 1024


class Gateway(object):
    """POSTs to etcd's v3 JSON gateway with the module's TLS settings."""

    def __init__(self, params):
        self.endpoint = params["endpoint"].rstrip("/")
        self.timeout = params["timeout"]
        tls = self.endpoint.startswith("https://")
        self.tls = dict(ca_path=params["ca_cert"], client_cert=params["client_cert"],
                        client_key=params["client_key"], validate_certs=True) if tls else {}
        if tls:
            for option in ("ca_cert", "client_cert", "client_key"):
                if not os.access(params[option], os.R_OK):
                    raise EtcdError("%s %s cannot be read: run the module on a control plane, with become"
                                    % (option, params[option]), field=option)

    def open(self, path, body=None, base=None):
        url = (base or self.endpoint).rstrip("/") + path
        try:
            return open_url(url, data=json.dumps(body or {}), method="POST", timeout=self.timeout,
                            headers={"Content-Type": "application/json"}, **(self.tls if url.startswith("https://") else {}))
        except Exception as e:  # urllib, ssl and socket errors alike: report which member and why
            raise EtcdError("etcd at %s did not answer %s: %s" % (base or self.endpoint, path, to_native(e)),
                            endpoint=base or self.endpoint)

    def post(self, path, body=None, base=None):
        resp = self.open(path, body, base)
        try:
            return json.loads(to_text(resp.read()))
        except ValueError as e:
            raise EtcdError("etcd at %s answered %s with something that is not JSON: %s"
                            % (base or self.endpoint, path, to_native(e)))


def member_status(gw, member):
    """Health, leadership, version and database size of one member, asked on its first client URL."""
    status = dict(healthy=False, leader_id=None, version="", db_size=0, error="")
    if not member["client_urls"]:
        status["error"] = "the member has not started (no client URL)"
        return status
    try:
        answer = gw.post("/v3/maintenance/status", base=member["client_urls"][0])
    except EtcdError as e:
        status["error"] = e.message
        return status
    errors = answer.get("errors") or []
    leader = int(answer.get("leader") or 0)
    status.update(leader_id="%x" % leader if leader else None, version=answer.get("version") or "",
                  db_size=int(answer.get("dbSize") or answer.get("db_size") or 0))
    if errors:
        status["error"] = "; ".join(errors)
    elif not leader:
        status["error"] = "the member knows no leader"
    else:
        status["healthy"] = True
    return status


def read_members(gw):
    """Every member with its health, and the leader's name."""
    listing = gw.post("/v3/cluster/member/list")
    members = [member_record(m) for m in listing.get("members") or []]
    leader_ids = set()
    for m in members:
        status = member_status(gw, m)
        if status["leader_id"]:
            leader_ids.add(status["leader_id"])
        m.update(healthy=status["healthy"], version=status["version"], db_size=status["db_size"],
                 error=status["error"])
    # The leader as most members see it (members that lost contact may name an old one).
    leader = ""
    for m in members:
        m["leader"] = m["id"] in leader_ids and m["healthy"]
        if m["leader"]:
            leader = m["name"]
    members.sort(key=lambda m: (m["name"], m["id"]))
    return members, leader


def report(members, leader):
    return dict(members=members, quorum=quorum_summary(members), leader=leader)


# --------------------------------------------------------------------------------------------
# states
# --------------------------------------------------------------------------------------------
def query(module, gw):
    members, leader = read_members(gw)
    return dict(changed=False, **report(members, leader))


def ensure_member_absent(module, gw):
    params = module.params
    members, leader = read_members(gw)
    target = find_member(members, params["member_name"], params["member_address"])
    if target is None:
        return dict(changed=False, removed=None, **report(members, leader))
    problem = removal_problem(members, params["member_name"], params["member_address"], params["force"])
    if problem:
        raise EtcdError(problem, member=target, **report(members, leader))
    if not module.check_mode:
        gw.post("/v3/cluster/member/remove", {"ID": str(int(target["id"], 16))})
        members, leader = read_members(gw)
    else:
        members = [m for m in members if m is not target]
    return dict(changed=True, removed=target, **report(members, leader))


def save_snapshot(module, gw):
    dest = module.params["path"]
    directory = os.path.dirname(dest) or "."
    if not os.path.isdir(directory):
        raise EtcdError("the directory of path %s does not exist" % dest, field="path")
    members, leader = read_members(gw)
    status = gw.post("/v3/maintenance/status")
    header = status.get("header") or {}
    own_id = "%x" % int(header.get("member_id") or header.get("memberId") or 0)
    own = next((m for m in members if m["id"] == own_id), None)
    if own is not None and not own["healthy"]:
        raise EtcdError("the member at %s (%s) is not healthy: %s" % (gw.endpoint, own["name"], own["error"]))
    result = dict(changed=True, **report(members, leader))
    if module.check_mode:
        return result
    resp = gw.open("/v3/maintenance/snapshot")
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            chunks = iter(lambda: to_text(resp.read(CHUNK)), "")
            for blob in snapshot_blobs(iter_json_stream(chunks)):
                fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        info = verify_snapshot(tmp)
        os.rename(tmp, dest)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    info.update(path=dest, revision=int(header.get("revision") or 0), member=own["name"] if own else "")
    result["snapshot"] = info
    return result


def verify(module, gw):
    path = module.params["path"]
    if not os.path.isfile(path):
        raise EtcdError("the snapshot %s does not exist" % path, field="path")
    info = verify_snapshot(path)
    info["path"] = path
    return dict(changed=False, snapshot=info)


STATES = {"query": query, "member_absent": ensure_member_absent, "snapshot": save_snapshot, "verify": verify}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="query", choices=list(STATES)),
            member_name=dict(type="str"),
            member_address=dict(type="str"),
            force=dict(type="bool", default=False),
            path=dict(type="path"),
            endpoint=dict(type="str", default="https://127.0.0.1:2379"),
            ca_cert=dict(type="path", default="/etc/kubernetes/pki/etcd/ca.crt"),
            client_cert=dict(type="path", default="/etc/kubernetes/pki/apiserver-etcd-client.crt"),
            client_key=dict(type="path", default="/etc/kubernetes/pki/apiserver-etcd-client.key", no_log=False),
            timeout=dict(type="int", default=10),
        ),
        required_if=[("state", "member_absent", ("member_name", "member_address"), True),
                     ("state", "snapshot", ("path",)), ("state", "verify", ("path",))],
        supports_check_mode=True,
    )
    try:
        gw = Gateway(module.params) if module.params["state"] != "verify" else None
        result = STATES[module.params["state"]](module, gw)
    except EtcdError as e:
        module.fail_json(msg=e.message, **e.kwargs)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
