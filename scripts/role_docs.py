#!/usr/bin/env python3
"""Role README variable tables, generated from meta/argument_specs.yml (the one source of variable docs).

    scripts/role_docs.py --check            # exit 1 listing the READMEs that are not up to date
    scripts/role_docs.py --write            # rewrite them (make docs)
    scripts/role_docs.py --check --roles-dir /tmp/copy/roles argocd cni

For every role (roles/<role>/meta/argument_specs.yml) the table of variables in roles/<role>/README.md
lives between the lines

    <!-- BEGIN ARGUMENT SPECS -->
    <!-- END ARGUMENT SPECS -->

and is rewritten from the spec: one row per option of the ``main`` entry point (variable, type,
default, required, description; the choices are listed after the description), then a subsection with
a table for each further entry point (``tasks_from: <name>``). Everything outside the markers is left
as it is.

Defaults: the value as written in defaults/main.yml (the source text of a one-line value, the folded
text of a block scalar, a block list or dict shown in flow style); for an option that defaults/main.yml
does not set, the spec's ``default``; otherwise the cell is empty.

A README without the markers (the first run) gets them in place of the first table of its
``## Variables`` section, or a new ``## Variables`` section before ``## Example`` / ``## Dependencies``
(or at the end) when it has none.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

BEGIN = "<!-- BEGIN ARGUMENT SPECS -->"
END = "<!-- END ARGUMENT SPECS -->"
NOTE = ("<!-- Generated from meta/argument_specs.yml by scripts/role_docs.py (`make docs`): "
        "edit the spec, not this table. -->")
REPO = Path(__file__).resolve().parents[1]


# ---- rendering ------------------------------------------------------------------------------------
def code(text: str) -> str:
    """A Markdown code span for a table cell."""
    text = text.replace("|", "\\|")
    if "`" in text:
        return "`` %s ``" % text
    return "`%s`" % text


def _escape_text(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


# Ansible documentation markup: C(code), V(value), O(option), E(env), P(plugin), M(module), I(italic),
# B(bold), U(url), L(text,url), HORIZONTALLINE.
_MARKUP = re.compile(r"\b([CVOEPMIBUL])\(([^()]*)\)")


def markdown(text) -> str:
    """Spec description (a string or a list of paragraphs) as one Markdown table cell."""
    if isinstance(text, (list, tuple)):
        text = " ".join(str(t).strip() for t in text)
    text = " ".join(str(text or "").split())
    out, pos = [], 0
    for m in _MARKUP.finditer(text):
        out.append(_escape_text(text[pos:m.start()]))
        kind, inner = m.group(1), m.group(2)
        if kind in "CVOEPM":
            out.append(code(inner.split("#")[0] if kind == "P" else inner))
        elif kind == "I":
            out.append("*%s*" % _escape_text(inner))
        elif kind == "B":
            out.append("**%s**" % _escape_text(inner))
        elif kind == "U":
            out.append(inner.replace("|", "%7C"))
        else:  # L(text,url)
            label, _, url = inner.rpartition(",")
            out.append("[%s](%s)" % (_escape_text(label.strip()), url.strip().replace("|", "%7C")))
        pos = m.end()
    out.append(_escape_text(text[pos:]))
    return "".join(out).strip()


def flow(value) -> str:
    """A value in YAML flow style on one line (how a spec default or a choice is shown)."""
    if isinstance(value, str) and value == "":
        return '""'
    dumped = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False).strip()
    if dumped.endswith("\n..."):
        dumped = dumped[: -len("\n...")]
    return " ".join(dumped.split())


def defaults_as_written(text: str) -> dict:
    """{variable: its default as written in defaults/main.yml} (one line each)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ValueError("defaults/main.yml is not a mapping")
    data = yaml.safe_load(text)
    out = {}
    for key_node, node in root.value:
        name = key_node.value
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            shown = node.value
        elif isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
            shown = text[node.start_mark.index:node.end_mark.index]
        else:  # a block list or dict
            shown = flow(data[name])
        out[name] = " ".join(shown.split())
    return out


def table(options: dict, defaults: dict) -> list[str]:
    lines = ["| variable | type | default | required | description |", "|---|---|---|---|---|"]
    for name, opt in options.items():
        opt = opt or {}
        kind = str(opt.get("type", "str"))
        if opt.get("elements"):
            kind += " of %s" % opt["elements"]
        if name in defaults:
            default = code(defaults[name])
        elif "default" in opt and opt["default"] is not None:
            default = code(flow(opt["default"]))
        else:
            default = ""
        description = markdown(opt.get("description", ""))
        if opt.get("choices"):
            choices = ", ".join(code(flow(c) if not isinstance(c, str) or c == "" else c) for c in opt["choices"])
            description = (description + " " if description else "") + "Choices: %s." % choices
        lines.append("| %s | %s | %s | %s | %s |" % (
            code(name), kind, default, "yes" if opt.get("required") else "no", description))
    return lines


