"""The wheel carries the data edgekit needs at run time, and finds it when installed."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from clitools import run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True, capture_output=True,
    )
    return next(out.glob("edgekit-*.whl"))


def test_wheel_ships_targets_templates_and_kernels(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped_targets = {Path(n).name for n in names if n.startswith("edgekit/resources/targets/")}
    assert shipped_targets == {p.name for p in (REPO / "targets").glob("*.yaml")}
    templates = [n for n in names if n.startswith("edgekit/resources/firmware_templates/")]
    in_repo = [p for p in (REPO / "firmware_templates").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(templates) == len(in_repo)
    kernels = [p for p in (REPO / "edgekit").rglob("*.h")]
    assert {f"edgekit/{p.relative_to(REPO / 'edgekit').as_posix()}" for p in kernels} <= set(names)


def test_installed_wheel_finds_its_targets(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    # -I: no site hooks, so the editable install of this checkout cannot answer instead
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "import edgekit.resources as r, edgekit.targets as t;"
        "print(r.targets_dir()); print(r.templates_dir()); print(len(t.names()))"
    )
    site_packages = sysconfig.get_paths()["purelib"]
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(tmp_path / "site"), site_packages],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.split()
    assert out[0].startswith(str(tmp_path / "site")) and out[1].startswith(str(tmp_path / "site"))
    assert int(out[2]) == len(list((REPO / "targets").glob("*.yaml")))


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from edgekit.cli import main;\n"
        "try: main(['--help'])\nexcept SystemExit: pass\n"
        "heavy = [m for m in ('tensorflow', 'mlflow', 'onnxruntime', 'tflite_micro', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_python_dash_m_and_version():
    code, stdout, _ = run_cli("--version")
    assert code == 0 and "0.1.0" in stdout
