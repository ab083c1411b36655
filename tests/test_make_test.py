"""The README's test command on a fresh machine: `make test` installs the browser its demo tests
need (tools/install_browser.sh) before pytest, and `.ci/run` is nothing but that command.

The install script runs for real with a PATH of fake `id`, `sudo`, `apt-get` and `chromedriver`
programs, so every branch (found, root, passwordless sudo, no way to install) is exercised
without touching the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "install_browser.sh"
BASH = shutil.which("bash") or "/bin/bash"


def _make_n(target: str) -> list[str]:
    result = subprocess.run(
        ["make", "-n", target, "VENV=/nonexistent/venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _index(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines) if needle in line)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_installs_the_browser_after_the_venv_and_before_pytest():
    lines = _make_n("test")
    venv, browser = _index(lines, "-m venv"), _index(lines, "tools/install_browser.sh")
    assert venv < browser < _index(lines, "-m pytest")
    # test-fast leaves the browser tests out (they are slow), so it needs no browser
    assert not any("install_browser" in line for line in _make_n("test-fast"))


def test_ci_runs_exactly_the_readme_command():
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] == "make test"
    assert all(c.startswith(("set ", "cd ", "export ")) for c in commands[:-1]), commands
    assert "make test" in (ROOT / "README.md").read_text(encoding="utf-8")


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def _fake_machine(tmp_path: Path, uid: int, sudo: str | None, apt: bool) -> Path:
    """A PATH holding only fake programs: `id -u` prints `uid`; `sudo` is absent, refuses
    (`sudo="refuses"`) or runs its command (`sudo="allows"`); `apt-get` logs its arguments and
    its `install` puts a chromedriver on the PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    _fake(bin_dir, "id", f"echo {uid}")
    if sudo == "refuses":
        _fake(bin_dir, "sudo", "exit 1")
    elif sudo == "allows":
        _fake(bin_dir, "sudo", f'echo "sudo $*" >> {log}\nshift\n[ "$1" = true ] || exec "$@"')
    if apt:
        driver = bin_dir / "chromedriver"
        _fake(
            bin_dir,
            "apt-get",
            f'echo "apt-get $*" >> {log}\n'
            f'case "$*" in *install*) printf "#!/bin/sh\\n" > {driver}; '
            f"/bin/chmod 755 {driver};; esac",
        )
    return bin_dir


def _install(bin_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASH, str(SCRIPT)],
        env={"PATH": str(bin_dir), "HOME": str(bin_dir.parent), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_a_chromedriver_already_there_installs_nothing(tmp_path):
    bin_dir = _fake_machine(tmp_path, uid=0, sudo=None, apt=True)
    _fake(bin_dir, "chromedriver", "exit 0")
    result = _install(bin_dir)
    assert result.returncode == 0, result.stderr
    assert _calls(tmp_path) == []
    # $RAR_CHROMEDRIVER counts too, with nothing on the PATH
    (bin_dir / "chromedriver").rename(tmp_path / "my-driver")
    result = _install(bin_dir, RAR_CHROMEDRIVER=str(tmp_path / "my-driver"))
    assert result.returncode == 0 and _calls(tmp_path) == []


@pytest.mark.parametrize("sudo", [None, "allows"])
def test_root_or_passwordless_sudo_installs_chromium_with_apt(tmp_path, sudo):
    bin_dir = _fake_machine(tmp_path, uid=0 if sudo is None else 1000, sudo=sudo, apt=True)
    result = _install(bin_dir)
    assert result.returncode == 0, result.stderr
    calls = [c for c in _calls(tmp_path) if c.startswith("apt-get")]
    assert calls == ["apt-get update -qq", "apt-get install -y -qq chromium chromium-driver"]
    if sudo:
        sudo_calls = [c for c in _calls(tmp_path) if c.startswith("sudo")]
        assert sudo_calls == ["sudo -n true", *(f"sudo -n {c}" for c in calls)]


@pytest.mark.parametrize("sudo", [None, "refuses"])
def test_without_root_or_sudo_it_says_what_to_install_and_fails(tmp_path, sudo):
    bin_dir = _fake_machine(tmp_path, uid=1000, sudo=sudo, apt=True)
    result = _install(bin_dir)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "root or passwordless sudo" in line
    assert "apt-get install chromium chromium-driver" in line and "RAR_CHROMEDRIVER" in line
    assert _calls(tmp_path) == []  # apt-get never ran


def test_without_apt_it_says_so_and_fails(tmp_path):
    bin_dir = _fake_machine(tmp_path, uid=0, sudo=None, apt=False)
    result = _install(bin_dir)
    assert result.returncode == 1
    assert "no apt-get" in result.stderr and "RAR_CHROMEDRIVER" in result.stderr


def test_the_install_script_is_executable_bash():
    assert SCRIPT.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash")
    assert os.access(SCRIPT, os.X_OK)
