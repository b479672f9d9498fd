# -*- coding: utf-8 -*-
# Copyright: (c) 2026, sesacthon platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""etcd as a kubeadm control plane runs it, seen through etcd's v3 JSON gateway (the HTTP/JSON face of
its gRPC API on the client port, ``/v3/...``), with the client certificate kubeadm gives the API server.

Used by the etcd_cluster module (on a control plane) and by the etcd filters (on the controller): the
member records, the quorum arithmetic and the snapshot checks live here once.

Nothing here calls ``module.fail_json``: functions raise EtcdError and the module reports it once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import struct

try:
    from urllib.parse import urlparse
except ImportError:  # pragma: no cover - Python 2
    from urlparse import urlparse

# bbolt (the storage of an etcd snapshot): page 0 is a meta page, its meta starts after the 16-byte page
# header with the magic number and the format version, and ends with an FNV-1a 64 checksum of the meta.
BOLT_MAGIC = 0xED0CDAED
BOLT_VERSION = 2
BOLT_PAGE_HEADER = 16
BOLT_META_LEN_BEFORE_CHECKSUM = 56  # magic..txid: 4+4+4+4 + 16 (root bucket) + 8+8+8
SHA256_LEN = 32


class EtcdError(Exception):
    """What the module reports: ``message`` for the user, ``kwargs`` the extra keys of the failure."""

    def __init__(self, message, **kwargs):
        super(EtcdError, self).__init__(message)
        self.message = message
        self.kwargs = kwargs


# --------------------------------------------------------------------------------------------
# members
# --------------------------------------------------------------------------------------------
def _uint(value):
    """etcd's gateway writes uint64 fields as decimal strings (proto3 JSON); old ones as numbers."""
    if value is None or value == "":
        return 0
    return int(value)


def _hex_id(value):
    return "%x" % _uint(value)


def member_record(raw):
    """The collection's view of one member of a ``/v3/cluster/member/list`` answer."""
    peer_urls = list(raw.get("peerURLs") or raw.get("peer_urls") or [])
    client_urls = list(raw.get("clientURLs") or raw.get("client_urls") or [])
    return {
        "id": _hex_id(raw.get("ID") if "ID" in raw else raw.get("id")),
        "name": raw.get("name") or "",
        "peer_urls": peer_urls,
        "client_urls": client_urls,
        "learner": bool(raw.get("isLearner") or raw.get("is_learner")),
        "started": bool(raw.get("name")) and bool(client_urls),
    }


def url_host(url):
    try:
        return urlparse(url).hostname or ""
    except ValueError:
        return ""


def find_member(members, name=None, address=None):
    """The member called ``name``, else (a member that never started has no name) the one whose peer URL
    is on ``address``; None when there is none."""
    for m in members:
        if name and m.get("name") == name:
            return m
    if address:
        for m in members:
            if any(url_host(u) == address for u in m.get("peer_urls") or []):
                return m
    return None


def member_label(member):
    """A member's name, else (never started) its peer URL, else its ID."""
    return member.get("name") or ",".join(member.get("peer_urls") or []) or member.get("id") or "?"


def quorum_of(voters):
    """Votes a raft group of ``voters`` members needs to commit anything."""
    return voters // 2 + 1


def quorum_summary(members):
    """Counts over the voting members (learners do not vote): voters, healthy voters, quorum, has_quorum."""
    voters = [m for m in members if not m.get("learner")]
    healthy = [m for m in voters if m.get("healthy")]
    need = quorum_of(len(voters)) if voters else 0
    return {
        "member_count": len(members),
        "voter_count": len(voters),
        "healthy_count": len(healthy),
        "quorum": need,
        "has_quorum": bool(voters) and len(healthy) >= need,
    }


