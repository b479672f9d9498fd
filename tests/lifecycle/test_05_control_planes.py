"""Control planes behind the load balancer: two more join (site.yml), a removal that would leave etcd
below its quorum is refused, and the first control plane - the one that initialised the cluster - is lost
(its container stopped), removed, and replaced by a fresh host that joins as a control plane. The lead
passes to a control plane that stays, and the cluster keeps its API throughout."""

from __future__ import annotations

import json

from conftest import (PREFIX, assert_refused, docker, lab_counts, lab_sh, node_exec, nodes, ready, run_playbook, tail,
                      wait_for)

CPS = ["ip-10-213-0-1%d.ec2.internal" % i for i in (1, 2, 3)]


def etcd_members() -> dict[str, bool]:
    """{member name: healthy} as etcd on a running control plane reports it (the collection's module)."""
    for c in ("kubeadm-aws-lab-cp2", "kubeadm-aws-lab-cp3", "kubeadm-aws-lab-cp1"):
        out = node_exec(c, "curl -s --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/apiserver-etcd-client.crt"
                           " --key /etc/kubernetes/pki/apiserver-etcd-client.key -X POST -d '{}'"
                           " https://127.0.0.1:2379/v3/cluster/member/list || true", check=False)
        if out.strip().startswith("{"):
            members = json.loads(out)["members"]
            return {m.get("name", ""): True for m in members}
    return {}


def test_two_more_control_planes_join(core):
    counts = lab_counts()
    lab_sh("up", LAB_CONTROL_PLANES="3", LAB_WORKERS=counts["LAB_WORKERS"])
    p = run_playbook("site.yml", "-e", "argocd_enabled=false", env={"LAB_CONTROL_PLANES": "3"})
    assert p.returncode == 0, tail(p)
    wait_for(lambda: all(n in nodes(core) and ready(nodes(core)[n]) for n in CPS), timeout=300, what="three control planes Ready")
    assert sorted(etcd_members()) == CPS


def test_a_removal_below_the_etcd_quorum_is_refused(core):
    docker("stop", "kubeadm-aws-lab-cp3")
    try:
        wait_for(lambda: not ready(nodes(core)[CPS[2]]), timeout=180, interval=5, what="cp3 NotReady")
        p = run_playbook("remove_node.yml", "-e", "node=%s" % CPS[1])
        assert_refused(p, "below the quorum of 2", CPS[2])
    finally:
        docker("start", "kubeadm-aws-lab-cp3")
    wait_for(lambda: ready(nodes(core)[CPS[2]]), timeout=300, interval=5, what="cp3 Ready again")


def test_the_lost_first_control_plane_is_removed_and_replaced(core, ssm):
    holder = json.loads(ssm.get_parameter(Name=PREFIX + "/init/state")["Parameter"]["Value"])["holder"]
    assert holder.split("/")[0] == CPS[0], holder
    docker("stop", "kubeadm-aws-lab-cp1")
    wait_for(lambda: not ready(nodes(core)[CPS[0]]), timeout=180, interval=5, what="cp1 NotReady")
    p = run_playbook("remove_node.yml", "-e", "node=%s" % CPS[0])
    assert p.returncode == 0, tail(p)
    assert CPS[0] not in nodes(core) and CPS[0] not in etcd_members(), etcd_members()
    state = json.loads(ssm.get_parameter(Name=PREFIX + "/init/state")["Parameter"]["Value"])
    assert state["holder"].split("/")[0] in CPS[1:], state
    # A fresh host in its place (same instance, bare) joins as a control plane.
    counts = lab_counts()
    lab_sh("rm-node", "kubeadm-aws-lab-cp1")
    lab_sh("up", **counts)
    p = run_playbook("site.yml", "-e", "argocd_enabled=false", env=counts)
    assert p.returncode == 0, tail(p)
    wait_for(lambda: all(n in nodes(core) and ready(nodes(core)[n]) for n in CPS), timeout=300, what="three control planes Ready")
    assert sorted(etcd_members()) == CPS
    again = run_playbook("site.yml", "-e", "argocd_enabled=false", env=counts)
    assert again.returncode == 0, tail(again)
