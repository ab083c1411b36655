"""Ranker calls that finally failed: counted per system, an error past a share (they are scored
as misses by `rar.pipeline.scored_ranking`).

Why: a failed call's RankResult still carries the retriever order (so a run never stops on one
bad reply), and scoring that order as the ranker's output once reported the retriever as the
re-ranked system, with exit status 0, when every call had been refused (HTTP 401).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rar.errors import RarError

EXIT_FAILED_CALLS = 3  # `rar evaluate` / `rar train` exit status when too many calls failed


class FailedCallsError(RarError, RuntimeError):
    """Too many ranker calls failed for the metrics to describe the ranker."""

    exit_code = EXIT_FAILED_CALLS


def failed_share(failed: int, total: int) -> float:
    return failed / total if total else 0.0


def describe_failures(failed: int, total: int, what: str) -> str:
    """'3 of 10 ranker calls failed (30.0%) for <what>'."""
    return f"{failed} of {total} ranker calls failed ({failed_share(failed, total):.1%}) for {what}"


def check_failed_calls(
    systems: Mapping[str, Mapping[str, Any]], max_failed_share: float | None
) -> list[str]:
    """Warnings for systems with failed calls; raises FailedCallsError when a system's failed
    share exceeds `max_failed_share` (None: only when every one of its calls failed).

    `systems` is evaluation.json's "systems" dict (each with failed_samples / num_samples)."""
    warnings: list[str] = []
    errors: list[str] = []
    for name, system in systems.items():
        failed = system.get("failed_samples")
        total = int(system.get("num_samples") or 0)
        if not failed or not total:
            continue
        line = describe_failures(int(failed), total, f"'{name}'")
        example = system.get("first_error")
        detail = f"{line}; those samples are scored as misses" + (
            f" (e.g. {example})" if example else ""
        )
        too_many = (
            failed >= total
            if max_failed_share is None
            else failed_share(failed, total) > max_failed_share
        )
        (errors if too_many else warnings).append(detail)
    if errors:
        limit = (
            "every call failed"
            if max_failed_share is None
            else f"more than max_failed_share = {max_failed_share:g} failed"
        )
        raise FailedCallsError(
            f"{'; '.join(errors)} — {limit}, so these results do not describe the ranker; "
            "check the ranker's server, base_url and API key"
        )
    return warnings
