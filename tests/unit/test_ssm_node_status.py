"""sesacthon.kubeadm_aws.ssm_node_status against moto_server."""

import json
import time

MOD = "ssm_node_status"


def test_record_idempotent_and_change(run_module, ssm, cluster, proxy):
    args = dict(cluster_name=cluster, node_name="ip-10-0-0-5.ec2.internal", status="joined",
                kubernetes_version="v1.36.3", role="worker", instance_id="i-0123456789abcdef0")
    r = run_module(MOD, args)
    assert r.rc == 0 and r["changed"] is True and r["previous"] is None
    name = "/kubeadm-aws/%s/nodes/ip-10-0-0-5.ec2.internal" % cluster
    assert r["parameter"] == name
    doc = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    assert doc["status"] == "joined" and doc["kubernetes_version"] == "v1.36.3" and "updated_at" in doc

    time.sleep(1.1)  # same state and version later: no rewrite
    proxy.reset()
    r = run_module(MOD, args)
    assert r["changed"] is False and proxy.count("PutParameter") == 0
    assert r["node"]["updated_at"] == doc["updated_at"]

    r = run_module(MOD, dict(args, kubernetes_version="v1.37.2"))
    assert r["changed"] is True and r["previous"]["kubernetes_version"] == "v1.36.3"
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 2


def test_failed_error_truncated_and_redacted(run_module, ssm, cluster):
    err = "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef failed: " + "x" * 2000
    r = run_module(MOD, dict(cluster_name=cluster, node_name="w1", status="failed", error=err,
                             max_error_length=100))
    assert r.rc == 0
    doc = json.loads(ssm.get_parameter(Name="/kubeadm-aws/%s/nodes/w1" % cluster)["Parameter"]["Value"])
    assert len(doc["error"]) == 100 and doc["error"].endswith("...")
    assert "abcdef.0123456789abcdef" not in doc["error"] and "<redacted-token>" in doc["error"]


def test_list_paginated_and_check_mode(run_module, ssm, cluster, proxy):
    prefix = "/kubeadm-aws/%s/nodes" % cluster
    # 11 nodes written directly, one through the module: 12 > 10 per page
    for i in range(11):
        status = "failed" if i % 4 == 0 else "joined"
        ssm.put_parameter(Name="%s/node-%02d" % (prefix, i), Type="String",
                          Value=json.dumps({"node_name": "node-%02d" % i, "status": status}))
    r = run_module(MOD, dict(cluster_name=cluster, node_name="node-99", status="pending"), check=True)
    assert r["changed"] is True and proxy.count("PutParameter") == 0
    assert ssm.get_parameters(Names=[prefix + "/node-99"])["Parameters"] == []
    run_module(MOD, dict(cluster_name=cluster, node_name="node-99", status="pending"))
    # a parameter deeper below nodes/ is not a node
    ssm.put_parameter(Name=prefix + "/node-00/extra", Type="String", Value="{}")

    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, state="query"))
    assert r.rc == 0 and r["changed"] is False
    assert [n["node_name"] for n in r["nodes"]] == ["node-%02d" % i for i in range(11)] + ["node-99"]
    assert r["counts"] == {"failed": 3, "joined": 8, "pending": 1}
    assert proxy.count("GetParametersByPath") == 2  # one paginated query: 12 nodes, 10 per page
    assert set(c.params.get("NextToken") is None for c in proxy.find("GetParametersByPath")) == {True, False}

    r = run_module(MOD, dict(cluster_name=cluster, state="query", status_filter=["failed"]))
    assert [n["node_name"] for n in r["nodes"]] == ["node-00", "node-04", "node-08"]

    r = run_module(MOD, dict(cluster_name=cluster, state="absent", node_name="node-99"))
    assert r["changed"] is True
    assert ssm.get_parameters(Names=[prefix + "/node-99"])["Parameters"] == []


def test_bad_input(run_module, cluster):
    r = run_module(MOD, dict(node_name="n1", status="joined"))
    assert r.rc != 0 and "cluster_name" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, node_name="bad name!", status="joined"))
    assert r.rc != 0 and "node_name" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, node_name="n1"))
    assert r.rc != 0 and "status" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, prefix="no-slash", state="query"))
    assert r.rc != 0 and "prefix" in r["msg"]


def test_many_nodes_recorded_from_one_task(run_module, ssm, cluster, proxy):
    """A play records all its nodes with one module run: one GetParameters per 10 nodes, one
    PutParameter per node whose record changes, nothing written on a repeat."""
    nodes = [dict(node_name="ip-10-0-1-%d.ec2.internal" % i, status="joined", role="worker",
                  instance_id="i-%017d" % i) for i in range(12)]
    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, kubernetes_version="v1.36.3", nodes=nodes))
    assert r.rc == 0 and r["changed"] is True and len(r["results"]) == 12
    assert all(x["changed"] and x["previous"] is None for x in r["results"])
    assert proxy.count("GetParameters") == 2 and proxy.count("PutParameter") == 12
    doc = json.loads(ssm.get_parameter(Name="/kubeadm-aws/%s/nodes/ip-10-0-1-7.ec2.internal" % cluster)["Parameter"]["Value"])
    assert doc["status"] == "joined" and doc["kubernetes_version"] == "v1.36.3" and doc["instance_id"] == "i-%017d" % 7

    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, kubernetes_version="v1.36.3", nodes=nodes))
    assert r["changed"] is False and proxy.count("PutParameter") == 0 and proxy.count("GetParameters") == 2

    nodes[3] = dict(nodes[3], status="failed", error="kubeadm join --token abcdef.0123456789abcdef timed out")
    r = run_module(MOD, dict(cluster_name=cluster, kubernetes_version="v1.36.3", nodes=nodes), check=True)
    assert r["changed"] is True and [x["changed"] for x in r["results"]].count(True) == 1
    assert json.loads(ssm.get_parameter(Name=r["results"][3]["parameter"])["Parameter"]["Value"])["status"] == "joined"
    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, kubernetes_version="v1.36.3", nodes=nodes))
    assert proxy.count("PutParameter") == 1 and r["results"][3]["previous"]["status"] == "joined"
    stored = json.loads(ssm.get_parameter(Name=r["results"][3]["parameter"])["Parameter"]["Value"])
    assert stored["status"] == "failed" and "abcdef.0123456789abcdef" not in stored["error"]


