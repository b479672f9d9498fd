"""AWX configuration as code (awx/configure.yml, awx/vars.yml, awx/derived.yml) cannot drift from the
collection: every job template runs a playbook that exists, every playbook has a template, and every
variable a template sets (extra vars, survey answers, credential injectors) is declared in the
meta/argument_specs.yml of a role that its playbook runs. The values checked are the ones
configure.yml would send to AWX, rendered by Ansible from the same files. No AWX server is involved."""

from __future__ import annotations

import os
import re
import subprocess

from awxutil import REPO, VENV_BIN, ansible_env, load_yaml

COLLECTION = "sesacthon.kubeadm_aws."
_load = load_yaml
_ansible_env = ansible_env


# ------------------------------------------------------------------------------------------------
# What the collection declares
# ------------------------------------------------------------------------------------------------
def _role_name(entry) -> str:
    name = entry if isinstance(entry, str) else entry.get("role") or entry.get("name")
    assert name.startswith(COLLECTION), f"role {name!r} is not referenced by its FQCN"
    return name[len(COLLECTION) :]


def _role_closure(role: str, seen: set[str]) -> set[str]:
    if role in seen:
        return seen
    assert (REPO / "roles" / role).is_dir(), f"role {role} does not exist"
    seen.add(role)
    meta = REPO / "roles" / role / "meta" / "main.yml"
    for dep in (_load(meta) or {}).get("dependencies") or [] if meta.is_file() else []:
        _role_closure(_role_name(dep), seen)
    # include_role / import_role in the role's tasks.
    for tasks in (REPO / "roles" / role / "tasks").glob("*.yml"):
        for name in re.findall(r"(?:include_role|import_role):\s*\n\s+name:\s*(\S+)", tasks.read_text()):
            _role_closure(_role_name(name.strip("'\"")), seen)
    return seen


def playbook_roles(playbook: Path) -> set[str]:
    """Roles a playbook runs (roles:, role dependencies, import_playbook, include/import_role tasks)."""
    roles: set[str] = set()
    for play in _load(playbook) or []:
        imported = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
        if imported:
            roles |= playbook_roles((playbook.parent / imported).resolve())
            continue
        for entry in play.get("roles") or []:
            _role_closure(_role_name(entry), roles)
        for task in (play.get("tasks") or []) + (play.get("pre_tasks") or []) + (play.get("post_tasks") or []):
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
                if key in task:
                    _role_closure(_role_name(task[key]["name"]), roles)
    return roles


def declared_variables(roles: set[str]) -> dict[str, dict]:
    """Options of every entry point of the roles' meta/argument_specs.yml."""
    out: dict[str, dict] = {}
    for role in roles:
        spec_file = REPO / "roles" / role / "meta" / "argument_specs.yml"
        assert spec_file.is_file(), f"role {role} has no meta/argument_specs.yml"
        for entry in (_load(spec_file)["argument_specs"] or {}).values():
            for name, option in (entry.get("options") or {}).items():
                out[name] = option
    return out


def template_variables(template: dict, rendered: dict) -> dict[str, str]:
    """Every variable a job of this template receives from AWX, with where it comes from."""
    out = {k: "extra_vars" for k in template["extra_vars"]}
    out.update({q["variable"]: "survey" for q in template["survey_spec"]["spec"]})
    if rendered["kubeconfig_credential"] in template["credentials"]:
        out.update({k: "credential injector" for k in rendered["kubeconfig_type"]["injectors"].get("extra_vars", {})})
    return out


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------
def test_every_template_runs_a_playbook_that_exists(rendered):
    for t in rendered["job_templates"]:
        path = REPO / t["playbook"]
        assert path.is_file(), f"template {t['name']!r}: {t['playbook']} does not exist"
        assert _load(path), f"{t['playbook']} is empty"


def _runs_on_the_node_itself(path) -> bool:
    """A playbook every own play of which runs with connection local (playbooks/self_join.yml, run by an
    instance on itself in pull mode): no AWX job runs it."""
    plays = [p for p in _load(path) or [] if "ansible.builtin.import_playbook" not in p and "import_playbook" not in p]
    return bool(plays) and all(p.get("connection") == "local" for p in plays)


