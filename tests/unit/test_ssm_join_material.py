"""sesacthon.kubeadm_aws.ssm_join_material against moto_server."""

import datetime
import json
import time

TOKEN = "abcdef.0123456789abcdef"
TOKEN2 = "zyxwvu.fedcba9876543210"
CA_HASH = "sha256:" + "0a" * 32
CERT_KEY = "c0ffee" + "1" * 58
MOD = "ssm_join_material"


def worker_args(cluster, **kw):
    args = dict(cluster_name=cluster, api_endpoint="10.0.0.10:6443", token=TOKEN, ca_cert_hashes=[CA_HASH])
    args.update(kw)
    return args


def stored(ssm, name):
    return json.loads(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_create_then_idempotent(run_module, ssm, cluster, proxy):
    r = run_module(MOD, worker_args(cluster, certificate_key=CERT_KEY))
    assert r.rc == 0, r
    assert r["changed"] is True
    w, cp = "/kubeadm-aws/%s/join/worker" % cluster, "/kubeadm-aws/%s/join/control-plane" % cluster
    assert r["written"] == [w, cp]
    # one GetParameters for both bundles, one PutParameter per bundle
    assert proxy.count("GetParameters") == 1 and proxy.count("PutParameter") == 2
    doc = stored(ssm, w)
    assert doc["token"] == TOKEN and doc["api_endpoint"] == "10.0.0.10:6443" and doc["ca_cert_hashes"] == [CA_HASH]
    assert stored(ssm, cp)["certificate_key"] == CERT_KEY
    meta = {p["Name"]: p for p in ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [w, cp]}])["Parameters"]}
    assert meta[w]["Type"] == "SecureString" and meta[cp]["Type"] == "SecureString"
    # secrets are not in the write result
    assert TOKEN not in r.stdout and CERT_KEY not in r.stdout
    assert r["worker"]["token_id"] == "abcdef"
    expires = r["worker"]["token_expires"]

    time.sleep(1.1)  # time moves: the expiry computed from token_ttl must not cause a change
    proxy.reset()
    r2 = run_module(MOD, worker_args(cluster, certificate_key=CERT_KEY))
    assert r2.rc == 0 and r2["changed"] is False and r2["written"] == []
    assert r2["worker"]["token_expires"] == expires
    assert proxy.count("PutParameter") == 0
    assert ssm.get_parameter(Name=w)["Parameter"]["Version"] == 1


def test_new_token_changes_and_merges(run_module, ssm, cluster):
    assert run_module(MOD, worker_args(cluster, token_ttl="1h"))["changed"] is True
    # refresh only the token: endpoint and hashes are kept, new expiry from token_ttl
    r = run_module(MOD, dict(cluster_name=cluster, token=TOKEN2, token_ttl="2h"))
    assert r.rc == 0 and r["changed"] is True
    doc = stored(ssm, "/kubeadm-aws/%s/join/worker" % cluster)
    assert doc["token"] == TOKEN2 and doc["api_endpoint"] == "10.0.0.10:6443" and doc["ca_cert_hashes"] == [CA_HASH]
    assert 7000 < r["worker"]["token_ttl_seconds"] <= 7200


def test_check_mode_writes_nothing(run_module, ssm, cluster, proxy):
    r = run_module(MOD, worker_args(cluster, certificate_key=CERT_KEY), check=True)
    assert r.rc == 0 and r["changed"] is True and len(r["written"]) == 2
    assert proxy.count("PutParameter") == 0
    assert ssm.get_parameters(Names=r["written"])["Parameters"] == []
    # absent in check mode keeps the parameters
    run_module(MOD, worker_args(cluster))
    r = run_module(MOD, dict(cluster_name=cluster, state="absent"), check=True)
    assert r["changed"] is True and r["deleted"] == ["/kubeadm-aws/%s/join/worker" % cluster]
    assert len(ssm.get_parameters(Names=r["deleted"])["Parameters"]) == 1


