"""The generic "context + target titles" format, so users can bring their own conversations.

A CSV or JSONL file with one row per recommendation point:

| field | required | meaning |
|---|---|---|
| `context` (or `full_situation`) | yes | the conversation so far: lines "User: ..." / "System: ..." |
| `targets` (or `movies`) | yes | titles recommended at this point: a list (Python or JSON literal in CSV, a JSON array in JSONL) or "A|B" |
| `history` | no | titles mentioned earlier, oldest first (same list syntax) |
| `dialogue_id` | no | groups rows of one conversation (for splits and history) |

Context lines starting with `User:` / `Seeker:` / `Human:` are seeker turns; `System:` /
`Recommender:` / `Assistant:` / `Bot:` recommender turns; other lines continue the previous
turn; a trailing empty prefix line (`System: `, the turn being predicted) is dropped. In JSONL,
`context` may instead be a list of `{"role", "text"}` objects or of prefixed strings.

Without `dialogue_id`, consecutive rows whose context extends the previous row's context are
one conversation (as in INSPIRED's context/target CSV). Without `history`, the targets of the
earlier rows of the same conversation are the history. Titles are the movie keys.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rar.data.errors import DataFormatError, iter_jsonl, read_table
from rar.data.samples import (
    DROP_NO_NEW_TARGET,
    DROP_NO_TARGET,
    MAX_HISTORY,
    RECOMMENDER,
    SEEKER,
    DialogueSamples,
    DroppedRow,
    make_sample,
    unique_keep_first,
)
from rar.data.types import Mention, Turn

log = logging.getLogger(__name__)

CONTEXT_FIELDS = ("context", "full_situation")
TARGET_FIELDS = ("targets", "movies")
ROLE_PREFIXES = {
    "user": SEEKER,
    "seeker": SEEKER,
    "human": SEEKER,
    "system": RECOMMENDER,
    "recommender": RECOMMENDER,
    "assistant": RECOMMENDER,
    "bot": RECOMMENDER,
}
PREFIX_RE = re.compile(r"^\s*(" + "|".join(ROLE_PREFIXES) + r")\s*:\s?(.*)$", re.IGNORECASE)


def parse_context(text: str) -> list[Turn]:
    """Turns from "Role: text" lines (see the module docstring)."""
    turns: list[Turn] = []
    for line in str(text).splitlines():
        match = PREFIX_RE.match(line)
        if match:
            turns.append(Turn(ROLE_PREFIXES[match.group(1).lower()], match.group(2).strip()))
        elif line.strip():
            if turns:
                turns[-1].text = f"{turns[-1].text}\n{line.strip()}".strip()
            else:
                turns.append(Turn(SEEKER, line.strip()))
    while turns and not turns[-1].text:
        turns.pop()
    return turns


def _context_turns(value: Any, where: str) -> list[Turn]:
    if isinstance(value, str):
        return parse_context(value)
    if isinstance(value, list):
        turns: list[Turn] = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                turns.extend(parse_context(item))
            elif isinstance(item, dict) and "role" in item and "text" in item:
                role = ROLE_PREFIXES.get(str(item["role"]).strip().lower())
                if role is None:
                    raise DataFormatError(
                        f"{where}: context turn {index} has role {item['role']!r}"
                    )
                turns.append(Turn(role, str(item["text"])))
            else:
                raise DataFormatError(
                    f"{where}: context turn {index} must be a string or {{'role', 'text'}}"
                )
        return turns
    raise DataFormatError(f"{where}: context must be text or a list of turns")


def parse_titles(value: Any, where: str) -> list[str]:
    """A list of titles from a list, a Python/JSON list literal, or "A|B"."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, list):
        return [
            " ".join(_title(v, i, where).split()) for i, v in enumerate(value) if str(v).strip()
        ]
    text = str(value).strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                raise DataFormatError(f"{where}: {text[:60]!r} is not a valid list") from None
        if not isinstance(parsed, list):
            raise DataFormatError(f"{where}: {text[:60]!r} is not a list")
        return parse_titles(parsed, where)
    return [" ".join(p.split()) for p in text.split("|") if p.strip()]