def removal_problem(members, name=None, address=None, force=False):
    """Why removing the member ``name`` (or the one on ``address``) from ``members`` is unsafe, or None.

    ``members`` are member records with ``healthy`` set. The last voting member is never removed (force
    or not: that is a reset, not a removal). Otherwise the removal must leave at least a quorum of the
    remaining voters healthy, unless ``force``; and etcd itself commits a removal only while the
    cluster has a quorum now.
    """
    target = find_member(members, name, address)
    if target is None:
        return None
    label = target.get("name") or name or member_label(target)
    voters = [m for m in members if not m.get("learner")]
    summary = quorum_summary(members)
    if not summary["has_quorum"]:
        return ("etcd has no quorum: %d of %d voting members are healthy, %d are needed; no member can be "
                "removed until a quorum is back (or the cluster is restored from a snapshot)"
                % (summary["healthy_count"], summary["voter_count"], summary["quorum"]))
    if target.get("learner"):
        return None
    remaining = [m for m in voters if m is not target]
    if not remaining:
        return ("%s is the last voting etcd member: removing it would delete the cluster's data "
                "(tear the cluster down with reset.yml instead)" % label)
    healthy = [m for m in remaining if m.get("healthy")]
    need = quorum_of(len(remaining))
    if len(healthy) < need and not force:
        unhealthy = sorted(member_label(m) for m in remaining if not m.get("healthy"))
        return ("removing %s leaves %d voting etcd members of which %d are healthy (%s not), below the "
                "quorum of %d: the cluster would stop accepting writes. Repair or remove the unhealthy "
                "members first, or set force=true to remove it anyway"
                % (label, len(remaining), len(healthy), ", ".join(unhealthy), need))
    return None


# --------------------------------------------------------------------------------------------
# snapshots
# --------------------------------------------------------------------------------------------
def iter_json_stream(chunks):
    """The JSON objects of a gateway stream (objects one after the other, newline separated or not),
    from an iterable of text chunks; yields each object as soon as it is complete."""
    decoder = json.JSONDecoder()
    buf = ""
    for chunk in chunks:
        buf += chunk
        while True:
            stripped = buf.lstrip()
            if not stripped:
                buf = ""
                break
            try:
                obj, end = decoder.raw_decode(stripped)
            except ValueError:
                buf = stripped
                break
            yield obj
            buf = stripped[end:]
    if buf.strip():
        raise EtcdError("the snapshot stream ended in the middle of a message (%d bytes left)" % len(buf.strip()))


def snapshot_blobs(objects):
    """The bytes of each message of a ``/v3/maintenance/snapshot`` stream; raises on an error message."""
    for obj in objects:
        if "error" in obj:
            err = obj["error"]
            raise EtcdError("etcd refused the snapshot: %s" % (err.get("message") if isinstance(err, dict) else err))
        result = obj.get("result") or {}
        blob = result.get("blob")
        if blob:
            yield base64.b64decode(blob)


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in bytearray(data):
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def verify_snapshot(path):
    """Check an etcd snapshot file the way a restore does before it uses it: the SHA-256 of the database
    that etcd appends to every snapshot, and a valid bbolt meta page at its start.

    Returns {size, sha256 (of the whole file), db_size, txid, page_size}; raises EtcdError naming what is
    wrong.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        data = fh.read()
    size = len(data)
    if size < 2 * 4096 + SHA256_LEN:
        raise EtcdError("%s is not an etcd snapshot: %d bytes is too small" % (path, size), path=path)
    digest.update(data)
    db, trailer = data[:-SHA256_LEN], data[-SHA256_LEN:]
    if hashlib.sha256(db).digest() != trailer:
        raise EtcdError("%s is damaged: its SHA-256 trailer does not match its content" % path, path=path)
    magic, version, page_size = struct.unpack_from("<III", db, BOLT_PAGE_HEADER)
    if magic != BOLT_MAGIC or version != BOLT_VERSION:
        raise EtcdError("%s does not hold a bbolt database (magic %#x, version %d)" % (path, magic, version),
                        path=path)
    # bbolt keeps two meta pages (0 and 1) and writes them in turn: the newer valid one is the database's.
    txids = []
    for page in (0, 1):
        start = page * page_size + BOLT_PAGE_HEADER
        meta = db[start:start + BOLT_META_LEN_BEFORE_CHECKSUM + 8]
        if len(meta) < BOLT_META_LEN_BEFORE_CHECKSUM + 8 or struct.unpack_from("<I", meta, 0)[0] != BOLT_MAGIC:
            continue
        if fnv1a64(meta[:BOLT_META_LEN_BEFORE_CHECKSUM]) == struct.unpack_from("<Q", meta, BOLT_META_LEN_BEFORE_CHECKSUM)[0]:
            txids.append(struct.unpack_from("<Q", meta, 48)[0])
    if not txids:
        raise EtcdError("%s is damaged: neither meta page of its database has a valid checksum" % path, path=path)
    txid = max(txids)
    return {"size": size, "sha256": digest.hexdigest(), "db_size": len(db), "txid": txid, "page_size": page_size}
