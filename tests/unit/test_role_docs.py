"""One source for variable documentation: meta/argument_specs.yml.

* every role has an argument spec, and every option in it a type and a description;
* every variable of defaults/main.yml is declared in the spec, and a spec ``default`` given next to a
  plain (untemplated) value in defaults/main.yml is that value;
* defaults/main.yml holds values only: the ``---`` line, at most ONE comment line right after it (a
  header such as "# Documented in meta/argument_specs.yml"), and no other comment, neither on its own
  line nor after a value - the descriptions live in the spec;
* each README's variable table is what scripts/role_docs.py generates from the spec (``make docs``).

The second half tests scripts/role_docs.py itself on scratch roles.
"""

import importlib.util
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES_DIR = REPO / "roles"
ROLES = sorted(p.parent.parent.name for p in ROLES_DIR.glob("*/meta/argument_specs.yml"))


@pytest.fixture(scope="module")
def role_docs():
    spec = importlib.util.spec_from_file_location("role_docs", REPO / "scripts" / "role_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def specs_of(role):
    return yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def defaults_file(role):
    return ROLES_DIR / role / "defaults" / "main.yml"


def defaults_of(role):
    path = defaults_file(role)
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def is_templated(value):
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(is_templated(k) or is_templated(v) for k, v in value.items())
    if isinstance(value, list):
        return any(is_templated(v) for v in value)
    return False


# ---- the roles ------------------------------------------------------------------------------------
def test_every_role_has_an_argument_spec():
    assert sorted(p.name for p in ROLES_DIR.iterdir() if p.is_dir()) == ROLES


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_type_and_description(role):
    missing = [
        "%s: %s has no %s" % (entry, name, field)
        for entry, spec in specs_of(role).items()
        for name, opt in (spec.get("options") or {}).items()
        for field in ("type", "description")
        if not (opt or {}).get(field)
    ]
    assert not missing, "%s/meta/argument_specs.yml: %s" % (role, "; ".join(missing))


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_declared(role):
    declared = {name for spec in specs_of(role).values() for name in (spec.get("options") or {})}
    undeclared = sorted(set(defaults_of(role)) - declared)
    assert not undeclared, "%s: in defaults/main.yml but not in meta/argument_specs.yml: %s" % (role, undeclared)


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_agree_with_defaults_file(role):
    defaults = defaults_of(role)
    wrong = [
        "%s: spec %r, defaults/main.yml %r" % (name, opt["default"], defaults[name])
        for spec in specs_of(role).values()
        for name, opt in (spec.get("options") or {}).items()
        if name in defaults and "default" in (opt or {}) and not is_templated(defaults[name])
        and opt["default"] != defaults[name]
    ]
    assert not wrong, "%s: %s" % (role, "; ".join(wrong))


def comment_problems(text):
    """Comment lines and trailing comments of a defaults file beyond the one allowed header line."""
    lines = text.split("\n")
    problems = []
    if lines[0].strip() != "---":
        problems.append("line 1 must be '---'")
    data = yaml.safe_load(text)

    def same_data(new_lines):
        # A '#' is a comment when removing it (and what follows on its line) leaves the data as it was;
        # inside a block scalar or a quoted string it is data.
        try:
            return yaml.safe_load("\n".join(new_lines)) == data
        except yaml.YAMLError:
            return False

    for i, line in enumerate(lines):
        if i == 0:
            continue
        if line.lstrip().startswith("#") and same_data(lines[:i] + lines[i + 1:]):
            if i != 1:  # line 2 may be the single header line
                problems.append("line %d is a comment: %s" % (i + 1, line.strip()))
            continue
        for m in re.finditer(r"\s#", line):
            if same_data(lines[:i] + [line[:m.start()]] + lines[i + 1:]):
                problems.append("line %d has a comment: %s" % (i + 1, line[m.start():].strip()))
                break
    return problems


@pytest.mark.parametrize("role", ROLES)
def test_defaults_hold_values_only(role):
    path = defaults_file(role)
    if not path.exists():
        pytest.skip("no defaults/main.yml")
    problems = comment_problems(path.read_text())
    assert not problems, "%s/defaults/main.yml holds descriptions (they belong in meta/argument_specs.yml): %s" % (
        role, "; ".join(problems))


@pytest.mark.parametrize("role", ROLES)
def test_readme_is_generated_from_the_spec(role_docs, role):
    current, wanted = role_docs.check_role(ROLES_DIR / role)
    assert current == wanted, "roles/%s/README.md is not generated from meta/argument_specs.yml: run `make docs`" % role


def test_check_mode_on_the_tree(role_docs, capsys):
    rc = role_docs.main(["--check"])
    err = capsys.readouterr().err
    assert rc == 0, err


# ---- the comment check ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, problems", [
    ("---\na: 1\nb: [x]\n", []),
    ("---\n# Documented in meta/argument_specs.yml\na: 1\n", []),
    ("---\n# header\n# more\na: 1\n", ["line 3 is a comment: # more"]),
    ("---\na: 1\n# what b is\nb: 2\n", ["line 3 is a comment: # what b is"]),
    ("---\na: 1  # seconds\n", ["line 2 has a comment: # seconds"]),
    ("---\nurl: 'http://x/#frag'\ncolor: '#fff'\ntext: \"a #b\"\nplain: a#b\n", []),  # '#' in values
    ("---\ntext: a #b\n", ["line 2 has a comment: #b"]),
    ("---\nscript: |\n  # a shell comment is data\n  true\n", []),
    ("a: 1\n", ["line 1 must be '---'"]),
])
def test_comment_problems(text, problems):
    assert comment_problems(text) == problems