def _title(value: Any, index: int, where: str) -> str:
    """One title of a list: text (or a whole number, e.g. 1917). A nested list or an object is
    refused rather than stringified into a "title" that links to nothing or to a wrong movie."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    shown = json.dumps(value, ensure_ascii=False, default=str)[:60]
    raise DataFormatError(
        f"{where}: item {index + 1} is {shown}, not a title: write each title as a string, "
        'e.g. ["Heat", "Alien"]'
    )


def _pick(fields: Iterable[str], names: tuple[str, ...], path: Path, what: str) -> str:
    fields = list(fields)
    for name in names:
        if name in fields:
            return name
    raise DataFormatError(
        f"{path}: missing column {names[0]!r} (or {', '.join(repr(n) for n in names[1:])}) "
        f"for the {what}; found: {', '.join(map(str, fields))}"
    )


@dataclass
class _Row:
    where: str
    line: int  # 1-based line of the row in its file (CSV: the header is line 1)
    position: int
    context_text: str | None
    context: list[Turn]
    targets: list[str]
    history: list[str] | None
    dialogue_id: str | None


def _rows_from_csv(path: Path) -> list[_Row]:
    frame = read_table(path, dtype=str, keep_default_na=False)
    context_col = _pick(frame.columns, CONTEXT_FIELDS, path, "dialogue context")
    target_col = _pick(frame.columns, TARGET_FIELDS, path, "target titles")
    has_history = "history" in frame.columns
    has_id = "dialogue_id" in frame.columns
    rows = []
    for position, record in enumerate(frame.to_dict("records")):
        where = f"{path}, line {position + 2}"
        text = record[context_col]
        rows.append(
            _Row(
                where,
                position + 2,
                position,
                text,
                parse_context(text),
                parse_titles(record[target_col], f"{where}, column {target_col!r}"),
                parse_titles(record["history"], f"{where}, column 'history'")
                if has_history
                else None,
                str(record["dialogue_id"]) if has_id and str(record["dialogue_id"]) else None,
            )
        )
    return rows


def _rows_from_jsonl(path: Path) -> list[_Row]:
    rows = []
    for position, (line_no, record) in enumerate(iter_jsonl(path)):
        where = f"{path}, line {line_no}"
        if not isinstance(record, dict):
            raise DataFormatError(f"{where}: expected a JSON object")
        context_key = _pick(record, CONTEXT_FIELDS, path, "dialogue context")
        target_key = _pick(record, TARGET_FIELDS, path, "target titles")
        context = record[context_key]
        rows.append(
            _Row(
                where,
                line_no,
                position,
                context if isinstance(context, str) else None,
                _context_turns(context, where),
                parse_titles(record[target_key], f"{where}, field {target_key!r}"),
                parse_titles(record["history"], f"{where}, field 'history'")
                if "history" in record
                else None,
                str(record["dialogue_id"]) if record.get("dialogue_id") not in (None, "") else None,
            )
        )
    return rows


def _assign_dialogues(rows: list[_Row], stem: str) -> list[str]:
    """Dialogue id per row: explicit, else consecutive rows whose context extends the last."""
    ids: list[str] = []
    current = ""
    previous_text: str | None = None
    for row in rows:
        if row.dialogue_id is not None:
            ids.append(row.dialogue_id)
            continue
        text = row.context_text
        continues = (
            previous_text is not None
            and text is not None
            and previous_text.strip() != ""
            and text.startswith(previous_text.rstrip())
        )
        if not continues:
            current = f"{stem}:{row.position}"
        ids.append(current)
        previous_text = text
    return ids


def load_custom(
    path: Path, dataset: str = "custom", max_history: int = MAX_HISTORY
) -> list[DialogueSamples]:
    """Samples from a custom CSV/JSONL file, grouped by dialogue, with drops counted."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = _rows_from_jsonl(path)
    else:
        rows = _rows_from_csv(path)
    ids = _assign_dialogues(rows, path.stem)
    records: dict[str, DialogueSamples] = {}
    earlier: dict[str, list[Mention]] = {}
    seen_turns: set[tuple[str, int]] = set()
    for row, dialogue_id in zip(rows, ids, strict=True):
        record = records.setdefault(dialogue_id, DialogueSamples(dialogue_id, [], 0))
        targets = [Mention(t, t) for t in row.targets]
        if row.history is not None:
            history = [Mention(t, t) for t in row.history]
            known = set(record.mention_keys)  # explicit history: count titles not yet seen
            record.mentions.extend(m for m in unique_keep_first(history) if m.key not in known)
        else:
            history = list(earlier.get(dialogue_id, []))
        record.mentions.extend(targets)
        earlier.setdefault(dialogue_id, []).extend(targets)
        turn_index = len(row.context)
        if (dialogue_id, turn_index) in seen_turns:
            raise DataFormatError(
                f"{row.where}: a second row for dialogue {dialogue_id!r} at turn {turn_index}"
            )
        seen_turns.add((dialogue_id, turn_index))
        sample = make_sample(
            dataset, dialogue_id, turn_index, row.context, history, targets, max_history
        )
        if sample is None:
            record.dropped += 1
            reason = DROP_NO_TARGET if not targets else DROP_NO_NEW_TARGET
            record.drops.append(DroppedRow(str(path), row.line, reason))
        else:
            record.samples.append(sample)
    _warn_drops(
        path,
        len(rows),
        [d for r in records.values() for d in r.drops if d.reason == DROP_NO_TARGET],
    )
    return list(records.values())


def _warn_drops(path: Path, total: int, drops: list[DroppedRow]) -> None:
    """One warning per reason with the lines, so a half-empty file is never used silently.

    Only data defects warn; turns whose targets were all mentioned earlier are the documented
    no-shortcut rule and are only counted.
    """
    by_reason: dict[str, list[int]] = {}
    for drop in drops:
        by_reason.setdefault(drop.reason, []).append(drop.line)
    for reason, lines in sorted(by_reason.items()):
        shown = ", ".join(map(str, lines[:20])) + (", ..." if len(lines) > 20 else "")
        log.warning(
            "%s: %d of %d rows give no sample (%s): line%s %s",
            path,
            len(lines),
            total,
            reason,
            "s" if len(lines) > 1 else "",
            shown,
        )