def test_read_and_delete(run_module, ssm, cluster, proxy):
    run_module(MOD, worker_args(cluster, certificate_key=CERT_KEY))
    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, state="read"))
    assert r.rc == 0 and r["changed"] is False
    assert r["worker"]["token"] == TOKEN and r["worker"]["ca_cert_hashes"] == [CA_HASH]
    assert "control_plane" not in r  # workers do not read the certificate key by default
    assert r["token_usable"] is True and r["token_expired"] is False
    assert proxy.count("GetParameters") == 1
    assert proxy.find("GetParameters")[0].params["Names"] == ["/kubeadm-aws/%s/join/worker" % cluster]

    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, state="read", material=["control_plane"]))
    assert r["control_plane"]["certificate_key"] == CERT_KEY and r["worker"]["token"] == TOKEN
    assert r["certificate_key_usable"] is True
    assert proxy.count("GetParameters") == 1  # both bundles in one call
    assert len(proxy.find("GetParameters")[0].params["Names"]) == 2

    r = run_module(MOD, dict(cluster_name=cluster, state="absent"))
    assert r["changed"] is True and len(r["deleted"]) == 2
    r = run_module(MOD, dict(cluster_name=cluster, state="absent"))
    assert r["changed"] is False
    r = run_module(MOD, dict(cluster_name=cluster, state="read"))
    assert r["worker"]["found"] is False and r["token_usable"] is False
    r = run_module(MOD, dict(cluster_name=cluster, state="read", fail_if_missing=True))
    assert r.rc != 0 and "/kubeadm-aws/%s/join/worker" % cluster in r["msg"]


def test_custom_prefix(run_module, ssm, cluster):
    r = run_module(MOD, worker_args(cluster, prefix="/platform/k8s/%s/" % cluster))
    assert r.rc == 0 and r["written"] == ["/platform/k8s/%s/join/worker" % cluster]
    assert stored(ssm, "/platform/k8s/%s/join/worker" % cluster)["token"] == TOKEN


def test_expiry_logic(run_module, cluster):
    now = datetime.datetime.now(datetime.timezone.utc)
    # expired token
    run_module(MOD, worker_args(cluster, token_expires=iso(now - datetime.timedelta(minutes=5))))
    r = run_module(MOD, dict(cluster_name=cluster, state="read"))
    assert r["token_expired"] is True and r["token_usable"] is False and r["token_ttl_seconds"] == 0
    # about to expire: 10 minutes left
    r = run_module(MOD, worker_args(cluster, token_expires=iso(now + datetime.timedelta(minutes=10))))
    assert r["changed"] is True
    r = run_module(MOD, dict(cluster_name=cluster, state="read", min_ttl="30m"))
    assert r["token_expired"] is False and r["token_usable"] is False and 0 < r["token_ttl_seconds"] <= 600
    r = run_module(MOD, dict(cluster_name=cluster, state="read", min_ttl="5m"))
    assert r["token_usable"] is True
    # token_ttl 0: never expires
    run_module(MOD, worker_args(cluster, token=TOKEN2, token_ttl="0"))
    r = run_module(MOD, dict(cluster_name=cluster, state="read", min_ttl="3650d"))
    assert r["worker"]["token_expires"] is None and r["token_usable"] is True


def test_kms_key(run_module, ssm, kms, cluster, proxy):
    key_id = kms.create_key(Description="kubeadm-aws test")["KeyMetadata"]["KeyId"]
    other = kms.create_key(Description="other")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/%s" % cluster, TargetKeyId=other)
    name = "/kubeadm-aws/%s/join/worker" % cluster
    r = run_module(MOD, worker_args(cluster, kms_key_id=key_id))
    assert r.rc == 0 and r["changed"] is True
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])
    p = meta["Parameters"][0]
    assert p["Type"] == "SecureString" and p["KeyId"] == key_id
    r = run_module(MOD, dict(cluster_name=cluster, state="read"))
    assert r["worker"]["token"] == TOKEN
    # same content and key: no change (costs one DescribeParameters)
    proxy.reset()
    r = run_module(MOD, worker_args(cluster, kms_key_id=key_id))
    assert r["changed"] is False and proxy.count("DescribeParameters") == 1
    # same content, another key: rewritten with that key
    r = run_module(MOD, worker_args(cluster, kms_key_id="alias/%s" % cluster))
    assert r["changed"] is True
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])
    assert meta["Parameters"][0]["KeyId"] == "alias/%s" % cluster
    assert run_module(MOD, worker_args(cluster, kms_key_id="alias/%s" % cluster))["changed"] is False


