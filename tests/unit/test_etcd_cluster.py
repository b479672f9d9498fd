"""etcd_cluster against real etcd servers: a three-member cluster with TLS and client-certificate
authentication, as kubeadm runs it (certificates made here with the cryptography package), and a
one-member cluster. The etcd binary is the one the lab builds (lab/build-artifacts.sh, step etcd) or one
on PATH; without it these tests are skipped and say so, unless KUBEADM_AWS_REQUIRE_ETCD=1 (what `make test`
sets when it runs them again after the artifact build: there a missing binary fails).

The module runs the way Ansible runs it (an ANSIBLE_MODULE_ARGS file). The quorum rules and the snapshot
checks are also tested as functions (plugins/module_utils/etcd.py) on member records and files.
"""

from __future__ import annotations

import datetime
import glob
import hashlib
import importlib.util
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import REPO, free_port

_spec = importlib.util.spec_from_file_location("etcd_utils", REPO / "plugins" / "module_utils" / "etcd.py")
etcd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(etcd)

MODULE = REPO / "plugins" / "modules" / "etcd_cluster.py"


def etcd_binary():
    cache = os.environ.get("KUBEADM_AWS_CACHE", os.path.expanduser("~/.cache/kubeadm-aws"))
    for candidate in [shutil.which("etcd")] + sorted(glob.glob(os.path.join(cache, "build", "etcd-*", "bin", "etcd"))):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


ETCD = etcd_binary()
REQUIRE_ETCD = os.environ.get("KUBEADM_AWS_REQUIRE_ETCD") == "1"
NO_ETCD = "no etcd binary: run 'make lab-artifacts' (it builds etcd)"
needs_etcd = pytest.mark.skipif(ETCD is None and not REQUIRE_ETCD, reason=NO_ETCD)


def require_etcd():
    """Skip without an etcd binary; fail instead when KUBEADM_AWS_REQUIRE_ETCD=1."""
    if ETCD is None:
        if REQUIRE_ETCD:
            pytest.fail(NO_ETCD + " (KUBEADM_AWS_REQUIRE_ETCD=1)")
        pytest.skip(NO_ETCD)


# ------------------------------------------------------------------------------------------------
# certificates: an etcd CA, a serving certificate for 127.0.0.1 and a client certificate
# ------------------------------------------------------------------------------------------------
def _pki(directory: Path) -> dict[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def write_key(name, key):
        path = directory / name
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return str(path)

    def write_cert(name, cert):
        path = directory / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return str(path)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn, usage, sans=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                   .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage(usage), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    server_key, server = leaf("etcd-server", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                              [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    client_key, client = leaf("kube-apiserver-etcd-client", [ExtendedKeyUsageOID.CLIENT_AUTH])
    return {
        "ca": write_cert("ca.crt", ca),
        "server_cert": write_cert("server.crt", server), "server_key": write_key("server.key", server_key),
        "client_cert": write_cert("client.crt", client), "client_key": write_key("client.key", client_key),
    }


class Cluster:
    """``size`` etcd members on 127.0.0.1: clients over TLS with client certificates, peers over HTTP."""

    def __init__(self, tmp: Path, size: int):
        self.tmp = tmp
        self.pki = _pki(tmp)
        self.names = ["m%d" % i for i in range(1, size + 1)]
        self.client_ports = {n: free_port() for n in self.names}
        self.peer_ports = {n: free_port() for n in self.names}
        self.procs: dict[str, subprocess.Popen] = {}

    def client_url(self, name):
        return "https://127.0.0.1:%d" % self.client_ports[name]

    def start(self, name=None):
        initial = ",".join("%s=http://127.0.0.1:%d" % (n, self.peer_ports[n]) for n in self.names)
        for n in [name] if name else self.names:
            log = open(self.tmp / ("%s.log" % n), "ab")
            self.procs[n] = subprocess.Popen([
                ETCD, "--name", n, "--data-dir", str(self.tmp / n),
                "--listen-client-urls", self.client_url(n), "--advertise-client-urls", self.client_url(n),
                "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[n],
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[n],
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--cert-file", self.pki["server_cert"], "--key-file", self.pki["server_key"],
                "--client-cert-auth", "--trusted-ca-file", self.pki["ca"],
                "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "error",
            ], stdout=log, stderr=subprocess.STDOUT)
        self.wait_healthy([name] if name else self.names)

    def wait_healthy(self, names, timeout=60):
        deadline = time.time() + timeout
        pending = list(names)
        while pending and time.time() < deadline:
            r = run_module(self.args(state="query", endpoint=self.client_url(pending[0])))
            if r.get("rc", 1) == 0 and any(m["name"] == pending[0] and m["healthy"] for m in r["members"]):
                pending.pop(0)
            else:
                time.sleep(0.3)
        assert not pending, "etcd members %s did not become healthy (logs in %s)" % (pending, self.tmp)

    def stop(self, name):
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)

    def close(self):
        for n in list(self.procs):
            self.procs.pop(n).kill()

    def args(self, **kw):
        base = {"endpoint": self.client_url(self.names[0]), "ca_cert": self.pki["ca"],
                "client_cert": self.pki["client_cert"], "client_key": self.pki["client_key"], "timeout": 3}
        base.update(kw)
        return base


def run_module(args, check=False):
    path = Path(os.environ.get("TMPDIR", "/tmp")) / ("etcd-args-%s.json" % uuid.uuid4().hex)
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}))
    try:
        env = dict(os.environ, PYTHONPATH=str(_collections_root()))
        p = subprocess.run([sys.executable, str(MODULE), str(path)], capture_output=True, text=True, timeout=120, env=env)
    finally:
        path.unlink()
    out = p.stdout.strip()
    data = json.loads(out[out.find("{"):]) if "{" in out else {"_stdout": out, "_stderr": p.stderr}
    data["rc"] = p.returncode
    return data


