"""sesacthon.kubeadm_aws.ssm_init_lock against moto_server, including real concurrent callers."""

import datetime
import json

MOD = "ssm_init_lock"


def lock_name(cluster):
    return "/kubeadm-aws/%s/init/lock" % cluster


def read_lock(ssm, cluster):
    ps = ssm.get_parameters(Names=[lock_name(cluster)])["Parameters"]
    return json.loads(ps[0]["Value"]) if ps else None


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def put_stale_lock(ssm, cluster, holder="old-run", lock_id="0123456789abcdef0123456789abcdef"):
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    ssm.put_parameter(Name=lock_name(cluster), Type="String", Value=json.dumps({
        "schema": 1, "holder": holder, "lock_id": lock_id, "acquired_at": iso(past),
        "expires_at": iso(past + datetime.timedelta(minutes=30))}))


def test_acquire_reentrant_contended_release(run_module, ssm, cluster, proxy):
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a", ttl="10m"))
    assert r.rc == 0 and r["acquired"] is True and r["changed"] is True and r["holder"] == "run-a"
    assert 590 <= r["lock"]["ttl_seconds"] <= 600 and r["initialized"] is False
    put = proxy.find("PutParameter")
    assert len(put) == 1 and put[0].params["Overwrite"] is False and put[0].params["Name"] == lock_name(cluster)

    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a"))
    assert r["acquired"] is False and r["changed"] is False and r["holder"] == "run-a"  # not re-entrant by default
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a", reentrant=True))
    assert r["acquired"] is True and r["changed"] is False
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-b"))
    assert r.rc == 0 and r["acquired"] is False and r["holder"] == "run-a" and r["changed"] is False

    r = run_module(MOD, dict(cluster_name=cluster, holder="run-b", state="released"))
    assert r.rc != 0 and "run-a" in r["msg"] and read_lock(ssm, cluster)["holder"] == "run-a"
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a", state="released"), check=True)
    assert r["changed"] is True and read_lock(ssm, cluster) is not None
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a", state="released"))
    assert r["changed"] is True and r["released"] is True and read_lock(ssm, cluster) is None
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a", state="released"))
    assert r["changed"] is False and r["released"] is False

    run_module(MOD, dict(cluster_name=cluster, holder="run-c"))
    r = run_module(MOD, dict(cluster_name=cluster, state="released", force=True))
    assert r["changed"] is True and read_lock(ssm, cluster) is None


def test_check_mode(run_module, ssm, cluster, proxy):
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a"), check=True)
    assert r["acquired"] is True and r["changed"] is True
    assert proxy.count("PutParameter") == 0 and read_lock(ssm, cluster) is None


def test_concurrent_callers_exactly_one_wins(run_module, ssm, cluster, proxy):
    """Several module processes at once; the proxy holds their first read until all have sent it, so all
    of them find the lock absent and really race on PutParameter(Overwrite=False)."""
    rounds, callers = 3, 3
    for rnd in range(rounds):
        c = "%s-r%d" % (cluster, rnd)
        proxy.reset()
        proxy.hold("GetParameters", callers)
        procs = [run_module.start(MOD, dict(cluster_name=c, holder="caller-%d" % i)) for i in range(callers)]
        results = [run_module.finish(p) for p in procs]
        assert all(r.rc == 0 for r in results), [r.stderr for r in results]
        creates = [x for x in proxy.find("PutParameter") if x.params["Name"] == lock_name(c)]
        assert len(creates) == callers and all(x.params["Overwrite"] is False for x in creates)
        winners = [r for r in results if r["acquired"]]
        assert len(winners) == 1, results
        holder = read_lock(ssm, c)["holder"]
        assert winners[0]["holder"] == holder
        assert all(r["holder"] == holder for r in results)


def test_concurrent_callers_same_holder_name(run_module, ssm, cluster, proxy):
    """Two runs that use the same holder name (e.g. the first control plane's hostname from two
    controllers): still exactly one proceeds."""
    proxy.hold("GetParameters", 2)
    procs = [run_module.start(MOD, dict(cluster_name=cluster, holder="cp1")) for _ in range(2)]
    results = [run_module.finish(p) for p in procs]
    assert all(r.rc == 0 for r in results), [r.stderr for r in results]
    assert sorted(r["acquired"] for r in results) == [False, True]


