"""lab/lab.env finds the shared fixtures (the Argo CD chart, kubespray) for a checkout next to them and
for a clone made elsewhere (CI's clean clone), and a caller's LAB_FIXTURES_DIR wins."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _checkout(root: Path) -> Path:
    repo = root / "repo"
    (repo / "lab").mkdir(parents=True)
    for name in ("lab.env", "lab.conf"):
        shutil.copy(REPO / "lab" / name, repo / "lab" / name)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def _fixtures_dir(repo: Path, **env: str) -> str:
    script = f". '{repo}/lab/lab.env' && printf %s \"$LAB_FIXTURES_DIR\""
    return subprocess.run(["bash", "-c", script], env={"PATH": "/usr/bin:/bin", "HOME": str(repo), **env},
                          check=True, capture_output=True, text=True).stdout


def test_fixtures_next_to_the_repository(tmp_path):
    repo = _checkout(tmp_path)
    (tmp_path / "shared" / "fixtures").mkdir(parents=True)
    assert _fixtures_dir(repo) == str(tmp_path / "shared" / "fixtures")


def test_a_clone_elsewhere_finds_the_fixtures_of_its_origin(tmp_path):
    origin = _checkout(tmp_path / "work")
    (tmp_path / "work" / "shared" / "fixtures").mkdir(parents=True)
    clone = _checkout(tmp_path / "ci")
    subprocess.run(["git", "-C", str(clone), "remote", "add", "origin", f"file://{origin}"], check=True)
    assert _fixtures_dir(clone) == str(tmp_path / "work" / "shared" / "fixtures")


def test_the_callers_setting_wins(tmp_path):
    repo = _checkout(tmp_path)
    (tmp_path / "shared" / "fixtures").mkdir(parents=True)
    assert _fixtures_dir(repo, LAB_FIXTURES_DIR="/elsewhere") == "/elsewhere"
