"""docs/iam/*.json: the IAM policies docs/iam.md documents, loaded as they are.

What is shown, and how:

* every policy is valid IAM: moto's IAM ``CreatePolicy`` validates the grammar of the identity policies
  (a malformed one is refused, see the control case), KMS ``CreateKey`` takes the key policy;
* docs/iam.md refers to every file, and the join-workers policy's tag keys are the ones
  ``ec2_node_identity`` writes (read from the module's documentation and code, not copied here);
* a ``moto_server`` with IAM enforcement (``/moto-api/reset-auth``, what ``INITIAL_NO_AUTH_ACTION_COUNT``
  sets at start-up) and IAM users created with the policies: their keys make real calls.

moto's evaluator (moto 5, ``moto/iam/access_control.py``) has two limits that bound what the last part
can show, and no hand-made evaluator stands in for them here:

* for SSM and EC2 it authorises every call against the resource ``*``: a statement whose ``Resource`` is
  an ARN never matches, so a resource-scoped Allow never allows (``test_moto_cannot_show_resource_scoped_allows``
  pins this down, and fails once moto learns resource ARNs, so that the assertions can move over);
* it knows the condition operator ``StringEquals`` only, with no request context (no ``aws:TagKeys``,
  ``aws:RequestTag``, ``aws:ResourceTag``, ``kms:EncryptionContext``), and counts an Allow whose condition
  does not match as an explicit deny.

So the enforced calls show the denials: the join-workers credential is refused the control-plane bundle,
a ``kubeadm-aws/role=control-plane`` tag, ``DeleteParameters`` and ``RunInstances``; and the allows moto
can decide (``DescribeInstances`` on ``*``) for both credentials. That the bootstrap credential may read
the control-plane bundle and that the join-workers one may tag its workers with exactly its two keys
rest on the documents (asserted structurally below) and on AWS's evaluation; docs/lab.md says the same.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from conftest import REGION, free_port, wait_http

REPO = Path(__file__).resolve().parents[2]
IAM_DIR = REPO / "docs" / "iam"
ACCOUNT = "123456789012"  # moto's default account
CLUSTER = "lab"
PREFIX = "/kubeadm-aws/%s" % CLUSTER
KEY_POLICIES = {"kms-key-policy.json"}


def _substituted(text, key_id="00000000-0000-0000-0000-000000000000"):
    for placeholder, value in (("REGION", REGION), ("ACCOUNT", ACCOUNT), ("CLUSTER", CLUSTER), ("BACKUP_KEY_ID", key_id),
                               ("KEY_ID", key_id), ("BUCKET", "lab-backups"), ("KEY_ADMIN_ROLE", "key-admin")):
        text = re.sub(r"\b%s\b" % placeholder, value, text)
    return text


def _policy(name):
    return json.loads(_substituted((IAM_DIR / name).read_text()))


def _statement(policy, sid):
    found = [s for s in policy["Statement"] if s.get("Sid") == sid]
    assert len(found) == 1, "no statement %s" % sid
    return found[0]


def _as_list(v):
    return v if isinstance(v, list) else [v]


POLICIES = sorted(p.name for p in IAM_DIR.glob("*.json"))


def test_iam_md_refers_to_every_policy_file():
    text = (REPO / "docs" / "iam.md").read_text()
    assert POLICIES, "docs/iam/ holds no policy"
    missing = [p for p in POLICIES if "iam/%s" % p not in text]
    assert not missing, "docs/iam.md does not refer to %s" % missing
    assert "```json" not in text, "policies belong in docs/iam/*.json, not inline in docs/iam.md"


@pytest.fixture(scope="module")
def enforcing_moto(tmp_path_factory):
    """A moto_server of this module's own (IAM enforcement is global to a server)."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto-iam") / "moto.log"
    exe = Path(sys.executable).parent / "moto_server"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="inf")
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd + ["-H", "127.0.0.1", "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT, env=env)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_http(url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _admin(url, service):
    return boto3.client(service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.mark.parametrize("name", [p for p in POLICIES if p not in KEY_POLICIES])
def test_identity_policies_are_valid_iam(enforcing_moto, name):
    iam = _admin(enforcing_moto, "iam")
    iam.create_policy(PolicyName="check-" + name[:-5], PolicyDocument=json.dumps(_policy(name)))


def test_a_malformed_policy_is_refused(enforcing_moto):
    """Control case: moto's validation is real (the test above would catch a broken document)."""
    iam = _admin(enforcing_moto, "iam")
    bad = _policy("join-workers.json")
    bad["Statement"][0]["Effect"] = "Alow"
    with pytest.raises(ClientError) as e:
        iam.create_policy(PolicyName="broken", PolicyDocument=json.dumps(bad))
    assert e.value.response["Error"]["Code"] == "MalformedPolicyDocument"


def test_key_policy_is_taken_by_kms(enforcing_moto):
    kms = _admin(enforcing_moto, "kms")
    policy = _policy("kms-key-policy.json")
    key = kms.create_key(Policy=json.dumps(policy), Description="join material")["KeyMetadata"]["KeyId"]
    stored = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    assert stored == policy
    contexts = [s["Condition"] for s in policy["Statement"] if "Condition" in s]
    assert all(any("kms:EncryptionContext:PARAMETER_ARN" in ops for ops in c.values()) for c in contexts), contexts


def _node_identity_tag_keys():
    """The tag keys ec2_node_identity writes, from its documentation (provider_id_tag's default) and code."""
    source = (REPO / "plugins" / "modules" / "ec2_node_identity.py").read_text()
    doc = yaml.safe_load(re.search(r'DOCUMENTATION = r?"""(.*?)"""', source, re.S).group(1))
    cluster_key = re.search(r'cluster_key = "([^"]+)" % module.params\["cluster_name"\]', source).group(1)
    return {cluster_key % CLUSTER, doc["options"]["provider_id_tag"]["default"]}


def test_tag_keys_are_the_ones_the_code_writes():
    keys = _node_identity_tag_keys()
    for name, sid in (("join-workers.json", "WorkerIdentityTags"), ("bootstrap.json", "NodeIdentityTags")):
        statement = _statement(_policy(name), sid)
        allowed = set(statement["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"])
        assert allowed == keys, (name, allowed, keys)
        assert statement["Condition"]["Null"] == {"aws:TagKeys": "false"}  # no empty key list slips through
    join = _policy("join-workers.json")
    assert _statement(join, "WorkerIdentityTags")["Condition"]["StringEquals"]["aws:ResourceTag/kubeadm-aws/role"] == "worker"
    deny = _statement(join, "NeverRoleOrClusterTags")
    assert deny["Effect"] == "Deny" and "kubeadm-aws/role" in deny["Condition"]["ForAnyValue:StringLike"]["aws:TagKeys"]


def test_join_workers_policy_names_the_control_plane_bundle_only_in_denies():
    arn = "arn:aws:ssm:%s:%s:parameter%s/join/control-plane" % (REGION, ACCOUNT, PREFIX)
    join = _policy("join-workers.json")
    wide = {"arn:aws:ssm:%s:%s:parameter%s%s" % (REGION, ACCOUNT, PREFIX, tail) for tail in ("/*", "/join/*", "/join/control-plane")}
    for statement in join["Statement"]:
        if statement["Effect"] == "Allow" and any(a.startswith("ssm:") for a in _as_list(statement["Action"])):
            assert not wide & set(_as_list(statement["Resource"])), statement
    deny = _statement(join, "NeverTheControlPlaneBundle")
    assert arn in deny["Resource"] and {"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"} <= set(deny["Action"])
    bootstrap = _statement(_policy("bootstrap.json"), "ClusterParameters")
    assert bootstrap["Resource"] == "arn:aws:ssm:%s:%s:parameter%s/*" % (REGION, ACCOUNT, PREFIX)


@pytest.fixture(scope="module")
def principals(enforcing_moto):
    """IAM users with the bootstrap and join-workers policies, a control-plane bundle and a worker
    instance, then IAM enforcement switched on: {name: boto3 session kwargs}."""
    iam, ssm, ec2 = (_admin(enforcing_moto, s) for s in ("iam", "ssm", "ec2"))
    users = {}
    for name in ("bootstrap", "join-workers"):
        user = "kubeadm-aws-%s-%s" % (CLUSTER, name)
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=json.dumps(_policy(name + ".json")))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        users[name] = dict(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    for material in ("worker", "control-plane"):
        ssm.put_parameter(Name="%s/join/%s" % (PREFIX, material), Value='{"material": "%s"}' % material,
                          Type="SecureString", Overwrite=True)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    worker = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[{
        "ResourceType": "instance", "Tags": [{"Key": "kubeadm-aws/cluster", "Value": CLUSTER},
                                             {"Key": "kubeadm-aws/role", "Value": "worker"}]}])["Instances"][0]
    import urllib.request
    req = urllib.request.Request(enforcing_moto + "/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req).read()
    yield {"users": users, "worker": worker["InstanceId"], "image": image}
    req = urllib.request.Request(enforcing_moto + "/moto-api/reset-auth", data=b"inf", method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req).read()


def _as(url, principals, who, service):
    return boto3.client(service, region_name=REGION, endpoint_url=url, **principals["users"][who])


def _refused(call, who, action):
    """The call is refused by IAM, for this user and action (moto answers SSM's denial as XML, so the
    error code botocore reports is the HTTP status: the message is what counts)."""
    with pytest.raises(ClientError) as e:
        call()
    response = e.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403, response
    expected = "user/kubeadm-aws-%s-%s is not authorized to perform: %s" % (CLUSTER, who, action)
    assert expected in response["Error"]["Message"], response["Error"]
    return True


def test_join_workers_credential_cannot_read_the_control_plane_bundle(enforcing_moto, principals):
    ssm = _as(enforcing_moto, principals, "join-workers", "ssm")
    name = PREFIX + "/join/control-plane"
    assert _refused(lambda: ssm.get_parameter(Name=name, WithDecryption=True), "join-workers", "ssm:GetParameter")
    assert _refused(lambda: ssm.get_parameters(Names=[name], WithDecryption=True), "join-workers", "ssm:GetParameters")
    assert _refused(lambda: ssm.get_parameters_by_path(Path=PREFIX, Recursive=True), "join-workers", "ssm:GetParametersByPath")
    assert _refused(lambda: ssm.delete_parameters(Names=[name]), "join-workers", "ssm:DeleteParameters")


def test_join_workers_credential_cannot_make_a_control_plane(enforcing_moto, principals):
    ec2 = _as(enforcing_moto, principals, "join-workers", "ec2")
    worker = principals["worker"]
    tag = [{"Key": "kubeadm-aws/role", "Value": "control-plane"}]
    assert _refused(lambda: ec2.create_tags(Resources=[worker], Tags=tag), "join-workers", "ec2:CreateTags")
    assert _refused(lambda: ec2.run_instances(ImageId=principals["image"], MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": tag}]), "join-workers", "ec2:RunInstances")
    label = [{"Key": "k8s.io/label/node-restriction.kubernetes.io/pool", "Value": "control"}]
    assert _refused(lambda: ec2.create_tags(Resources=[worker], Tags=label), "join-workers", "ec2:CreateTags")


def test_both_credentials_find_the_instances(enforcing_moto, principals):
    for who in ("bootstrap", "join-workers"):
        ec2 = _as(enforcing_moto, principals, who, "ec2")
        found = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        assert principals["worker"] in found, who


def test_moto_cannot_show_resource_scoped_allows(enforcing_moto, principals):
    """moto's limit, pinned: the bootstrap credential's Allow on <prefix>/* does not match moto's
    resource '*', so moto refuses what AWS allows. When this fails, moto matches resource ARNs: move the
    bootstrap and worker-bundle reads into the tests above as allowed."""
    ssm = _as(enforcing_moto, principals, "bootstrap", "ssm")
    assert _refused(lambda: ssm.get_parameter(Name=PREFIX + "/join/control-plane", WithDecryption=True), "bootstrap", "ssm:GetParameter")
    join = _as(enforcing_moto, principals, "join-workers", "ssm")
    assert _refused(lambda: join.get_parameter(Name=PREFIX + "/join/worker", WithDecryption=True), "join-workers", "ssm:GetParameter")
