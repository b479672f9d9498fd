"""Throttling: the proxy answers the first 2 calls of every action with a throttling error.

botocore's own retries are switched off (AWS_MAX_ATTEMPTS=1), so only the modules' AWSRetry decorator
(jittered backoff, with SSM's ThrottlingException added) can make these runs succeed.
"""

import pytest

NO_BOTOCORE_RETRY = {"AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
TOKEN = "abcdef.0123456789abcdef"
CA_HASH = "sha256:" + "0b" * 32


def assert_retried(proxy, action, throttles=2):
    assert proxy.count(action, throttled=True) == throttles, proxy.calls
    assert proxy.count(action, throttled=False) >= 1, proxy.calls


def test_ssm_join_material_survives_throttling(run_module, ssm, cluster, proxy):
    proxy.throttle_first(2)
    r = run_module("ssm_join_material", dict(cluster_name=cluster, api_endpoint="10.0.0.1:6443", token=TOKEN,
                                             ca_cert_hashes=[CA_HASH]), env=NO_BOTOCORE_RETRY)
    assert r.rc == 0 and r["changed"] is True, r
    assert_retried(proxy, "GetParameters")
    assert_retried(proxy, "PutParameter")
    assert ssm.get_parameter(Name="/kubeadm-aws/%s/join/worker" % cluster)["Parameter"]["Version"] == 1


def test_ssm_node_status_list_survives_throttling(run_module, ssm, cluster, proxy):
    ssm.put_parameter(Name="/kubeadm-aws/%s/nodes/n1" % cluster, Type="String", Value='{"status": "joined"}')
    proxy.throttle_first(2)
    r = run_module("ssm_node_status", dict(cluster_name=cluster, state="query"), env=NO_BOTOCORE_RETRY)
    assert r.rc == 0 and [n["node_name"] for n in r["nodes"]] == ["n1"], r
    assert_retried(proxy, "GetParametersByPath")


def test_ssm_init_lock_survives_throttling(run_module, cluster, proxy):
    proxy.throttle_first(2)
    r = run_module("ssm_init_lock", dict(cluster_name=cluster, holder="h1"), env=NO_BOTOCORE_RETRY)
    assert r.rc == 0 and r["acquired"] is True, r
    assert_retried(proxy, "GetParameters")
    assert_retried(proxy, "PutParameter")


def test_ec2_node_identity_survives_throttling(run_module, ec2, ami, cluster, proxy):
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2)["Instances"]]
    proxy.throttle_first(2)
    r = run_module("ec2_node_identity", dict(cluster_name=cluster, instance_ids=ids), env=NO_BOTOCORE_RETRY)
    assert r.rc == 0 and r["changed"] is True, r
    assert_retried(proxy, "DescribeInstances")
    assert_retried(proxy, "CreateTags")
    # one DescribeInstances, one CreateTags for the cluster tag, one per instance for the provider ID
    assert proxy.count("DescribeInstances") == 1 and proxy.count("CreateTags") == 3


def test_control_env_disables_botocore_retries(cluster, proxy, monkeypatch):
    """Control: the proxy really throttles, and AWS_MAX_ATTEMPTS=1 really switches botocore's own retries
    off for a client built with a default config (as amazon.aws builds it): one throttle = failure."""
    import boto3
    import botocore
    for k, v in NO_BOTOCORE_RETRY.items():
        monkeypatch.setenv(k, v)
    proxy.throttle_first(1)
    client = boto3.session.Session().client(
        "ssm", endpoint_url=proxy.url, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=botocore.config.Config(user_agent="control"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.get_parameters(Names=["/x"])
    assert e.value.response["Error"]["Code"] == "ThrottlingException"
    assert proxy.count("GetParameters", throttled=None) == 1
