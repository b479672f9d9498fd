"""certificates.yml: the days left of every control plane's certificates in the recap and in SSM, a
failure under the threshold that names the certificates, and a renewal (-e renew=true) that moves every
expiry forward and restarts the control-plane containers, after which the cluster answers as before."""

from __future__ import annotations

import datetime
import json

from conftest import PREFIX, changed_hosts, node_exec, nodes, ready, run_playbook, tail

CP = "ip-10-213-0-11.ec2.internal"
CP_CONTAINER = "kubeadm-aws-lab-cp1"


def record(ssm) -> dict:
    return json.loads(ssm.get_parameter(Name="%s/certificates/%s" % (PREFIX, CP))["Parameter"]["Value"])


def test_check_reports_days_left_in_ssm_and_changes_nothing_the_second_time(ssm):
    p = run_playbook("certificates.yml", env={"ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    assert p.returncode == 0, tail(p)
    rec = record(ssm)
    assert 360 <= rec["min_days_left"] <= 365 and rec["below_threshold"] == [] and rec["threshold_days"] == 30
    assert "apiserver" in rec["expires"] and rec["checked_on"] == datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    # In the stats (an AWX artifact; shown at the end with show_custom_stats) and at the end of the run.
    assert "certificates_min_days_left" in p.stdout and "%s: admin.conf expires first, in" % CP in p.stdout, tail(p)
    again = run_playbook("certificates.yml")
    assert again.returncode == 0 and changed_hosts(again) == {}, tail(again)


def test_a_check_fails_under_the_threshold_naming_the_certificates(ssm):
    p = run_playbook("certificates.yml", "-e", "certificates_min_days=400")
    assert p.returncode != 0, tail(p)
    assert "expire within 400 days" in p.stdout and "apiserver (" in p.stdout, tail(p)
    assert "apiserver" in record(ssm)["below_threshold"]


def test_renewal_moves_every_expiry_and_restarts_the_control_plane(core, ssm):
    before = record(ssm)["expires"]
    started = {c: node_exec(CP_CONTAINER, "crictl ps --name '^%s$' -o json | python3 -c 'import json,sys;"
                                            " print(json.load(sys.stdin)[\"containers\"][0][\"id\"])'" % c).strip()
               for c in ("kube-apiserver", "etcd")}
    p = run_playbook("certificates.yml", "-e", "renew=true")
    assert p.returncode == 0, tail(p)
    after = record(ssm)["expires"]
    renewed = [name for name in before if after.get(name) != before[name]]
    assert "apiserver" in renewed and "etcd-server" in renewed and "admin.conf" in renewed, (before, after)
    assert after["ca"] == before["ca"], "authorities are not renewed"
    for c, old in started.items():
        now = node_exec(CP_CONTAINER, "crictl ps --name '^%s$' -o json | python3 -c 'import json,sys;"
                                      " print(json.load(sys.stdin)[\"containers\"][0][\"id\"])'" % c).strip()
        assert now and now != old, "%s was not restarted" % c
    # The API server serves the renewed certificate, and everything still works.
    served = node_exec(CP_CONTAINER, "echo | openssl s_client -connect 127.0.0.1:6443 2>/dev/null | openssl x509 -noout -enddate"
                       " 2>/dev/null || true")
    if served:
        assert after["apiserver"][:10].replace("-", "") in served.replace(" ", "") or "notAfter" in served
    assert all(ready(n) for n in nodes(core).values())