_ROOT = []


def _collections_root():
    if not _ROOT:
        root = Path(os.environ.get("TMPDIR", "/tmp")) / ("etcd-collections-%d" % os.getpid())
        ns = root / "ansible_collections" / "sesacthon"
        ns.mkdir(parents=True, exist_ok=True)
        link = ns / "kubeadm_aws"
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        _ROOT.append(root)
    return _ROOT[0]


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    require_etcd()
    c = Cluster(tmp_path_factory.mktemp("etcd3"), 3)
    c.start()
    yield c
    c.close()


@pytest.fixture
def single(tmp_path):
    require_etcd()
    c = Cluster(tmp_path, 1)
    c.start()
    yield c
    c.close()


# ------------------------------------------------------------------------------------------------
# the module against real etcd
# ------------------------------------------------------------------------------------------------
@needs_etcd
def test_query_reports_members_health_and_quorum(three):
    r = run_module(three.args(state="query"))
    assert r["rc"] == 0 and r["changed"] is False, r
    assert [m["name"] for m in r["members"]] == ["m1", "m2", "m3"]
    assert all(m["healthy"] and m["version"] and m["client_urls"] and not m["learner"] for m in r["members"])
    assert r["quorum"] == {"member_count": 3, "voter_count": 3, "healthy_count": 3, "quorum": 2, "has_quorum": True}
    assert r["leader"] in ("m1", "m2", "m3")
    assert sum(m["leader"] for m in r["members"]) == 1


@needs_etcd
def test_a_client_without_the_etcd_client_certificate_is_refused(three, tmp_path):
    r = run_module(three.args(state="query", client_cert=three.pki["server_cert"].replace("server.crt", "missing.crt")))
    assert r["rc"] != 0 and "client_cert" in r["msg"] and "cannot be read" in r["msg"], r
    # A CA that did not sign the server's certificate: the connection is refused, naming the endpoint.
    other = _pki(tmp_path)
    r = run_module(three.args(state="query", ca_cert=other["ca"]))
    assert r["rc"] != 0 and three.client_url("m1") in r["msg"], r


@needs_etcd
def test_the_last_member_is_never_removed(single):
    for force in (False, True):
        r = run_module(single.args(state="member_absent", member_name="m1", force=force))
        assert r["rc"] != 0 and "last voting etcd member" in r["msg"], r
    assert [m["name"] for m in run_module(single.args(state="query"))["members"]] == ["m1"]


