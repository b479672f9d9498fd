"""A worker whose host died is removed: its container is stopped (the instance does not answer), and
remove_node.yml still deletes its Node object and its SSM record, without trying to drain or reset it.
A second run changes nothing. The lab then replaces the dead host with a fresh one (same instance, bare),
which test_07 joins after the upgrade."""

from __future__ import annotations

import time

from conftest import (changed_hosts, docker, lab_counts, lab_sh, node_exec, nodes, ready, recap, run_playbook, ssm_records, tail,
                      wait_for)

DEAD = "ip-10-213-0-22.ec2.internal"
DEAD_CONTAINER = "kubeadm-aws-lab-w2"


def test_a_dead_worker_is_removed(core, ssm):
    assert DEAD in nodes(core) and DEAD in ssm_records(ssm)
    docker("stop", DEAD_CONTAINER)
    wait_for(lambda: not ready(nodes(core)[DEAD]), timeout=180, interval=5, what="the stopped worker NotReady")
    t0 = time.time()
    p = run_playbook("remove_node.yml", "-e", "node=%s" % DEAD)
    took = time.time() - t0
    assert p.returncode == 0, tail(p)
    assert DEAD not in nodes(core), "the Node object is still there"
    assert DEAD not in ssm_records(ssm), "the SSM record is still there"
    # Nothing ran on the dead host, and no other node was touched.
    assert DEAD not in recap(p.stdout), recap(p.stdout)
    assert set(changed_hosts(p)) == {"localhost"}, changed_hosts(p)
    again = run_playbook("remove_node.yml", "-e", "node=%s" % DEAD)
    # Known to nobody any more but the inventory (its instance runs): a no-op.
    assert again.returncode == 0 and changed_hosts(again) == {}, tail(again)
    print("removal of a dead worker: %.0f s" % took)


def test_the_dead_host_is_replaced_by_a_bare_one(core):
    counts = lab_counts()
    lab_sh("rm-node", DEAD_CONTAINER)
    lab_sh("up", **counts)
    assert node_exec(DEAD_CONTAINER, "test -e /etc/kubernetes/kubelet.conf && echo joined || echo bare").strip() == "bare"
    assert DEAD not in nodes(core)


def test_a_live_worker_is_drained_reset_and_removed(core, ssm, lab_env):
    """The replacement joins (join_workers.yml), gets a pod, and is removed while it runs: drained (the pod
    moves to the other worker), kubeadm reset with the CNI state cleaned up, Node and SSM record gone.
    Its host is bare again, ready to join later (test_07)."""
    p = run_playbook("join_workers.yml", "--limit", DEAD, env=lab_counts())
    assert p.returncode == 0, tail(p)
    wait_for(lambda: DEAD in nodes(core) and ready(nodes(core)[DEAD]), timeout=300, what="the new worker Ready")
    apps = k8s_apps()
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "pinned", "namespace": "default"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "pinned"}},
                       "template": {"metadata": {"labels": {"app": "pinned"}},
                                    "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10.2"}],
                                             # w2 carries the lab's NoSchedule taint (lab/lab.conf, LAB_TAGS_w2).
                                             "tolerations": [{"key": "lab.sesacthon.io/dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                                             "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                                                 {"weight": 100, "preference": {"matchExpressions": [
                                                     {"key": "kubernetes.io/hostname", "operator": "In", "values": [DEAD]}]}}]}}}}}}
    apps.create_namespaced_deployment("default", deploy)
    try:
        wait_for(lambda: [q for q in core.list_namespaced_pod("default", label_selector="app=pinned").items
                          if q.spec.node_name == DEAD and q.status.phase == "Running"], timeout=180, what="a pod on the worker")
        p = run_playbook("remove_node.yml", "-e", "node=%s" % DEAD)
        assert p.returncode == 0, tail(p)
        assert "Cordon the node and evict its pods" in p.stdout and recap(p.stdout)[DEAD]["changed"] > 0, tail(p)
        assert DEAD not in nodes(core) and DEAD not in ssm_records(ssm)
        moved = wait_for(lambda: [q for q in core.list_namespaced_pod("default", label_selector="app=pinned").items
                                  if q.status.phase == "Running" and q.spec.node_name != DEAD], timeout=180, what="the pod elsewhere")
        assert moved
        left = node_exec(DEAD_CONTAINER, "ls /etc/kubernetes /etc/cni/net.d; ls /var/lib/cni 2>/dev/null || true; "
                                         "ip -o link show | awk -F': ' '{print $2}'; systemctl is-active kubelet || true")
        assert "kubelet.conf" not in left and "flannel" not in left and "cni0" not in left, left
        again = run_playbook("remove_node.yml", "-e", "node=%s" % DEAD)
        assert again.returncode == 0 and changed_hosts(again) == {}, tail(again)
    finally:
        apps.delete_namespaced_deployment("pinned", "default")


def k8s_apps():
    from kubernetes import client

    return client.AppsV1Api()
