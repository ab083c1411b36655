"""Where data lives: `--data-dir`, else `$RAR_DATA_DIR`, else `./data`."""

from __future__ import annotations

import os
from pathlib import Path

from rar.errors import MissingPathError

DATA_DIR_ENV = "RAR_DATA_DIR"


def resolve_data_dir(data_dir: str | Path | None = None, must_exist: bool = True) -> Path:
    """The data directory a command should read, with a helpful error when it is missing."""
    if data_dir is not None:
        path = Path(data_dir)
    elif os.environ.get(DATA_DIR_ENV):
        path = Path(os.environ[DATA_DIR_ENV])
    else:
        path = Path("data")
    if must_exist and not path.is_dir():
        raise MissingPathError(
            f"data directory '{path}' does not exist. Pass --data-dir DIR, set ${DATA_DIR_ENV}, "
            f"or fetch the datasets with `rar download --to {path}`."
        )
    return path