def test_every_playbook_has_a_template(rendered):
    playbooks = {f"playbooks/{p.name}" for p in (REPO / "playbooks").glob("*.yml") if not _runs_on_the_node_itself(p)}
    templated = {t["playbook"] for t in rendered["job_templates"]}
    assert playbooks <= templated, f"playbooks without an AWX job template: {sorted(playbooks - templated)}"


def test_templates_use_only_variables_their_roles_declare(rendered):
    problems = []
    for t in rendered["job_templates"]:
        declared = declared_variables(playbook_roles(REPO / t["playbook"]))
        for var, source in template_variables(t, rendered).items():
            if var not in declared:
                problems.append(
                    f"{t['name']!r} ({t['playbook']}): {source} variable {var!r} is declared by no role it runs"
                )
    assert not problems, "\n".join(problems)


def test_templates_ask_for_cluster_version_and_limit(rendered):
    for t in rendered["job_templates"]:
        questions = {q["variable"]: q for q in t["survey_spec"]["spec"]}
        assert t["survey_enabled"] and "kubeadm_aws_cluster_name" in questions, t["name"]
        roles = playbook_roles(REPO / t["playbook"])
        if {"kube_packages", "kubeadm_init", "kubeadm_join"} & roles:
            assert (
                "kubeadm_aws_kubernetes_version" in questions
            ), f"{t['name']}: installs Kubernetes, must ask its version"
        for q in questions.values():
            assert q["question_name"] and q["type"] in ("text", "multiplechoice", "integer", "password"), q
    # The host limit is AWX's own prompt (configure.yml: ask_limit_on_launch on every template).
    configure = _load(REPO / "awx" / "configure.yml")[0]["tasks"]
    jt_task = next(task for task in configure if "awx.awx.job_template" in task)
    assert jt_task["awx.awx.job_template"]["ask_limit_on_launch"] is True


def test_survey_defaults_pass_the_collection_validation(rendered):
    spec = declared_variables({"cluster_settings"})
    minors = spec["kubeadm_aws_supported_minors"]["default"]
    for t in rendered["job_templates"] + [{"name": "workflow", "survey_spec": rendered["workflow_survey"]}]:
        for q in t["survey_spec"]["spec"]:
            if q["variable"] == "kubeadm_aws_cluster_name":
                assert re.match(r"^[a-z][a-z0-9-]{0,62}$", q["default"]), (t["name"], q["default"])
            if q["variable"] == "kubeadm_aws_kubernetes_version":
                assert re.match(r"^[0-9]+\.[0-9]+\.[0-9]+$", q["default"]), (t["name"], q["default"])
                assert ".".join(q["default"].split(".")[:2]) in minors, (t["name"], q["default"], minors)


def test_join_workers_is_sliced_and_bootstrap_is_not(rendered):
    by_playbook = {t["playbook"]: t for t in rendered["job_templates"]}
    join = next(t for t in rendered["job_templates"] if t["key"] == "join_workers")
    assert join["job_slice_count"] > 1 and join["ask_job_slice_count_on_launch"]
    # kubeadm init, the certificate upload and CNI run once on the first control plane: never sliced.
    assert by_playbook["playbooks/site.yml"]["job_slice_count"] == 1
    # Join workers talks to the Kubernetes API (node labels, Ready wait) without running kubeadm init.
    assert rendered["kubeconfig_credential"] in join["credentials"] or not join["credentials"]


def test_workflow_chains_bootstrap_and_join(rendered):
    names = {t["name"]: t for t in rendered["job_templates"]}
    nodes = {n["identifier"]: n for n in rendered["workflow_nodes"]}
    for node in nodes.values():
        assert node["unified_job_template"]["name"] in names, node
        for nxt in node["related"]["success_nodes"]:
            assert nxt["identifier"] in nodes, nxt
        template = names[node["unified_job_template"]["name"]]
        assert node["job_slice_count"] == template["job_slice_count"]
    playbooks = {n: names[nodes[n]["unified_job_template"]["name"]]["playbook"] for n in nodes}
    first = [
        n for n in nodes if not any(n == s["identifier"] for m in nodes.values() for s in m["related"]["success_nodes"])
    ]
    assert [playbooks[n] for n in first] == ["playbooks/site.yml"], first
    follow = [s["identifier"] for s in nodes[first[0]]["related"]["success_nodes"]]
    assert "playbooks/join_workers.yml" in [playbooks[n] for n in follow]
    # The workflow's survey answers reach every node: each node's roles must declare them.
    for n, playbook in playbooks.items():
        declared = declared_variables(playbook_roles(REPO / playbook))
        for q in rendered["workflow_survey"]["spec"]:
            assert q["variable"] in declared, (n, q["variable"])