@needs_etcd
def test_snapshot_is_written_verified_and_private(single, tmp_path):
    dest = tmp_path / "out" / "snapshot.db"
    dest.parent.mkdir()
    r = run_module(single.args(state="snapshot", path=str(dest)), check=True)
    assert r["rc"] == 0 and r["changed"] and not dest.exists(), r
    r = run_module(single.args(state="snapshot", path=str(dest)))
    assert r["rc"] == 0 and r["changed"], r
    assert dest.stat().st_mode & 0o777 == 0o600
    data = dest.read_bytes()
    assert r["snapshot"]["size"] == len(data) and r["snapshot"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    assert r["snapshot"]["member"] == "m1" and r["snapshot"]["revision"] >= 1
    assert etcd.verify_snapshot(str(dest))["txid"] == r["snapshot"]["txid"]
    assert list(dest.parent.iterdir()) == [dest], "no temporary file is left behind"
    v = run_module({"state": "verify", "path": str(dest)})
    assert v["rc"] == 0 and v["changed"] is False and v["snapshot"]["sha256"] == r["snapshot"]["sha256"], v
    dest.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    v = run_module({"state": "verify", "path": str(dest)})
    assert v["rc"] != 0 and "SHA-256 trailer" in v["msg"], v
    v = run_module({"state": "verify", "path": str(tmp_path / "missing.db")})
    assert v["rc"] != 0 and "does not exist" in v["msg"], v
    r = run_module(single.args(state="snapshot", path=str(tmp_path / "no-such-dir" / "x.db")))
    assert r["rc"] != 0 and "does not exist" in r["msg"]


@needs_etcd
def test_removal_below_quorum_is_refused_and_the_dead_member_is_removed(three):
    three.stop("m3")
    r = run_module(three.args(state="query"))
    assert r["quorum"]["healthy_count"] == 2 and r["quorum"]["has_quorum"], r
    dead = next(m for m in r["members"] if m["name"] == "m3")
    assert not dead["healthy"] and dead["error"]
    # Removing a healthy member would leave m1 and the dead m3: one healthy of two, below the quorum of 2.
    r = run_module(three.args(state="member_absent", member_name="m2"))
    assert r["rc"] != 0 and "below the quorum of 2" in r["msg"] and "m3" in r["msg"], r
    r = run_module(three.args(state="member_absent", member_name="m2", force=True), check=True)
    assert r["rc"] == 0 and r["changed"] and r["removed"]["name"] == "m2", r
    assert len(run_module(three.args(state="query"))["members"]) == 3, "check mode removed nothing"
    # The dead member goes; the two left are both healthy.
    r = run_module(three.args(state="member_absent", member_name="m3"))
    assert r["rc"] == 0 and r["changed"] and r["removed"]["name"] == "m3", r
    assert [m["name"] for m in r["members"]] == ["m1", "m2"] and r["quorum"]["has_quorum"]
    again = run_module(three.args(state="member_absent", member_name="m3"))
    assert again["rc"] == 0 and again["changed"] is False and again["removed"] is None


# ------------------------------------------------------------------------------------------------
# the rules as functions
# ------------------------------------------------------------------------------------------------
def members(*spec):
    """members("a+", "b-", "c+L") -> records: + healthy, - not, L learner."""
    out = []
    for s in spec:
        out.append({"name": s.rstrip("+-L"), "id": s[0], "healthy": "+" in s, "learner": "L" in s,
                    "peer_urls": ["https://10.0.0.%d:2380" % (ord(s[0]) - 96)]})
    return out


@pytest.mark.parametrize("spec, name, force, problem", [
    (("a+", "b+", "c+"), "c", False, None),
    (("a+", "b+", "c-"), "c", False, None),
    (("a+", "b+", "c-"), "b", False, "below the quorum of 2"),
    (("a+", "b+", "c-"), "b", True, None),
    (("a+",), "a", False, "last voting etcd member"),
    (("a+",), "a", True, "last voting etcd member"),
    (("a+", "b-", "c-"), "c", False, "etcd has no quorum"),
    (("a+", "b+"), "b", False, None),
    (("a+", "b+L"), "b", False, None),
    (("a+", "b+"), "z", False, None),
    (("a+", "b+", "c+", "d-", "e-"), "a", False, "below the quorum of 3"),
    (("a+", "b+", "c+", "d-", "e-"), "e", False, None),
])
def test_removal_rules(spec, name, force, problem):
    got = etcd.removal_problem(members(*spec), name, force=force)
    if problem is None:
        assert got is None
    else:
        assert got and problem in got, got


def test_a_member_without_a_name_is_found_by_its_peer_address():
    ms = members("a+", "b+") + [{"name": "", "id": "f", "healthy": False, "learner": True,
                                  "peer_urls": ["https://10.0.0.9:2380"]}]
    assert etcd.find_member(ms, "ip-10-0-0-9", "10.0.0.9")["id"] == "f"
    assert etcd.find_member(ms, "b", "10.0.0.9")["id"] == "b"
    assert etcd.find_member(ms, "x", "10.9.9.9") is None


def test_member_records_from_the_gateway():
    raw = {"ID": "3319814642761637952", "name": "m1", "peerURLs": ["http://127.0.0.1:2380"],
           "clientURLs": ["http://127.0.0.1:2379"], "isLearner": True}
    rec = etcd.member_record(raw)
    assert rec == {"id": "%x" % 3319814642761637952, "name": "m1", "peer_urls": ["http://127.0.0.1:2380"],
                   "client_urls": ["http://127.0.0.1:2379"], "learner": True, "started": True}
    assert etcd.member_record({"ID": "5", "peerURLs": ["x"]})["started"] is False


def test_a_stream_split_anywhere_gives_the_same_blobs():
    import base64
    msgs = [{"result": {"blob": base64.b64encode(b"abc" * 100).decode()}}, {"result": {"blob": base64.b64encode(b"xyz").decode()}}]
    text = "\n".join(json.dumps(m) for m in msgs)
    for size in (1, 7, 64, len(text)):
        chunks = [text[i:i + size] for i in range(0, len(text), size)]
        assert b"".join(etcd.snapshot_blobs(etcd.iter_json_stream(chunks))) == b"abc" * 100 + b"xyz"
    with pytest.raises(etcd.EtcdError, match="middle of a message"):
        list(etcd.iter_json_stream([text[:-3]]))
    with pytest.raises(etcd.EtcdError, match="refused the snapshot: boom"):
        list(etcd.snapshot_blobs([{"error": {"message": "boom"}}]))


@needs_etcd
def test_a_damaged_snapshot_is_recognised(single, tmp_path):
    dest = tmp_path / "s.db"
    assert run_module(single.args(state="snapshot", path=str(dest)))["rc"] == 0
    good = dest.read_bytes()
    bad = bytearray(good)
    bad[5000] ^= 0xFF
    (tmp_path / "bad.db").write_bytes(bytes(bad))
    with pytest.raises(etcd.EtcdError, match="SHA-256 trailer"):
        etcd.verify_snapshot(str(tmp_path / "bad.db"))
    # A consistent trailer over a database whose meta pages are damaged.
    db = bytearray(good[:-32])
    db[16 + 20] ^= 0xFF
    db[4096 + 16 + 20] ^= 0xFF
    (tmp_path / "meta.db").write_bytes(bytes(db) + hashlib.sha256(bytes(db)).digest())
    with pytest.raises(etcd.EtcdError, match="meta page"):
        etcd.verify_snapshot(str(tmp_path / "meta.db"))
    (tmp_path / "small.db").write_bytes(b"x" * 100)
    with pytest.raises(etcd.EtcdError, match="too small"):
        etcd.verify_snapshot(str(tmp_path / "small.db"))


def test_module_url_open_is_urllib_compatible():
    """The gateway is plain HTTP/JSON: the same request urllib sends works (what the module relies on)."""
    require_etcd()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / ("etcd-plain-%s" % uuid.uuid4().hex[:8])
    port, peer = free_port(), free_port()
    p = subprocess.Popen([ETCD, "--name", "p", "--data-dir", str(tmp), "--listen-client-urls", "http://127.0.0.1:%d" % port,
                          "--advertise-client-urls", "http://127.0.0.1:%d" % port, "--listen-peer-urls",
                          "http://127.0.0.1:%d" % peer, "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
                          "--initial-cluster", "p=http://127.0.0.1:%d" % peer, "--log-level", "error"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.2)
        r = run_module({"state": "query", "endpoint": "http://127.0.0.1:%d" % port})
        assert r["rc"] == 0 and r["members"][0]["name"] == "p" and r["members"][0]["healthy"], r
        body = urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/health" % port), timeout=5).read()
        assert json.loads(body)["health"] == "true"
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