# ---- scripts/role_docs.py on scratch roles ---------------------------------------------------------
SPEC = """\
---
argument_specs:
  main:
    short_description: A demo role
    options:
      demo_source:
        type: str
        default: release
        choices: [release, distro, ""]
        description:
          - Where C(demo) comes from.
          - See the kubernetes.io/cluster/<name> tag; a|b.
      demo_url:
        type: str
        description: URL of I(the) archive, B(pinned).
      demo_list:
        type: list
        elements: str
        description: A block list.
      demo_dict:
        type: dict
        description: A flow dict.
      demo_multi:
        type: str
        description: A folded Jinja expression.
      demo_secret:
        type: str
        required: true
        no_log: true
        description: Needed.
      demo_only_in_spec:
        type: int
        default: 5
        description: Not in defaults/main.yml.
      demo_fact:
        type: str
        description: Fact set by another role.
  wait:
    short_description: Wait for it
    options:
      demo_timeout:
        type: int
        default: 600
        description: Seconds.
"""

DEFAULTS = """\
---
demo_source: release
demo_url: "https://example.com/{{ demo_source }}.tar.gz"
demo_list:
  - a
  - b
demo_dict: {x: 1, y: "{{ demo_source | default('z') }}"}
demo_multi: >-
  {{ demo_list
     | join(',') }}
demo_timeout: 600
"""

TABLE = """\
| variable | type | default | required | description |
|---|---|---|---|---|
| `demo_source` | str | `release` | no | Where `demo` comes from. See the kubernetes.io/cluster/&lt;name&gt; tag; a\\|b. Choices: `release`, `distro`, `""`. |
| `demo_url` | str | `"https://example.com/{{ demo_source }}.tar.gz"` | no | URL of *the* archive, **pinned**. |
| `demo_list` | list of str | `[a, b]` | no | A block list. |
| `demo_dict` | dict | `{x: 1, y: "{{ demo_source \\| default('z') }}"}` | no | A flow dict. |
| `demo_multi` | str | `{{ demo_list \\| join(',') }}` | no | A folded Jinja expression. |
| `demo_secret` | str |  | yes | Needed. |
| `demo_only_in_spec` | int | `5` | no | Not in defaults/main.yml. |
| `demo_fact` | str |  | no | Fact set by another role. |

### Entry point `wait` (`tasks_from: wait`)

Wait for it.

| variable | type | default | required | description |
|---|---|---|---|---|
| `demo_timeout` | int | `600` | no | Seconds. |
"""

OLD_README = """\
# sesacthon.kubeadm_aws.demo

What the role does.

## Variables

Collection-wide settings come from cluster_settings.

| variable | default | meaning |
| --- | --- | --- |
| `demo_source` | `release` | where it comes from |

Some prose after the table.

## Example

```yaml
- role: sesacthon.kubeadm_aws.demo
```
"""