def test_inventory_source_is_the_production_inventory_file(rendered):
    path = REPO / rendered["inventory_source_path"]
    inventory = _load(path)
    assert inventory["plugin"] == "amazon.aws.aws_ec2"
    # The inventory reads these environment variables, which AWX sets from source_vars.
    env_lookups = set(re.findall(r"lookup\('ansible\.builtin\.env', '([A-Z_]+)'", path.read_text()))
    assert set(rendered["inventory_source_vars"]) == env_lookups, (rendered["inventory_source_vars"], env_lookups)


def test_configure_playbook_syntax(tmp_path):
    res = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "--syntax-check", str(REPO / "awx" / "configure.yml")],
        cwd=REPO,
        env=_ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_awx_directory_is_lint_clean():
    res = subprocess.run(
        [str(VENV_BIN / "ansible-lint"), "--profile", "production", "--offline", "awx/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"},
    )
    assert res.returncode == 0, res.stdout + res.stderr


# ------------------------------------------------------------------------------------------------
# Schedules (awx.awx.schedule): the day-2 jobs that run by themselves
# ------------------------------------------------------------------------------------------------
def _rendered_schedules(tmp_path, extra_vars=None) -> list[dict]:
    """awx_schedules of awx/derived.yml as configure.yml sends them, rendered by Ansible."""
    import json

    import yaml as _yaml

    out = tmp_path / "schedules.json"
    playbook = tmp_path / "render-schedules.yml"
    playbook.write_text(_yaml.safe_dump([{
        "name": "Render the schedules", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars_files": [str(REPO / "awx" / "vars.yml"), str(REPO / "awx" / "derived.yml")],
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [{"name": "Write them", "ansible.builtin.copy": {"dest": str(out), "mode": "0600",
                                                                  "content": "{{ awx_schedules | to_json }}"}}],
    }]))
    args = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    if extra_vars:
        args += ["-e", json.dumps(extra_vars)]
    res = subprocess.run(args, cwd=REPO, env=_ansible_env(tmp_path), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(out.read_text())


def test_schedules_run_templates_with_variables_their_roles_declare(rendered, tmp_path):
    schedules = _rendered_schedules(tmp_path)
    by_name = {t["name"]: t for t in rendered["job_templates"]}
    assert {s["template_key"] for s in schedules} >= {"certificates", "etcd_backup"}
    for s in schedules:
        template = by_name.get(s["unified_job_template"])
        assert template, "schedule %r runs %r, which is no job template" % (s["name"], s["unified_job_template"])
        declared = declared_variables(playbook_roles(REPO / template["playbook"]))
        for var in s["extra_data"]:
            assert var in declared, "schedule %r: %s is declared by no role of %s" % (s["name"], var, template["playbook"])
        assert re.match(r"^DTSTART:\d{8}T\d{6}Z RRULE:FREQ=(MINUTELY|HOURLY|DAILY|WEEKLY);INTERVAL=\d+$", s["rrule"]), s["rrule"]
    # The certificate check never renews on its own.
    check = next(s for s in schedules if s["template_key"] == "certificates")
    assert str(check["extra_data"].get("certificates_renew")).lower() == "false"


def test_the_backup_schedule_is_disabled_without_a_bucket(tmp_path):
    without = {s["template_key"]: s for s in _rendered_schedules(tmp_path)}
    assert without["etcd_backup"]["enabled"] is False
    with_bucket = {s["template_key"]: s for s in _rendered_schedules(tmp_path, {"kubeadm_aws_awx_etcd_backup_bucket": "b"})}
    assert with_bucket["etcd_backup"]["enabled"] is True and with_bucket["etcd_backup"]["extra_data"]["etcd_backup_bucket"] == "b"


def test_day2_templates_that_tear_down_ask_for_the_cluster_name(rendered):
    """reset and etcd_restore refuse to run unless the operator types the cluster's name: their survey asks
    for it, with no default that would confirm by itself."""
    by_playbook = {t["playbook"]: t for t in rendered["job_templates"]}
    for playbook, var in (("playbooks/reset.yml", "cluster_reset_confirm"), ("playbooks/etcd_restore.yml", "etcd_restore_confirm")):
        q = {q["variable"]: q for q in by_playbook[playbook]["survey_spec"]["spec"]}[var]
        assert q["required"] and q["default"] == "", q


# ------------------------------------------------------------------------------------------------
# Autoscaling (docs/autoscaling.md): provisioning callback, simultaneous joins, rotation and scale-in
# ------------------------------------------------------------------------------------------------
def test_the_callback_template_joins_one_host_at_a_time_in_parallel(tmp_path):
    from awxutil import render_awx_config

    key = "0123456789abcdef0123456789abcdef"
    rendered = render_awx_config(tmp_path, {"kubeadm_aws_awx_host_config_key": key})
    callbacks = [t for t in rendered["job_templates"] if t["host_config_key"]]
    assert len(callbacks) == 1, [t["name"] for t in callbacks]
    t = callbacks[0]
    # AWX limits a callback's job to the calling host; several instances launched at once must not queue
    # behind each other (the token refresh takes the SSM lock instead).
    assert t["playbook"] == "playbooks/join_workers.yml" and t["host_config_key"] == key
    assert t["allow_simultaneous"] is True and t["job_slice_count"] == 1 and not t["ask_job_slice_count_on_launch"]
    assert rendered["kubeconfig_credential"] in t["credentials"] or not t["credentials"]
    # A callback starts without user input: every required survey question has a default.
    assert all(q["default"] not in ("", None) for q in t["survey_spec"]["spec"] if q["required"]), t["survey_spec"]
    # The sliced join template stays what it was: no callback, no simultaneous runs.
    sliced = next(x for x in rendered["job_templates"] if x["playbook"] == "playbooks/join_workers.yml")
    assert sliced["job_slice_count"] > 1 and not sliced["host_config_key"] and sliced["allow_simultaneous"] is False
    # The key is never in the repository's files: it comes from the environment.
    assert key not in (REPO / "awx" / "vars.yml").read_text()


def test_without_a_key_there_is_no_callback(rendered):
    assert not [t["name"] for t in rendered["job_templates"] if t["host_config_key"]]
    configure = _load(REPO / "awx" / "configure.yml")[0]["tasks"]
    jt = next(task for task in configure if "awx.awx.job_template" in task)["awx.awx.job_template"]
    assert "omit" in jt["host_config_key"] and "item.allow_simultaneous" in jt["allow_simultaneous"]


def test_rotation_and_scale_in_are_scheduled(tmp_path):
    schedules = {s["template_key"]: s for s in _rendered_schedules(tmp_path)}
    rotate, scale_in = schedules["rotate_join_material"], schedules["scale_in"]
    assert rotate["enabled"] and scale_in["enabled"]
    minutes = {"MINUTELY": 1, "HOURLY": 60, "DAILY": 1440}
    def period(rrule):
        freq, interval = re.search(r"FREQ=(\w+);INTERVAL=(\d+)", rrule).groups()
        return minutes[freq] * int(interval)
    # The token is rotated below half its life (1 h of the default 2 h): checked more often than that, it
    # always has more than kubeadm_aws_token_min_ttl (15 min) left.
    spec = declared_variables({"cluster_settings"})
    ttl_minutes = int(str(spec["kubeadm_aws_token_ttl"]["default"]).rstrip("h")) * 60
    assert period(rotate["rrule"]) + 15 <= ttl_minutes / 2
    # A terminating instance waits at most the terminate hook's timeout (asg_terminate_hook_timeout).
    hook_timeout = declared_variables({"asg"})["asg_terminate_hook_timeout"]["default"]
    assert period(scale_in["rrule"]) * 60 * 2 <= hook_timeout