def test_stale_lock_takeover(run_module, ssm, cluster, proxy):
    put_stale_lock(ssm, cluster)
    r = run_module(MOD, dict(cluster_name=cluster, holder="new-run"), check=True)
    assert r["acquired"] is True and r["taken_over"] is True and read_lock(ssm, cluster)["holder"] == "old-run"
    r = run_module(MOD, dict(cluster_name=cluster, holder="new-run", ttl="5m"))
    assert r.rc == 0 and r["acquired"] is True and r["taken_over"] is True and r["previous_holder"] == "old-run"
    lock = read_lock(ssm, cluster)
    assert lock["holder"] == "new-run" and lock["lock_id"] != "0123456789abcdef0123456789abcdef"
    # the claim was created with Overwrite=False and removed afterwards
    claims = [x for x in proxy.find("PutParameter") if "/init/takeover/" in x.params["Name"]]
    assert len(claims) == 1 and claims[0].params["Overwrite"] is False
    assert ssm.get_parameters_by_path(Path="/kubeadm-aws/%s/init/takeover" % cluster)["Parameters"] == []


def test_takeover_blocked_by_concurrent_claim(run_module, ssm, cluster):
    """Another caller is taking over the same stale value (its claim exists): we must not."""
    put_stale_lock(ssm, cluster, lock_id="feedfeedfeedfeedfeedfeedfeedfeed")
    ssm.put_parameter(Name="/kubeadm-aws/%s/init/takeover/feedfeedfeedfeedfeedfeedfeedfeed" % cluster,
                      Type="String", Value='{"holder": "other"}')
    r = run_module(MOD, dict(cluster_name=cluster, holder="new-run"))
    assert r.rc == 0 and r["acquired"] is False and read_lock(ssm, cluster)["holder"] == "old-run"


def test_concurrent_takeover_exactly_one_wins(run_module, ssm, cluster, proxy):
    put_stale_lock(ssm, cluster)
    proxy.hold("GetParameters", 3)  # all three read the same stale lock before anyone claims it
    procs = [run_module.start(MOD, dict(cluster_name=cluster, holder="taker-%d" % i)) for i in range(3)]
    results = [run_module.finish(p) for p in procs]
    assert all(r.rc == 0 for r in results), [r.stderr for r in results]
    winners = [r for r in results if r["acquired"]]
    assert len(winners) == 1 and winners[0]["taken_over"] is True
    claims = [x for x in proxy.find("PutParameter") if "/init/takeover/" in x.params["Name"]]
    assert len(claims) == 3  # all three tried to claim the same stale lock; one claim succeeded
    assert read_lock(ssm, cluster)["holder"] == winners[0]["lock"]["holder"]


def test_initialized_state(run_module, ssm, cluster):
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a"))
    assert r["initialized"] is False
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a", state="initialized",
                             kubernetes_version="v1.36.3"))
    assert r["changed"] is True and r["initialized"] is True and r["acquired"] is True
    assert r["init_state"]["kubernetes_version"] == "v1.36.3"
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a", state="initialized",
                             kubernetes_version="v1.36.3"))
    assert r["changed"] is False
    r = run_module(MOD, dict(cluster_name=cluster, state="query"))
    assert r["initialized"] is True and r["holder"] == "run-a" and r["changed"] is False
    # a later run sees the cluster is initialised when it asks for the lock
    run_module(MOD, dict(cluster_name=cluster, holder="run-a", state="released"))
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-b"))
    assert r["acquired"] is True and r["initialized"] is True


def test_bad_input(run_module, cluster):
    r = run_module(MOD, dict(holder="x"))
    assert r.rc != 0 and "cluster_name" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster))
    assert r.rc != 0 and "holder" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, holder="a b"))
    assert r.rc != 0 and "holder" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, holder="a", ttl="0"))
    assert r.rc != 0 and "ttl" in r["msg"]
    r = run_module(MOD, dict(cluster_name=cluster, state="released"))
    assert r.rc != 0 and "holder" in r["msg"]


