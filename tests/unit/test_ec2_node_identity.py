"""sesacthon.kubeadm_aws.ec2_node_identity against moto_server (EC2), counting API calls."""

import time

MOD = "ec2_node_identity"
PID_TAG = "kubeadm-aws/provider-id"


def launch(ec2, ami, n):
    r = ec2.run_instances(ImageId=ami, MinCount=n, MaxCount=n, InstanceType="t3.medium",
                          Placement={"AvailabilityZone": "us-east-1b"})
    return [i["InstanceId"] for i in r["Instances"]]


def tags_of(ec2, ids):
    out = {}
    for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for i in res["Instances"]:
            out[i["InstanceId"]] = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
    return out


def test_ten_instances_one_describe_one_cluster_tag_call(run_module, ec2, ami, cluster, proxy):
    ids = launch(ec2, ami, 10)
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids))
    assert r.rc == 0, r
    assert r["changed"] is True
    assert proxy.count("DescribeInstances") == 1
    key = "kubernetes.io/cluster/%s" % cluster
    creates = proxy.find("CreateTags")
    cluster_calls = [c for c in creates if c.params["Tag.1.Key"] == [key]]
    pid_calls = [c for c in creates if c.params["Tag.1.Key"] == [PID_TAG]]
    assert len(cluster_calls) == 1  # one CreateTags for all 10 instances
    assert sorted(v[0] for k, v in cluster_calls[0].params.items() if k.startswith("ResourceId.")) == sorted(ids)
    assert len(pid_calls) == 10 and len(creates) == 11  # the per-instance tag: one call per instance, documented

    desc = {i["InstanceId"]: i for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]
            for i in res["Instances"]}
    tags = tags_of(ec2, ids)
    for entry in r["instances"]:
        iid = entry["instance_id"]
        assert entry["provider_id"] == "aws:///us-east-1b/%s" % iid
        assert entry["availability_zone"] == "us-east-1b"
        assert entry["node_name"] == desc[iid]["PrivateDnsName"] and entry["node_name"].endswith(".ec2.internal")
        assert entry["node_name"].startswith("ip-" + desc[iid]["PrivateIpAddress"].replace(".", "-"))
        assert entry["private_ip"] == desc[iid]["PrivateIpAddress"]
        assert tags[iid][key] == "owned" and tags[iid][PID_TAG] == entry["provider_id"]
    assert [e["instance_id"] for e in r["instances"]] == ids
    assert r["by_instance_id"][ids[3]]["provider_id"] == "aws:///us-east-1b/%s" % ids[3]

    proxy.reset()  # re-run: no change, one DescribeInstances, no CreateTags
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids))
    assert r["changed"] is False and proxy.count("DescribeInstances") == 1 and proxy.count("CreateTags") == 0


def test_cluster_tag_only_is_exactly_one_call(run_module, ec2, ami, cluster, proxy):
    ids = launch(ec2, ami, 10)
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids, provider_id_tag="", cluster_tag_value="shared"))
    assert r.rc == 0 and r["changed"] is True
    assert proxy.count("DescribeInstances") == 1 and proxy.count("CreateTags") == 1
    assert all(t["kubernetes.io/cluster/%s" % cluster] == "shared" for t in tags_of(ec2, ids).values())
    # switching owned<->shared re-tags them, again in one call
    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids, provider_id_tag=""))
    assert r["changed"] is True and proxy.count("CreateTags") == 1 and len(r["tags_added"]["cluster_tag"]) == 10


def test_only_missing_instances_are_tagged(run_module, ec2, ami, cluster, proxy):
    ids = launch(ec2, ami, 3)
    key = "kubernetes.io/cluster/%s" % cluster
    ec2.create_tags(Resources=ids[:2], Tags=[{"Key": key, "Value": "owned"}])
    ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": PID_TAG, "Value": "aws:///us-east-1b/%s" % ids[0]}])
    ec2.create_tags(Resources=[ids[1]], Tags=[{"Key": PID_TAG, "Value": "wrong"}])
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids))
    assert r["tags_added"] == {"cluster_tag": [ids[2]], "provider_id_tag": [ids[1], ids[2]]}
    assert proxy.count("CreateTags") == 3