def test_many_nodes_bad_input(run_module, cluster):
    r = run_module(MOD, dict(cluster_name=cluster, node_name="n1", status="joined",
                             nodes=[dict(node_name="n2", status="joined")]))
    assert r.rc != 0 and "node_name" in r["msg"] and "nodes" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, nodes=[dict(node_name="n2")]))
    assert r.rc != 0 and "status" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, nodes=[dict(node_name="bad name!", status="joined")]))
    assert r.rc != 0 and "node_name" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, state="query", nodes=[dict(node_name="n2", status="joined")]))
    assert r.rc != 0 and "nodes" in r["msg"]


def test_absent_deletes_the_record_once(run_module, ssm, cluster):
    name = "/kubeadm-aws/%s/nodes/w1" % cluster
    run_module(MOD, dict(cluster_name=cluster, node_name="w1", status="joined", role="worker"))
    r = run_module(MOD, dict(cluster_name=cluster, node_name="w1", state="absent"), check=True)
    assert r.rc == 0 and r["changed"] is True and len(ssm.get_parameters(Names=[name])["Parameters"]) == 1
    r = run_module(MOD, dict(cluster_name=cluster, node_name="w1", state="absent"))
    assert r.rc == 0 and r["changed"] is True and r["parameter"] == name and r["previous"]["status"] == "joined"
    assert ssm.get_parameters(Names=[name])["Parameters"] == []
    r = run_module(MOD, dict(cluster_name=cluster, node_name="w1", state="absent"))
    assert r.rc == 0 and r["changed"] is False and r["previous"] is None
    r = run_module(MOD, dict(cluster_name=cluster, state="absent"))
    assert r.rc != 0 and "node_name" in r["msg"]


def test_query_of_a_cluster_without_nodes(run_module, cluster, proxy):
    r = run_module(MOD, dict(cluster_name=cluster, state="query"))
    assert r.rc == 0 and r["changed"] is False and r["nodes"] == [] and r["counts"] == {}
    assert proxy.count("PutParameter") == 0


def test_aws_error_names_the_node_and_the_aws_code(run_module, cluster, proxy):
    proxy.fail("GetParametersByPath", "AccessDeniedException")
    r = run_module(MOD, dict(cluster_name=cluster, state="query"))
    assert r.rc != 0 and r["msg"].startswith("Failed to list SSM parameters below /kubeadm-aws/%s/nodes" % cluster)
    assert r["error"]["code"] == "AccessDeniedException"
    proxy.fail("PutParameter", "AccessDeniedException")
    r = run_module(MOD, dict(cluster_name=cluster, node_name="w1", status="joined"))
    assert r.rc != 0 and "/kubeadm-aws/%s/nodes/w1" % cluster in r["msg"]


def test_absent_deletes_several_records_in_one_batch(run_module, ssm, cluster, proxy):
    """node_names: the records that exist are deleted (with one read and one delete for up to 10), the ones that
    do not are no change; check mode deletes nothing; a bad name is refused naming the option."""
    for n in ("w1", "w2"):
        run_module(MOD, dict(cluster_name=cluster, node_name=n, status="joined", role="worker"))
    names = ["/kubeadm-aws/%s/nodes/%s" % (cluster, n) for n in ("w1", "w2", "w3")]
    r = run_module(MOD, dict(cluster_name=cluster, state="absent", node_names=["w1", "w2", "w3"]), check=True)
    assert r.rc == 0 and r["changed"] is True and r["deleted"] == ["w1", "w2"]
    assert len(ssm.get_parameters(Names=names)["Parameters"]) == 2
    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, state="absent", node_names=["w1", "w2", "w3"]))
    assert r.rc == 0 and r["changed"] is True and r["deleted"] == ["w1", "w2"]
    assert ssm.get_parameters(Names=names)["Parameters"] == []
    assert proxy.count("DeleteParameters") == 1 and proxy.count("GetParameters") == 1
    r = run_module(MOD, dict(cluster_name=cluster, state="absent", node_names=["w1", "w2"]))
    assert r.rc == 0 and r["changed"] is False and r["deleted"] == []
    r = run_module(MOD, dict(cluster_name=cluster, state="absent", node_names=["bad name!"]))
    assert r.rc != 0 and "node_name" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, state="query", node_names=["w1"]))
    assert r.rc != 0 and "node_names" in r["msg"]