def block(role_dir: Path) -> str:
    """The generated text between (and including) the markers."""
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    defaults_file = role_dir / "defaults" / "main.yml"
    defaults = defaults_as_written(defaults_file.read_text()) if defaults_file.exists() else {}
    lines = [BEGIN, NOTE, ""]
    main = specs.get("main") or {}
    if main.get("options"):
        lines += table(main["options"], defaults)
    else:
        lines.append("The role has no variables.")
    for entry, spec in specs.items():
        if entry == "main":
            continue
        spec = spec or {}
        lines += ["", "### Entry point `%s` (`tasks_from: %s`)" % (entry, entry), ""]
        if spec.get("short_description"):
            lines += [markdown(spec["short_description"]).rstrip(".") + ".", ""]
        lines += table(spec["options"], defaults) if spec.get("options") else ["No variables of its own."]
    lines.append(END)
    return "\n".join(lines)


# ---- README update --------------------------------------------------------------------------------
def updated_readme(readme: str, generated: str, role: str) -> str:
    """``readme`` with its marker block replaced by ``generated`` (migrating a README without markers)."""
    if BEGIN in readme or END in readme:
        start, end = readme.find(BEGIN), readme.find(END)
        if start < 0 or end < start or readme.count(BEGIN) != 1 or readme.count(END) != 1:
            raise ValueError("the README must have one %s followed by one %s" % (BEGIN, END))
        return readme[:start] + generated + readme[end + len(END):]
    lines = readme.split("\n")
    section = next((i for i, line in enumerate(lines) if re.match(r"^##\s+Variables\s*$", line)), None)
    if section is not None:
        stop = next((i for i in range(section + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        first = next((i for i in range(section + 1, stop) if lines[i].lstrip().startswith("|")), None)
        if first is not None:
            last = first
            while last + 1 < stop and lines[last + 1].lstrip().startswith("|"):
                last += 1
            return "\n".join(lines[:first] + [generated] + lines[last + 1:])
        # a Variables section without a table: the table goes at its end
        while stop > section + 1 and lines[stop - 1].strip() == "":
            stop -= 1
        return "\n".join(lines[:stop] + ["", generated, ""] + lines[stop:]).replace("\n\n\n", "\n\n")
    anchor = next((i for i, line in enumerate(lines) if re.match(r"^##\s+(Example|Dependencies)", line)), None)
    new = ["## Variables", "", generated, ""]
    if anchor is None:
        body = readme.rstrip("\n") if readme.strip() else "# %s" % role
        return body + "\n\n" + "\n".join(new)
    return "\n".join(lines[:anchor] + new + lines[anchor:])


def roles_of(roles_dir: Path, names: list[str]) -> list[Path]:
    found = sorted(p.parent.parent for p in roles_dir.glob("*/meta/argument_specs.yml"))
    if not names:
        return found
    unknown = sorted(set(names) - {p.name for p in found})
    if unknown:
        raise SystemExit("no meta/argument_specs.yml for: %s" % ", ".join(unknown))
    return [p for p in found if p.name in names]


def check_role(role_dir: Path) -> tuple[str, str]:
    """(current README text, wanted README text) of one role."""
    readme_file = role_dir / "README.md"
    current = readme_file.read_text() if readme_file.exists() else ""
    wanted = updated_readme(current, block(role_dir), "sesacthon.kubeadm_aws.%s" % role_dir.name)
    if not wanted.endswith("\n"):
        wanted += "\n"
    return current, wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 when a README is not up to date")
    mode.add_argument("--write", action="store_true", help="rewrite the READMEs that are not up to date")
    parser.add_argument("--roles-dir", type=Path, default=REPO / "roles", help="default: the repository's roles/")
    parser.add_argument("roles", nargs="*", help="only these roles (default: every role with an argument spec)")
    args = parser.parse_args(argv)

    stale, failed = [], []
    for role_dir in roles_of(args.roles_dir, args.roles):
        readme = role_dir / "README.md"
        try:
            current, wanted = check_role(role_dir)
        except (ValueError, KeyError, yaml.YAMLError) as e:
            failed.append("%s: %s" % (readme, e))
            continue
        if current == wanted:
            continue
        stale.append(readme)
        if args.write:
            readme.write_text(wanted)
            print("updated %s" % readme)
    for message in failed:
        print("error: %s" % message, file=sys.stderr)
    if args.check and stale:
        print("README variable tables not up to date with meta/argument_specs.yml (run `make docs`):",
              file=sys.stderr)
        for readme in stale:
            print("  %s" % readme, file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