def test_check_mode(run_module, ec2, ami, cluster, proxy):
    ids = launch(ec2, ami, 2)
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids), check=True)
    assert r.rc == 0 and r["changed"] is True
    assert r["tags_added"] == {"cluster_tag": ids, "provider_id_tag": ids}
    assert proxy.count("CreateTags") == 0
    assert all("kubernetes.io/cluster/%s" % cluster not in t for t in tags_of(ec2, ids).values())
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids, tag=False))
    assert r["changed"] is False and proxy.count("CreateTags") == 0


def test_bad_input(run_module, ec2, ami, cluster, proxy):
    ids = launch(ec2, ami, 1)
    unknown = "i-0123456789abcdef0"
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=[ids[0], unknown], not_found_timeout=0))
    assert r.rc != 0 and unknown in r["msg"] and r["missing_instance_ids"] == [unknown]
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids={"not": "a list"}))
    assert r.rc != 0 and "instance_ids" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=["i-123", ids[0]]))
    assert r.rc != 0 and "instance_ids" in r["msg"] and "i-123" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=[]))
    assert r.rc != 0 and "instance_ids" in r["msg"]
    r = run_module(MOD, dict(instance_ids=ids))
    assert r.rc != 0 and "cluster_name" in r["msg"]
    assert proxy.count("DescribeInstances") == 1  # only the unknown-id case reached EC2


def test_report_only_tags_nothing(run_module, ec2, ami, cluster, proxy):
    """tag=false: the identities, nothing tagged, nothing reported as added."""
    ids = launch(ec2, ami, 2)
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids, tag=False))
    assert r.rc == 0 and r["changed"] is False
    assert r["tags_added"] == {"cluster_tag": [], "provider_id_tag": []}
    assert [e["provider_id"] for e in r["instances"]] == ["aws:///us-east-1b/%s" % i for i in ids]
    assert proxy.count("DescribeInstances") == 1 and proxy.count("CreateTags") == 0
    assert all("kubernetes.io/cluster/%s" % cluster not in t for t in tags_of(ec2, ids).values())


def test_aws_errors_name_the_instances_and_the_aws_code(run_module, ec2, ami, cluster, proxy):
    ids = launch(ec2, ami, 1)
    unknown = "i-0123456789abcdef0"
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=[ids[0], unknown], not_found_timeout=0))
    assert r.rc != 0 and r["field"] == "instance_ids" and r["error"]["code"].startswith("InvalidInstanceID")
    proxy.fail("CreateTags", "UnauthorizedOperation")
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids))
    assert r.rc != 0 and ids[0] in r["msg"] and r["error"]["code"] == "UnauthorizedOperation"


def test_instance_not_found_right_after_launch_is_retried(run_module, ec2, ami, cluster, proxy):
    """EC2 is eventually consistent: just after RunInstances, DescribeInstances may answer
    InvalidInstanceID.NotFound for an instance that exists. The module looks again (backoff 1 s, 2 s)."""
    ids = launch(ec2, ami, 2)
    proxy.fail_first("DescribeInstances", 2, "InvalidInstanceID.NotFound",
                     "The instance ID '%s' does not exist" % ids[1])
    started = time.monotonic()
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=ids))
    assert r.rc == 0 and r["changed"] is True, r
    assert time.monotonic() - started >= 3
    assert [e["provider_id"] for e in r["instances"]] == ["aws:///us-east-1b/%s" % i for i in ids]
    described = proxy.find("DescribeInstances", throttled=False)
    assert [c.error for c in described] == ["InvalidInstanceID.NotFound"] * 2 + [None]
    assert proxy.count("CreateTags") == 3


def test_instance_still_unknown_fails_after_the_timeout_naming_it(run_module, ec2, ami, cluster, proxy):
    ids = launch(ec2, ami, 1)
    unknown = "i-0123456789abcdef1"
    started = time.monotonic()
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=[unknown, ids[0]], not_found_timeout=3))
    elapsed = time.monotonic() - started
    assert r.rc != 0 and r["missing_instance_ids"] == [unknown] and r["field"] == "instance_ids", r
    assert unknown in r["msg"] and ids[0] not in r["msg"] and "3 seconds" in r["msg"]
    assert r["error"]["code"] == "InvalidInstanceID.NotFound"
    assert 3 <= elapsed < 30
    assert proxy.count("DescribeInstances") == 3  # at 0 s, 1 s and 3 s
    assert proxy.count("CreateTags") == 0
    r = run_module(MOD, dict(cluster_name=cluster, instance_ids=[ids[0]], not_found_timeout=-1))
    assert r.rc != 0 and r["field"] == "not_found_timeout"
