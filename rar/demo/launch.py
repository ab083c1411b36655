"""What `rar demo` settles before and around serving: the port is free (checked before the
model loads, so a busy port costs no minutes), every temporary file lives in one private
directory (mode 0700) that is removed on exit, and SIGTERM stops the server like Ctrl-C does,
so that removal runs."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rar.errors import InputError

log = logging.getLogger(__name__)
_STALE_NAME = re.compile(r"rar-demo-(\d+)-[A-Za-z0-9_]+")
_DEMO_ENTRIES = {"exports", "gradio"}  # all `rar demo` writes into its directory
PORT_BUSY = "Cannot find empty port"  # how Gradio reports a port taken between check and launch


def port_in_use_error(host: str, port: int) -> InputError:
    return InputError(
        f"port {port} on {host} is already in use (another `rar demo` or server?): pass "
        "--port with a free port, or stop the program using it"
    )


def check_port(host: str, port: int) -> None:
    """Refuse a port something already listens on; the same bind options as the server's
    (SO_REUSEADDR), so a port left in TIME_WAIT by a previous demo is not refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host!r} is not an address of this machine ({exc})") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise port_in_use_error(host, port) from None
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise InputError(f"--host {host}: not an address of this machine") from None
                raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_dirs(base: Path | None = None) -> list[Path]:
    """Remove what a demo killed with SIGKILL left (its `finally` never ran): only directories
    named `rar-demo-<pid>-*` by `private_temp_dir`, owned by this user, holding nothing but
    what a demo writes, and whose process is gone. Returns the directories removed."""
    base = Path(base or tempfile.gettempdir())
    removed = []
    for path in base.glob("rar-demo-*-*"):
        match = _STALE_NAME.fullmatch(path.name)
        if match is None or path.is_symlink() or not path.is_dir():
            continue
        if path.stat().st_uid != os.getuid() or _alive(int(match.group(1))):
            continue
        if {p.name for p in path.iterdir()} - _DEMO_ENTRIES:
            continue  # something we did not write: not ours to delete
        shutil.rmtree(path, ignore_errors=True)
        log.warning("removed %s, left by a demo process that no longer runs", path)
        removed.append(path)
    return removed


@contextlib.contextmanager
def private_temp_dir() -> Iterator[Path]:
    """A 0700 `rar-demo-<pid>-*` directory for the exports and Gradio's file cache
    (GRADIO_TEMP_DIR, else /tmp/gradio, shared and world-readable), removed with everything in
    it on exit; the pid lets a later demo remove it after a SIGKILL (`remove_stale_dirs`)."""
    root = Path(tempfile.mkdtemp(prefix=f"rar-demo-{os.getpid()}-"))
    before = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(root / "gradio")
    try:
        yield root
    finally:
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before
        shutil.rmtree(root, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, systemd, a test's terminate()) raises KeyboardInterrupt like Ctrl-C: Gradio
    then closes its server and the `finally` blocks that remove temporary files run."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
