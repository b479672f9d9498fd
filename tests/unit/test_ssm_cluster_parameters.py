"""sesacthon.kubeadm_aws.ssm_cluster_parameters against moto_server: what a teardown deletes, and what
it leaves alone."""

MOD = "ssm_cluster_parameters"


def _seed(ssm, cluster, n_nodes=12):
    prefix = "/kubeadm-aws/%s" % cluster
    names = ["%s/join/worker" % prefix, "%s/join/control-plane" % prefix, "%s/init/state" % prefix,
             "%s/init/takeover/abc" % prefix] + ["%s/nodes/node-%02d" % (prefix, i) for i in range(n_nodes)]
    for name in names:
        secure = "/join/" in name
        ssm.put_parameter(Name=name, Type="SecureString" if secure else "String", Value="{}")
    return prefix, sorted(names)


def test_query_lists_every_level_without_decrypting(run_module, ssm, cluster, proxy):
    prefix, names = _seed(ssm, cluster)
    r = run_module(MOD, dict(cluster_name=cluster))
    assert r.rc == 0 and r["changed"] is False and r["prefix"] == prefix
    assert [p["name"] for p in r["parameters"]] == names
    assert {p["name"]: p["type"] for p in r["parameters"]}["%s/join/worker" % prefix] == "SecureString"
    assert all(c.params.get("WithDecryption") is False for c in proxy.find("GetParametersByPath"))


def test_absent_deletes_the_cluster_and_nothing_else(run_module, ssm, cluster, proxy):
    prefix, names = _seed(ssm, cluster)
    # Another cluster whose name starts with this one's: a different path, never touched.
    ssm.put_parameter(Name=prefix + "x/init/state", Type="String", Value="{}")
    r = run_module(MOD, dict(cluster_name=cluster, state="absent"), check=True)
    assert r.rc == 0 and r["changed"] and r["deleted"] == names and proxy.count("DeleteParameters") == 0
    r = run_module(MOD, dict(cluster_name=cluster, state="absent"))
    assert r.rc == 0 and r["changed"] and r["deleted"] == names
    assert proxy.count("DeleteParameters") == 2  # 16 names, 10 per call
    assert ssm.get_parameters_by_path(Path=prefix, Recursive=True)["Parameters"] == []
    assert ssm.get_parameter(Name=prefix + "x/init/state")["Parameter"]["Value"] == "{}"
    again = run_module(MOD, dict(cluster_name=cluster, state="absent"))
    assert again.rc == 0 and again["changed"] is False and again["deleted"] == []


def test_a_custom_prefix_and_a_denied_call(run_module, ssm, cluster, proxy):
    ssm.put_parameter(Name="/teams/%s/init/state" % cluster, Type="String", Value="{}")
    r = run_module(MOD, dict(cluster_name=cluster, prefix="/teams/%s/" % cluster))
    assert [p["name"] for p in r["parameters"]] == ["/teams/%s/init/state" % cluster]
    proxy.fail("DeleteParameters")
    r = run_module(MOD, dict(cluster_name=cluster, prefix="/teams/%s" % cluster, state="absent"))
    assert r.rc != 0 and "Failed to delete SSM parameters" in r["msg"] and r["prefix"] == "/teams/%s" % cluster
    assert r.get("error", {}).get("code") == "AccessDeniedException", r


def test_a_bad_prefix_is_refused_before_any_call(run_module, cluster, proxy):
    r = run_module(MOD, dict(cluster_name=cluster, prefix="no-slash", state="absent"))
    assert r.rc != 0 and "must start with '/'" in r["msg"] and proxy.calls == []
