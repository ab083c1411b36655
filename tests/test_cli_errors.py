"""Shared CLI plumbing (rar/commands/common.py): the error boundary (the project's own input
errors are one line, exit 2; bugs keep their traceback) and flags as `--set` overrides."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer

from rar.commands.common import flag_overrides, user_errors
from rar.errors import InputError, MissingPathError, RarError, UnknownKeyError

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "rar", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_a_user_error_is_one_line_and_exit_2(tmp_path):
    result = _run(["data", "stats", "--data-dir", str(tmp_path / "missing")])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data directory"), result.stderr
    assert "Traceback" not in result.stderr


def test_an_internal_bug_keeps_its_traceback(tmp_path):
    # the same command, with an internal function broken: a KeyError that is not bad input
    code = textwrap.dedent(
        """
        import sys
        import rar.paths

        def broken(path):
            raise KeyError("internal bug")

        rar.paths.resolve_data_dir = broken
        sys.argv = ["rar", *sys.argv[1:]]
        from rar.cli import main

        main()
        """
    )
    result = _run(["data", "stats", "--data-dir", str(tmp_path)], code)
    assert result.returncode not in (0, 2), result.stderr
    assert "Traceback" in result.stderr and "internal bug" in result.stderr
    assert "error: internal bug" not in result.stderr


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (InputError("bad value [x]"), 2),
        (MissingPathError("no such run"), 2),
        (UnknownKeyError("no movie 'x'"), 2),
    ],
)
def test_rar_errors_exit_with_their_status(exc, status, capsys):
    with pytest.raises(typer.Exit) as info, user_errors():
        raise exc
    assert info.value.exit_code == status
    err = capsys.readouterr().err.strip()
    assert err == f"error: {exc}"  # rich markup in the message is printed as typed


def test_a_rar_error_subclass_sets_its_own_exit_status(capsys):
    class RankerDown(RarError):
        exit_code = 3

    with pytest.raises(typer.Exit) as info, user_errors():
        raise RankerDown("server down")
    assert info.value.exit_code == 3 and capsys.readouterr().err.strip() == "error: server down"


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("bug"), FileNotFoundError("bug")])
def test_builtin_errors_are_not_swallowed(exc):
    with pytest.raises(type(exc)), user_errors():
        raise exc


def test_rar_errors_are_still_the_builtins_library_callers_catch():
    assert issubclass(InputError, ValueError) and issubclass(MissingPathError, FileNotFoundError)
    assert str(UnknownKeyError("no movie 'x'")) == "no movie 'x'"  # not KeyError's repr
    with pytest.raises(KeyError):
        raise UnknownKeyError("x")


def test_flags_become_set_overrides_after_the_explicit_ones():
    extra = flag_overrides(
        ["corpus=a", "rl.k=5"],
        {"corpus": Path("b"), "name": None, "llm_only": True, "quiet": False, "k": 0},
    )
    assert extra == ["corpus=a", "rl.k=5", "corpus=b", "llm_only=true", "k=0"]


def test_a_flag_wins_over_a_set_of_the_same_key():
    from rar.config import load_config
    from rar.retrievers.pretrain_config import PretrainConfig

    cfg = load_config(PretrainConfig, None, flag_overrides(["name=a"], {"name": "b"}))
    assert cfg.name == "b"