def test_query_reports_without_writing(run_module, ssm, cluster, proxy):
    r = run_module(MOD, dict(cluster_name=cluster, state="query"))
    assert r.rc == 0 and r["changed"] is False and r["acquired"] is False
    assert r["holder"] is None and r["lock"] is None and r["initialized"] is False and r["init_state"] is None
    run_module(MOD, dict(cluster_name=cluster, holder="run-a", ttl="10m"))
    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, state="query", holder="run-a"))
    assert r["acquired"] is True and r["holder"] == "run-a" and r["lock"]["expired"] is False
    r = run_module(MOD, dict(cluster_name=cluster, state="query", holder="run-b"))
    assert r["acquired"] is False and r["holder"] == "run-a"
    assert proxy.count("PutParameter") == 0 and proxy.count("DeleteParameters") == 0
    assert read_lock(ssm, cluster)["holder"] == "run-a"


def test_lock_that_is_not_json_is_refused(run_module, ssm, cluster):
    ssm.put_parameter(Name=lock_name(cluster), Type="String", Value="held by someone")
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a"))
    assert r.rc != 0 and lock_name(cluster) in r["msg"] and "JSON" in r["msg"]
    assert ssm.get_parameter(Name=lock_name(cluster))["Parameter"]["Value"] == "held by someone"


def test_aws_error_names_the_lock_and_the_aws_code(run_module, ssm, cluster, proxy):
    proxy.fail("PutParameter", "AccessDeniedException")
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a"))
    assert r.rc != 0 and r["msg"].startswith("Failed to write SSM parameter %s" % lock_name(cluster))
    assert r["error"]["code"] == "AccessDeniedException" and read_lock(ssm, cluster) is None


# ------------------------------------------------------------------------------------------------
# faults: a claim left by a dead run, a create whose response was lost (issue 19, defect 8)
# ------------------------------------------------------------------------------------------------
NO_BOTOCORE_RETRY = {"AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"}
STALE_ID = "0123456789abcdef0123456789abcdef"


def takeover_path(cluster):
    return "/kubeadm-aws/%s/init/takeover" % cluster


def claims_left(ssm, cluster, path=None):
    return sorted(p["Name"] for p in ssm.get_parameters_by_path(Path=path or takeover_path(cluster))["Parameters"])


def put_claim(ssm, name, age_seconds, holder="dead-run"):
    at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age_seconds)
    ssm.put_parameter(Name=name, Type="String", Value=json.dumps({
        "schema": 1, "holder": holder, "claim_id": "c" * 32, "lock_id": STALE_ID, "claimed_at": iso(at),
        "expires_at": iso(at + datetime.timedelta(seconds=60))}))