def test_bad_input(run_module, cluster):
    r = run_module(MOD, dict(api_endpoint="10.0.0.1:6443"))
    assert r.rc != 0 and "cluster_name" in r["msg"]
    r = run_module(MOD, worker_args(cluster, prefix="/kubeadm aws/x!"))
    assert r.rc != 0 and "prefix" in r["msg"] and r["field"] == "prefix"
    r = run_module(MOD, worker_args(cluster, token="not-a-token-but-a-secret"))
    assert r.rc != 0 and r["field"] == "token" and "not-a-token-but-a-secret" not in r.stdout
    r = run_module(MOD, worker_args(cluster, ca_cert_hashes=["md5:1234"]))
    assert r.rc != 0 and "ca_cert_hashes" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, token=TOKEN))
    assert r.rc != 0 and "api_endpoint" in r["msg"]  # first write needs the whole worker bundle
    r = run_module(MOD, worker_args(cluster, min_ttl="soon", state="read"))
    assert r.rc != 0 and "min_ttl" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster))
    assert r.rc != 0 and "state=present needs" in r["msg"]


def test_read_returns_the_worker_material_once_stored(run_module, cluster):
    """state=read: the token and hashes a worker joins with; the certificate key only on request."""
    r = run_module(MOD, dict(cluster_name=cluster, state="read"))
    assert r.rc == 0 and r["changed"] is False and r["worker"]["found"] is False and r["token_usable"] is False
    run_module(MOD, worker_args(cluster, certificate_key=CERT_KEY))
    r = run_module(MOD, dict(cluster_name=cluster, state="read", min_ttl="1h"))
    assert r.rc == 0 and r["changed"] is False
    assert r["worker"]["token"] == TOKEN and r["worker"]["api_endpoint"] == "10.0.0.10:6443"
    assert r["token_usable"] is True and "control_plane" not in r and CERT_KEY not in r.stdout


def test_absent_deletes_only_the_material_given(run_module, ssm, cluster):
    """state=absent with material: the other bundle stays; a second run changes nothing."""
    run_module(MOD, worker_args(cluster, certificate_key=CERT_KEY))
    w, cp = "/kubeadm-aws/%s/join/worker" % cluster, "/kubeadm-aws/%s/join/control-plane" % cluster
    r = run_module(MOD, dict(cluster_name=cluster, state="absent", material=["control_plane"]))
    assert r.rc == 0 and r["changed"] is True and r["deleted"] == [cp]
    assert [p["Name"] for p in ssm.get_parameters(Names=[w, cp])["Parameters"]] == [w]
    r = run_module(MOD, dict(cluster_name=cluster, state="absent", material=["control_plane"]))
    assert r.rc == 0 and r["changed"] is False and r["deleted"] == []


def test_parameter_that_is_not_json_is_refused(run_module, ssm, cluster):
    name = "/kubeadm-aws/%s/join/worker" % cluster
    ssm.put_parameter(Name=name, Type="SecureString", Value="api_endpoint=10.0.0.1:6443")
    r = run_module(MOD, dict(cluster_name=cluster, state="read"))
    assert r.rc != 0 and name in r["msg"] and "JSON" in r["msg"]
    r = run_module(MOD, worker_args(cluster))
    assert r.rc != 0 and name in r["msg"]
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == "api_endpoint=10.0.0.1:6443"


def test_aws_error_names_the_parameter_and_the_aws_code(run_module, ssm, cluster, proxy):
    """Without ssm:PutParameter the write fails once, with the AWS error code, and no secret in the output."""
    proxy.fail("PutParameter", "AccessDeniedException")
    r = run_module(MOD, worker_args(cluster, certificate_key=CERT_KEY))
    assert r.rc != 0
    assert r["msg"].startswith("Failed to write SSM parameter /kubeadm-aws/%s/join/worker" % cluster)
    assert r["error"]["code"] == "AccessDeniedException"
    assert proxy.count("PutParameter") == 1  # not retried, the control-plane bundle not attempted
    assert TOKEN not in r.stdout and CERT_KEY not in r.stdout
