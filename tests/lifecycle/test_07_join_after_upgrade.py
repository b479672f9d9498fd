"""A worker that joins after the upgrade gets the cluster's version, not the inventory's stale default:
join_workers.yml runs with the lab's variables as they were (kubeadm_aws_kubernetes_version is still the
first version), and the new node runs the version SSM records for the cluster."""

from __future__ import annotations

import json

from conftest import PREFIX, lab_counts, nodes, ready, run_playbook, tail, wait_for

NEW = "ip-10-213-0-22.ec2.internal"


def test_a_worker_joined_after_the_upgrade_gets_the_cluster_version(core, ssm):
    version = json.loads(ssm.get_parameter(Name=PREFIX + "/init/state")["Parameter"]["Value"])["kubernetes_version"]
    p = run_playbook("join_workers.yml", "--limit", NEW, env=lab_counts())
    assert p.returncode == 0, tail(p)
    wait_for(lambda: NEW in nodes(core) and ready(nodes(core)[NEW]), timeout=300, what="the new worker Ready")
    assert nodes(core)[NEW].status.node_info.kubelet_version == version