def test_claim_left_by_a_dead_run_does_not_block_later_acquires(run_module, ssm, cluster, proxy):
    """A run died between its takeover claim and the claim's deletion (5 minutes ago): the next acquire
    takes the expired lock over all the same, and leaves no claim behind."""
    put_stale_lock(ssm, cluster, lock_id=STALE_ID)
    put_claim(ssm, "%s/%s" % (takeover_path(cluster), STALE_ID), age_seconds=300)
    r = run_module(MOD, dict(cluster_name=cluster, holder="new-run"))
    assert r.rc == 0 and r["acquired"] is True and r["taken_over"] is True, r
    assert r["previous_holder"] == "old-run" and read_lock(ssm, cluster)["holder"] == "new-run"
    assert claims_left(ssm, cluster) == []
    # the claim it made carries its own expiry, one minute after it was made
    mine = [json.loads(c.params["Value"]) for c in proxy.find("PutParameter")
            if c.params["Name"].startswith(takeover_path(cluster)) and c.params["Name"].endswith("-2")]
    assert len(mine) == 1 and mine[0]["holder"] == "new-run"
    made = datetime.datetime.strptime(mine[0]["claimed_at"], "%Y-%m-%dT%H:%M:%SZ")
    expires = datetime.datetime.strptime(mine[0]["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert (expires - made).total_seconds() == 60


def test_several_dead_claims_in_a_row(run_module, ssm, cluster):
    put_stale_lock(ssm, cluster, lock_id=STALE_ID)
    for name in (STALE_ID, STALE_ID + "-2", STALE_ID + "-3"):
        put_claim(ssm, "%s/%s" % (takeover_path(cluster), name), age_seconds=120)
    r = run_module(MOD, dict(cluster_name=cluster, holder="new-run"))
    assert r.rc == 0 and r["acquired"] is True and r["taken_over"] is True, r
    assert claims_left(ssm, cluster) == []


def test_live_claim_still_blocks(run_module, ssm, cluster, proxy):
    """A claim made 10 s ago belongs to a run that is taking the lock over right now: no second takeover."""
    put_stale_lock(ssm, cluster, lock_id=STALE_ID)
    claim = "%s/%s" % (takeover_path(cluster), STALE_ID)
    put_claim(ssm, claim, age_seconds=10, holder="live-run")
    r = run_module(MOD, dict(cluster_name=cluster, holder="new-run"))
    assert r.rc == 0 and r["acquired"] is False and r["holder"] == "old-run"
    assert "is taking over the expired lock" in json.dumps(r.get("warnings")), r
    assert read_lock(ssm, cluster)["holder"] == "old-run" and claims_left(ssm, cluster) == [claim]
    # a claim that is not even JSON counts by the time SSM last modified it: fresh, so it blocks too
    ssm.put_parameter(Name=claim, Type="String", Value="garbage", Overwrite=True)
    r = run_module(MOD, dict(cluster_name=cluster, holder="new-run"))
    assert r.rc == 0 and r["acquired"] is False and read_lock(ssm, cluster)["holder"] == "old-run"


def test_create_retried_after_a_lost_response_is_acquired(run_module, ssm, cluster, proxy):
    """The first create-only PutParameter reaches SSM but its answer is lost (500 InternalError); the
    retry gets ParameterAlreadyExists for the lock this very call wrote: that is acquired, not contended."""
    proxy.fail_after_forward("PutParameter")
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a", ttl="10m"), env=NO_BOTOCORE_RETRY)
    assert r.rc == 0 and r["acquired"] is True and r["changed"] is True, r
    assert "already held" not in json.dumps(r.get("warnings")), r["warnings"]
    puts = proxy.find("PutParameter")
    assert [c.error for c in puts] == ["InternalError", None]  # the write, then the retry of the same write
    assert puts[0].params["Value"] == puts[1].params["Value"]
    stored = read_lock(ssm, cluster)
    assert stored["holder"] == "run-a" and stored["lock_id"] == r["lock"]["lock_id"]
    # and another holder still cannot take it
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-b"))
    assert r["acquired"] is False and r["holder"] == "run-a"


def test_takeover_claim_retried_after_a_lost_response(run_module, ssm, cluster, proxy):
    put_stale_lock(ssm, cluster, lock_id=STALE_ID)
    proxy.fail_after_forward("PutParameter")  # the first write is the claim
    r = run_module(MOD, dict(cluster_name=cluster, holder="new-run"), env=NO_BOTOCORE_RETRY)
    assert r.rc == 0 and r["acquired"] is True and r["taken_over"] is True, r
    assert read_lock(ssm, cluster)["holder"] == "new-run" and claims_left(ssm, cluster) == []


def test_lost_create_of_another_holder_is_still_refused(run_module, ssm, cluster, proxy):
    """Control for the case above: ParameterAlreadyExists for a lock somebody else wrote is contention."""
    run_module(MOD, dict(cluster_name=cluster, holder="run-a"))
    proxy.reset()
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-b"))
    assert r["acquired"] is False and r["holder"] == "run-a"


# ------------------------------------------------------------------------------------------------
# lock: other cluster-wide locks than init (issue 19, defect 7)
# ------------------------------------------------------------------------------------------------
def test_named_lock_is_separate_from_the_init_lock(run_module, ssm, cluster, proxy):
    name = "/kubeadm-aws/%s/locks/join-material/lock" % cluster
    r = run_module(MOD, dict(cluster_name=cluster, lock="join-material", holder="refresh-1", ttl="5m"))
    assert r.rc == 0 and r["acquired"] is True and r["lock_name"] == "join-material", r
    assert r["parameters"] == {"lock": name, "state": "/kubeadm-aws/%s/init/state" % cluster,
                               "takeover": "/kubeadm-aws/%s/locks/join-material/takeover" % cluster}
    assert json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])["holder"] == "refresh-1"
    assert read_lock(ssm, cluster) is None  # the init lock is untouched ...
    r = run_module(MOD, dict(cluster_name=cluster, holder="init-1"))
    assert r["acquired"] is True and r["lock_name"] == "init"  # ... and can be taken independently
    r = run_module(MOD, dict(cluster_name=cluster, lock="join-material", holder="refresh-2"))
    assert r["acquired"] is False and r["holder"] == "refresh-1"
    r = run_module(MOD, dict(cluster_name=cluster, lock="join-material", state="query"))
    assert r["holder"] == "refresh-1" and r["initialized"] is False and r["changed"] is False
    r = run_module(MOD, dict(cluster_name=cluster, lock="join-material", state="released", holder="refresh-1"))
    assert r["released"] is True and ssm.get_parameters(Names=[name])["Parameters"] == []
    assert read_lock(ssm, cluster)["holder"] == "init-1"


