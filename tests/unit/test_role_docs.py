"""Every role documents every default: argument specs (which check input before a host is touched)
and the README list exactly the variables of defaults/main.yml."""

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p.parent.parent.name for p in (Path(__file__).resolve().parents[2] / "roles").glob("*/meta/argument_specs.yml"))


def test_every_role_has_an_argument_spec():
    roles_dir = Path(__file__).resolve().parents[2] / "roles"
    assert sorted(p.name for p in roles_dir.iterdir() if p.is_dir()) == ROLES


@pytest.mark.parametrize("role", ROLES)
def test_defaults_specs_and_readme_agree(role):
    root = Path(__file__).resolve().parents[2] / "roles" / role
    defaults = yaml.safe_load((root / "defaults" / "main.yml").read_text()) or {}
    spec = yaml.safe_load((root / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
    options = spec.get("options", {})
    assert set(defaults) <= set(options), f"undeclared in argument_specs: {sorted(set(defaults) - set(options))}"
    for name, opt in options.items():
        assert opt.get("description"), f"{role}: {name} has no description"
        assert opt.get("type"), f"{role}: {name} has no type"
    readme = (root / "README.md").read_text()
    missing = [name for name in defaults if name not in readme]
    assert not missing, f"{role}/README.md does not document {missing}"
