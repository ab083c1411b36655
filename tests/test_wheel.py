"""The wheel works outside the checkout: built from the sources, installed into a fresh
virtualenv, and run from an empty directory, every command finds the shipped configs (package
data, `rar/configs/`) by name. Nothing is downloaded: the new virtualenv sees this one's
dependencies through a .pth file, and only the wheel is installed into it (`--no-deps`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from rar.config import load_config, packaged_configs
from rar.rankers.ranker_config import RankerConfig

ROOT = Path(__file__).resolve().parents[1]  # about 15 s in all: not marked slow


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """A subprocess that sees neither the checkout (no PYTHONPATH) nor the network."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAR_DATA_DIR")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PIP_NO_INDEX="1", COLUMNS="200")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the new virtualenv's bin/, an empty working directory) after building the wheel from a
    copy of the sources (so the build leaves nothing in the checkout) and installing it."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("rar", "corpus_builder"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    dist, venv, empty = tmp / "dist", tmp / "venv", tmp / "empty"
    empty.mkdir()
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)], tmp)
    [wheel] = dist.glob("rar-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp)
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(site.stdout.strip(), "parent-deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    _run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)], tmp)
    return venv / "bin", empty


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    bin_dir, empty = installed
    code = "import json, rar, rar.config as c; print(json.dumps([rar.__file__, {n: str(p) for n, p in c.packaged_configs().items()}]))"
    where, shipped = json.loads(_run([str(bin_dir / "python"), "-c", code], empty).stdout)
    assert Path(where).is_relative_to(bin_dir.parent) and not Path(where).is_relative_to(ROOT)
    assert sorted(shipped) == sorted(packaged_configs())  # every shipped config is in the wheel
    assert all(Path(p).is_relative_to(bin_dir.parent) for p in shipped.values())


def test_rar_train_resolves_a_packaged_name_and_fails_only_for_the_missing_corpus(installed):
    bin_dir, empty = installed
    proc = _run([str(bin_dir / "rar"), "train", "--config", "redial_dpo_semantic"], empty, False)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: corpus is not a corpus directory"), line
    unknown = _run([str(bin_dir / "rar"), "train", "--config", "no_such_config"], empty, False)
    [line] = unknown.stderr.strip().splitlines()
    assert unknown.returncode == 2 and "redial_dpo_semantic" in line and "packaged" in line


def test_the_quickstart_finds_its_configs_and_stops_at_the_missing_data(installed):
    bin_dir, empty = installed
    (empty / "data").mkdir(exist_ok=True)
    proc = _run(
        [str(bin_dir / "rar"), "quickstart", "--data-dir", "data", "--out", "qs"], empty, False
    )
    assert proc.returncode == 2
    assert "building the movie corpus" in proc.stdout  # its corpus config loaded
    assert proc.stderr.strip().startswith("error: input not found: movielens"), proc.stderr


def test_the_demo_offers_the_shipped_ranker_configs(installed):
    bin_dir, empty = installed
    code = (
        "import json; from rar.commands.demo_cmd import ranker_configs; "
        "c = ranker_configs(['semantic', 'openai', 'llamacpp'], None, 30.0); "
        "print(json.dumps({k: v.model_dump(mode='json') for k, v in c.items()}))"
    )
    offered = json.loads(_run([str(bin_dir / "python"), "-c", code], empty).stdout)
    assert list(offered) == ["semantic", "openai (gpt-5-mini)", "llamacpp"]
    for label, backend in zip(offered, ("semantic", "openai", "llamacpp"), strict=True):
        shipped = load_config(RankerConfig, f"ranker_{backend}", ["limits.timeout_s=30"])
        assert offered[label] == shipped.model_dump(mode="json")