@pytest.fixture
def demo(tmp_path):
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(SPEC)
    (role / "defaults" / "main.yml").write_text(DEFAULTS)
    (role / "README.md").write_text(OLD_README)
    return role


def generated(role_docs):
    return "%s\n%s\n\n%s%s" % (role_docs.BEGIN, role_docs.NOTE, TABLE, role_docs.END)


def test_first_run_migrates_the_variables_table(role_docs, demo, capsys):
    roles = str(demo.parent)
    assert role_docs.main(["--check", "--roles-dir", roles]) == 1
    assert str(demo / "README.md") in capsys.readouterr().err
    assert role_docs.main(["--write", "--roles-dir", roles]) == 0
    readme = (demo / "README.md").read_text()
    assert readme == OLD_README.replace(
        "| variable | default | meaning |\n| --- | --- | --- |\n| `demo_source` | `release` | where it comes from |",
        generated(role_docs))
    assert role_docs.main(["--check", "--roles-dir", roles]) == 0


def test_rewrites_only_between_the_markers_and_is_stable(role_docs, demo):
    roles = str(demo.parent)
    role_docs.main(["--write", "--roles-dir", roles])
    first = (demo / "README.md").read_text()
    (demo / "README.md").write_text(first.replace("Some prose after the table.", "Other prose."))
    spec = (demo / "meta" / "argument_specs.yml")
    spec.write_text(spec.read_text().replace("description: Seconds.", "description: Seconds to wait."))
    assert role_docs.main(["--check", "--roles-dir", roles]) == 1
    role_docs.main(["--write", "--roles-dir", roles])
    second = (demo / "README.md").read_text()
    assert "Other prose." in second and "| `demo_timeout` | int | `600` | no | Seconds to wait. |" in second
    role_docs.main(["--write", "--roles-dir", roles])
    assert (demo / "README.md").read_text() == second


def test_readme_without_a_variables_section(role_docs, demo):
    (demo / "README.md").write_text("# sesacthon.kubeadm_aws.demo\n\nText.\n\n## Example\n\nx\n")
    role_docs.main(["--write", "--roles-dir", str(demo.parent)])
    assert (demo / "README.md").read_text() == (
        "# sesacthon.kubeadm_aws.demo\n\nText.\n\n## Variables\n\n%s\n\n## Example\n\nx\n" % generated(role_docs))


def test_variables_section_without_a_table(role_docs, demo):
    (demo / "README.md").write_text("# demo\n\n## Variables\n\nSee below.\n\n## Example\n\nx\n")
    role_docs.main(["--write", "--roles-dir", str(demo.parent)])
    assert (demo / "README.md").read_text() == (
        "# demo\n\n## Variables\n\nSee below.\n\n%s\n\n## Example\n\nx\n" % generated(role_docs))


def test_no_readme_yet(role_docs, demo):
    (demo / "README.md").unlink()
    role_docs.main(["--write", "--roles-dir", str(demo.parent)])
    assert (demo / "README.md").read_text() == (
        "# sesacthon.kubeadm_aws.demo\n\n## Variables\n\n%s\n" % generated(role_docs))


def test_broken_markers_are_an_error(role_docs, demo, capsys):
    (demo / "README.md").write_text("# demo\n\n%s\n| x |\n" % role_docs.BEGIN)
    assert role_docs.main(["--check", "--roles-dir", str(demo.parent)]) == 1
    assert "must have one" in capsys.readouterr().err


def test_only_the_named_roles(role_docs, demo, tmp_path):
    shutil.copytree(demo, tmp_path / "roles" / "other")
    assert role_docs.main(["--write", "--roles-dir", str(demo.parent), "other"]) == 0
    assert (demo / "README.md").read_text() == OLD_README
    assert role_docs.BEGIN in (tmp_path / "roles" / "other" / "README.md").read_text()
    with pytest.raises(SystemExit, match="no meta/argument_specs.yml for: nope"):
        role_docs.main(["--check", "--roles-dir", str(demo.parent), "nope"])


def test_role_without_options(role_docs, demo):
    (demo / "meta" / "argument_specs.yml").write_text(textwrap.dedent("""\
        argument_specs:
          main:
            short_description: Nothing to set
        """))
    (demo / "defaults" / "main.yml").unlink()
    role_docs.main(["--write", "--roles-dir", str(demo.parent)])
    assert "The role has no variables." in (demo / "README.md").read_text()
