"""A GGUF file's weights in another format, converted once and cached (`llamacpp.weights`).

llama.cpp's speed on a CPU depends on the weight format more than on the model: the packaged
SmolLM2 file is Q4_1, which only llama.cpp's AMX kernels run fast; on AVX2 and AVX-512 CPUs
without AMX, an F16 or BF16 copy of the same weights ranks 1.6-2x as fast (docs/rankers.md). Converting up (Q4_1 to F16/BF16) only re-rounds each dequantised weight to
16 bits; Q8_0 re-rounds it to 8 bits per 32-weight block.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
from pathlib import Path
from typing import Literal

WeightsFormat = Literal["as_is", "f16", "bf16", "q8_0"]
FTYPES = {
    "f16": "LLAMA_FTYPE_MOSTLY_F16",
    "bf16": "LLAMA_FTYPE_MOSTLY_BF16",
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
}


def rar_cache_dir() -> Path:
    """$RAR_CACHE_DIR, else ~/.cache/rar: where converted model copies live."""
    return Path(os.environ.get("RAR_CACHE_DIR") or Path.home() / ".cache" / "rar")


def file_tag(path: Path) -> str:
    """12 hex digits naming `path` as it is now (its real path, size and time): a cached copy
    of a file that was replaced or edited gets a new name instead of going stale."""
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def converted_path(source: Path, weights: str) -> Path:
    """Where the `weights` copy of `source` is cached."""
    return rar_cache_dir() / "gguf" / f"{source.stem}.{weights.upper()}-{file_tag(source)}.gguf"


def gguf_with_weights(source: Path, weights: WeightsFormat) -> Path:
    """`source` itself for "as_is", else its cached copy in `weights` format (made on first use).

    The copy is written beside its final name and renamed into place, so a reader never sees
    half a file; two processes converting at once each write their own and the last rename wins
    with an identical file."""
    if weights == "as_is":
        return source
    if weights not in FTYPES:
        raise ValueError(
            f"ranker.llamacpp.weights: {weights!r}; use one of as_is, {', '.join(FTYPES)}"
        )
    out = converted_path(source, weights)
    if out.is_file():
        return out
    import llama_cpp

    try:  # llama.cpp prints a line per tensor while converting
        from llama_cpp._utils import suppress_stdout_stderr

        quiet: contextlib.AbstractContextManager[object] = suppress_stdout_stderr(disable=False)
    except ImportError:
        quiet = contextlib.nullcontext()

    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(f"{out.name}.{os.getpid()}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[weights])
    params.allow_requantize = True  # the source is itself quantised
    try:
        with quiet:
            code = llama_cpp.llama_model_quantize(
                str(source).encode(), str(staged).encode(), ctypes.byref(params)
            )
        if code != 0 or not staged.is_file():
            raise RuntimeError(
                f"llama.cpp could not convert {source} to {weights} (llama_model_quantize "
                f"returned {code})"
            )
        os.replace(staged, out)
    finally:
        staged.unlink(missing_ok=True)
    return out
