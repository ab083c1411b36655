"""Every progress display goes through here: a live tqdm bar in a terminal, a few plain lines
in a log.

Why: tqdm redraws its bar with carriage returns; when stderr is a file or a pipe
(`make quickstart > log 2>&1`, CI) every redraw is kept, and a quickstart log grew by about
1 MB of frames. When stderr is not a terminal a bar here writes one line per 10% of its total
(one line at the end for a bar that does not stay on screen, or whose total is unknown)
instead.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Protocol, TextIO

LINE_STEPS = 10  # lines per bar in a log: one per 10%


class ProgressBar(Protocol):
    """The part of tqdm's interface the project uses."""

    n: int

    def update(self, n: int = 1) -> Any: ...
    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> Any: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> Any: ...
    def close(self) -> Any: ...
    def __enter__(self) -> ProgressBar: ...
    def __exit__(self, *exc: object) -> Any: ...


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def quiet_library_bars(stream: TextIO | None = None) -> None:
    """Outside a terminal, turn off the bars of Hugging Face libraries (transformers' "Loading
    weights", hub downloads): they are tqdm bars this module does not create. Call it before
    those libraries are imported (the `rar` entry point does)."""
    if not is_terminal(stream):
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def progress_bar(
    total: int | None,
    desc: str,
    unit: str = "it",
    *,
    enabled: bool = True,
    initial: int = 0,
    unit_scale: bool = False,
    leave: bool = True,
    stream: TextIO | None = None,
) -> ProgressBar:
    """A bar for `total` units: tqdm in a terminal, `LineProgress` elsewhere, nothing when
    `enabled` is false. Use it as a context manager (or call close())."""
    if not enabled:
        return NullProgress(initial)
    if is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            desc=desc,
            unit=unit,
            initial=initial,
            unit_scale=unit_scale,
            unit_divisor=1024 if unit_scale and unit == "B" else 1000,
            leave=leave,
            file=stream,
        )
    return LineProgress(total, desc, unit, initial, unit_scale, leave, stream)


class NullProgress:
    """Counts and shows nothing (progress turned off)."""

    def __init__(self, initial: int = 0):
        self.n = initial

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LineProgress(NullProgress):
    """Plain lines for logs: `desc: 40/400 sample (10%), 3.1s, loss=0.52`, one per 10%, and a
    closing line with the elapsed time and rate. Never a carriage return."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        initial: int = 0,
        unit_scale: bool = False,
        leave: bool = True,
        stream: TextIO | None = None,
    ):
        super().__init__(initial)
        self.total = total if total else None
        self.desc = desc
        self.unit = unit
        self.unit_scale = unit_scale
        self.leave = leave
        self.stream = stream
        self.postfix = ""
        self._start = time.monotonic()
        self._start_n = initial
        self._next_step = self._step_of(initial) + 1
        self._closed = False

    def _step_of(self, n: int) -> int:
        return n * LINE_STEPS // self.total if self.total else 0

    def _amount(self, n: float) -> str:
        if not self.unit_scale:
            return f"{n:,.0f}"
        from tqdm import tqdm

        return tqdm.format_sizeof(n, divisor=1024 if self.unit == "B" else 1000)

    def _write(self, text: str) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def _line(self, final: bool) -> str:
        elapsed = time.monotonic() - self._start
        unit = self.unit if self.unit_scale else f" {self.unit}"  # "977kB", "40 sample"
        done = self._amount(self.n)
        head = (
            f"{self.desc}: {done}/{self._amount(self.total)}{unit} "
            f"({100 * self.n / self.total:.0f}%)"
            if self.total
            else f"{self.desc}: {done}{unit}"
        )
        tail = f", {elapsed:.1f}s"
        if final and elapsed > 0 and self.n > self._start_n:
            tail += f" ({self._amount((self.n - self._start_n) / elapsed)}{unit}/s)"
        return head + tail + (f", {self.postfix}" if self.postfix else "")

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.leave or not self.total:
            return
        step = self._step_of(self.n)
        if step >= self._next_step and self.n < self.total:  # 100% is the closing line
            self._next_step = step + 1
            self._write(self._line(final=False))

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        items = dict(ordered_dict or {}) | kwargs
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._write(self._line(final=True))
