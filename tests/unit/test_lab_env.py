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


def _lab_env(repo: Path, **env: str) -> dict[str, str]:
    script = f". '{repo}/lab/lab.env' && printf '%s\\n' \"$LAB_FIXTURES_DIR\" \"$LAB_ARGOCD_CHART\""
    out = subprocess.run(["bash", "-c", script], env={"PATH": "/usr/bin:/bin", "HOME": str(repo), **env},
                         check=True, capture_output=True, text=True).stdout.splitlines()
    return {"LAB_FIXTURES_DIR": out[0], "LAB_ARGOCD_CHART": out[1]}


def _fixtures_dir(repo: Path, **env: str) -> str:
    return _lab_env(repo, **env)["LAB_FIXTURES_DIR"]


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


def test_the_argocd_chart_is_taken_from_the_fixtures_unless_given(tmp_path):
    repo = _checkout(tmp_path)
    (tmp_path / "shared" / "fixtures").mkdir(parents=True)
    assert _lab_env(repo)["LAB_ARGOCD_CHART"] == str(tmp_path / "shared" / "fixtures" / "helm-charts" / "argo-cd")
    assert _lab_env(repo, LAB_ARGOCD_CHART="/charts/argo-cd")["LAB_ARGOCD_CHART"] == "/charts/argo-cd"