def test_named_lock_reports_the_init_state_and_takes_over(run_module, ssm, cluster, proxy):
    run_module(MOD, dict(cluster_name=cluster, state="initialized", holder="cp1/run", kubernetes_version="v1.36.3"))
    path = "/kubeadm-aws/%s/locks/join-material" % cluster
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    ssm.put_parameter(Name=path + "/lock", Type="String", Value=json.dumps({
        "schema": 1, "holder": "dead", "lock_id": STALE_ID, "acquired_at": iso(past), "expires_at": iso(past)}))
    r = run_module(MOD, dict(cluster_name=cluster, lock="join-material", holder="refresh-1"))
    assert r["acquired"] is True and r["taken_over"] is True and r["initialized"] is True, r
    claims = [c.params["Name"] for c in proxy.find("PutParameter") if "/takeover/" in c.params["Name"]]
    assert claims == [path + "/takeover/" + STALE_ID]
    assert claims_left(ssm, cluster, path + "/takeover") == []


def test_bad_lock_names_and_too_deep_prefixes(run_module, cluster, proxy):
    for bad in ("", "Join", "a/b", "-x", "x" * 64):
        r = run_module(MOD, dict(cluster_name=cluster, lock=bad, holder="h"))
        assert r.rc != 0 and r["field"] == "lock", (bad, r)
    deep = "/" + "/".join("l%d" % i for i in range(12))  # 12 levels: init claims fit, other locks' do not
    r = run_module(MOD, dict(cluster_name=cluster, prefix=deep, holder="h"), check=True)
    assert r.rc == 0 and r["acquired"] is True
    r = run_module(MOD, dict(cluster_name=cluster, prefix=deep, lock="join-material", holder="h"))
    assert r.rc != 0 and r["field"] == "prefix" and "join-material" in r["msg"]
    assert proxy.count("PutParameter") == 0


def test_a_lock_reports_its_age(run_module, ssm, cluster):
    """age_seconds tells a lock just taken by a live run (kubeadm init not started yet) from one a stopped
    run left behind: the init role's takeover waits until a lock is that old."""
    r = run_module(MOD, dict(cluster_name=cluster, holder="run-a", ttl="10m"))
    assert r["acquired"] is True and 0 <= r["lock"]["age_seconds"] <= 5
    put_stale_lock(ssm, cluster + "-old")
    r = run_module(MOD, dict(cluster_name=cluster + "-old", state="query"))
    assert 7195 <= r["lock"]["age_seconds"] <= 7210 and r["lock"]["expired"] is True
