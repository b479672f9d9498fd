"""Bad input to the day-2 playbooks is refused in their first play, before anything changes, with a
message that names the problem: an unknown node, no node, the last control plane, a teardown or a restore
without the cluster's name as confirmation, a backup without a bucket, an upgrade that skips a minor or
goes back. After all of them the cluster is as it was."""

from __future__ import annotations

import json

import pytest

from conftest import CLUSTER, assert_refused, nodes, ready, run_playbook, ssm_names


@pytest.fixture(scope="module")
def before(core, ssm):
    state = ({n: ready(o) for n, o in nodes(core).items()}, ssm_names(ssm))
    yield state
    assert ({n: ready(o) for n, o in nodes(core).items()}, ssm_names(ssm)) == state, "a refused run changed the cluster"


def test_remove_node_needs_a_known_node(before):
    assert_refused(run_playbook("remove_node.yml"), "no node given")
    p = run_playbook("remove_node.yml", "-e", "node=ip-10-213-0-99.ec2.internal")
    assert_refused(p, "unknown node ip-10-213-0-99.ec2.internal", "ip-10-213-0-21.ec2.internal")
    # A group name is not a node.
    assert_refused(run_playbook("remove_node.yml", "-e", "node=kube_workers"), "unknown node kube_workers")


def test_the_last_control_plane_is_not_removed(before):
    p = run_playbook("remove_node.yml", "-e", "node=ip-10-213-0-11.ec2.internal", "-e", "force=true")
    assert_refused(p, "ip-10-213-0-11.ec2.internal is the last control plane")


@pytest.mark.parametrize("confirm", [None, "prod", CLUSTER + "x"])
def test_reset_needs_the_cluster_name(before, confirm):
    args = ["-e", "confirm_cluster=%s" % confirm] if confirm else []
    p = run_playbook("reset.yml", *args)
    assert_refused(p, "-e confirm_cluster=%s" % CLUSTER)
    if confirm:
        assert "confirm_cluster was '%s'" % confirm in p.stdout


def test_restore_needs_the_cluster_name_and_a_control_plane(before):
    assert_refused(run_playbook("etcd_restore.yml", "-e", "etcd_restore_bucket=b"), "-e confirm_cluster=%s" % CLUSTER)
    p = run_playbook("etcd_restore.yml", "-e", "etcd_restore_bucket=b", "-e", "confirm_cluster=%s" % CLUSTER,
                     "-e", "node=ip-10-213-0-21.ec2.internal")
    assert_refused(p, "node ip-10-213-0-21.ec2.internal is not a control plane")


def test_backup_needs_a_bucket(before):
    assert_refused(run_playbook("etcd_backup.yml"), "etcd_backup_bucket is empty")
    assert_refused(run_playbook("etcd_backup.yml", "-e", "etcd_backup_bucket=b", "-e", "etcd_backup_keep=0"),
                   "etcd_backup_keep must be at least 1")


def test_upgrade_refuses_a_skipped_minor_and_a_downgrade(before, kube_versions):
    current = kube_versions[0]
    major, minor, _ = current.split(".")
    skipped = "%s.%d.0" % (major, int(minor) + 2)
    minors = json.dumps({"kubeadm_aws_supported_minors": ["%s.%d" % (major, int(minor) + i) for i in range(-1, 3)]})
    p = run_playbook("upgrade.yml", "-e", minors, "-e", "kubeadm_aws_kubernetes_version=%s" % skipped)
    assert_refused(p, current, skipped, "one minor at a time")
    older = "%s.%d.0" % (major, int(minor) - 1)
    p = run_playbook("upgrade.yml", "-e", minors, "-e", "kubeadm_aws_kubernetes_version=%s" % older)
    assert_refused(p, current, older, "downgrade")
