"""Reddit-Movie (He et al., 2023) in the CRSLab-style turn JSONL used by CRS toolkits.

Each line is one recommendation point (a recommender reply) of a Reddit thread:

| field | required | meaning |
|---|---|---|
| `context` | yes | earlier utterances, oldest first: strings (optionally "User: ..." / "System: ...") |
| `rec` | yes | movies recommended in the reply: titles, or ids with titles in `rec_name` / the catalogue |
| `resp` | no | the reply text itself (not part of the context) |
| `entity_name` (or `entity`) | no | movies mentioned in the context, oldest first: the history |
| `rec_name` | no | titles for the ids in `rec`, same order |
| `dialog_id` (or `conv_id`, `conversation_id`) | no | the thread id; else "<file stem>:<line>" |
| `turn_id` | no | position of the reply in the thread; else the context length |
| `roles` | no | role per context utterance ("seeker"/"recommender", "User"/"System") |

Roles, when neither `roles` nor prefixes give them, alternate backwards from the last
context utterance, which is the seeker's (the reply answers it). Reddit-Movie links movies to
IMDb; the catalogue `entity2id.json` ("Title (Year)" -> IMDb id) turns ids back into titles.
As for INSPIRED, `Mention.key` is the title ("Title (Year)"). A record repeated with the same
(dialogue, turn) is kept once and counted as a duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rar.data.custom import PREFIX_RE, ROLE_PREFIXES
from rar.data.errors import DataFormatError, iter_jsonl, read_text, require_fields
from rar.data.samples import (
    MAX_HISTORY,
    RECOMMENDER,
    SEEKER,
    DialogueSamples,
    make_sample,
    unique_keep_first,
)
from rar.data.types import Mention, Turn

CATALOGUE = "entity2id.json"
ID_FIELDS = ("dialog_id", "conv_id", "conversation_id")


def load_catalogue(path: Path) -> dict[str, str]:
    """Reddit-Movie's `entity2id.json` inverted: {item id: "Title (Year)"}."""
    try:
        mapping = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: malformed JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(mapping, dict):
        raise DataFormatError(f"{path}: expected a JSON object of title -> id")
    return {str(item_id): " ".join(str(title).split()) for title, item_id in mapping.items()}


def _context(utterances: object, roles: object, where: str) -> list[Turn]:
    if isinstance(utterances, str):
        utterances = [utterances]
    if not isinstance(utterances, list):
        raise DataFormatError(f"{where}: 'context' must be a list of utterances")
    given = roles if isinstance(roles, list) and len(roles) == len(utterances) else None
    turns: list[Turn] = []
    count = len(utterances)
    for index, utterance in enumerate(utterances):
        text = str(utterance)
        match = PREFIX_RE.match(text)
        if given is not None:
            role = ROLE_PREFIXES.get(str(given[index]).strip().lower(), str(given[index]).lower())
            if role not in (SEEKER, RECOMMENDER):
                raise DataFormatError(f"{where}: role {given[index]!r} of utterance {index}")
        elif match:
            role = ROLE_PREFIXES[match.group(1).lower()]
        else:
            role = SEEKER if (count - 1 - index) % 2 == 0 else RECOMMENDER
        if match:
            text = match.group(2)
        turns.append(Turn(role, text.strip()))
    return turns


def _movies(values: object, names: object, catalogue: dict[str, str]) -> list[Mention]:
    if values is None:
        return []
    if not isinstance(values, list):
        values = [values]
    titles = names if isinstance(names, list) and len(names) == len(values) else None
    mentions = []
    for index, value in enumerate(values):
        raw = " ".join(str(value).split())
        if not raw:
            continue
        title = str(titles[index]) if titles is not None else catalogue.get(raw, raw)
        title = " ".join(title.split())
        mentions.append(Mention(title, title))
    return mentions


@dataclass
class RedditLoad:
    records: list[DialogueSamples]
    duplicates: int


def load_reddit(
    path: Path,
    catalogue: dict[str, str] | None = None,
    dataset: str = "reddit",
    max_history: int = MAX_HISTORY,
) -> RedditLoad:
    """Samples from one Reddit-Movie turn JSONL file, grouped by thread."""
    path = Path(path)
    if catalogue is None:
        candidate = path.parent / CATALOGUE
        catalogue = load_catalogue(candidate) if candidate.is_file() else {}
    records: dict[str, DialogueSamples] = {}
    seen: set[tuple[str, int]] = set()
    duplicates = 0
    for line_no, record in iter_jsonl(path):
        where = f"{path}, line {line_no}"
        require_fields(record, ("context", "rec"), path, line_no)
        dialogue_id = next(
            (str(record[k]) for k in ID_FIELDS if record.get(k) not in (None, "")),
            f"{path.stem}:{line_no}",
        )
        context = _context(record["context"], record.get("roles") or record.get("role"), where)
        turn_index = record.get("turn_id")
        turn_index = (
            int(turn_index)
            if isinstance(turn_index, int | str) and str(turn_index).isdigit()
            else len(context)
        )
        if (dialogue_id, turn_index) in seen:
            duplicates += 1
            continue
        seen.add((dialogue_id, turn_index))
        history_field = "entity_name" if "entity_name" in record else "entity"
        history = _movies(record.get(history_field), None, catalogue)
        targets = _movies(record["rec"], record.get("rec_name"), catalogue)
        group = records.setdefault(dialogue_id, DialogueSamples(dialogue_id, [], 0))
        known = set(group.mention_keys)
        group.mentions.extend(m for m in unique_keep_first(history) if m.key not in known)
        group.mentions.extend(targets)
        sample = make_sample(
            dataset, dialogue_id, turn_index, context, history, targets, max_history
        )
        if sample is None:
            group.dropped += 1
        else:
            group.samples.append(sample)
    return RedditLoad(list(records.values()), duplicates)
