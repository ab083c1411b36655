"""ReDial (Li et al., 2018) official JSONL: one conversation per line.

Roles follow the ReDial datasheet: `initiatorWorkerId` is the movie seeker,
`respondentWorkerId` the recommender. Movies appear in message text as `@<movieId>`; their
titles come from the conversation's `movieMentions`, else from the official
`movies_with_mentions.csv` when it sits beside the files. In `Turn.text` each `@<movieId>` is
replaced by the title so a language model reads titles, not ids; `Mention.key` keeps the id.
`@Free text` mentions (no digits) are plain text: ReDial only annotates `@<digits>`.

Extra fields (the processed copies add `entity`, `item`, `masked_text`, ...) are ignored.
A conversation found in several files is kept once: the copy with the most messages wins
(processed copies merge consecutive messages; the official one keeps them apart), ties go to
the first file. Duplicates are counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rar.data.errors import DataFormatError, iter_jsonl, read_table, require_columns, require_fields
from rar.data.samples import RECOMMENDER, SEEKER
from rar.data.types import Dialogue, Mention, Turn

MENTION_RE = re.compile(r"@(\d+)")
MOVIE_LIST = "movies_with_mentions.csv"
REQUIRED = ("conversationId", "messages", "initiatorWorkerId", "respondentWorkerId")


def clean_title(title: str) -> str:
    """ReDial titles carry doubled spaces ("The Shining  (1980)"): collapse whitespace."""
    return " ".join(str(title).split())


def load_movie_list(path: Path) -> dict[str, str]:
    """The official movie list `movieId,movieName,nbMentions` as {movieId: title}."""
    frame = read_table(path, dtype={"movieId": str, "movieName": str}, keep_default_na=False)
    require_columns(frame, ["movieId", "movieName"], path)
    return dict(zip(frame["movieId"], (clean_title(t) for t in frame["movieName"]), strict=True))


def _with_titles(text: str, titles: dict[str, str]) -> str:
    """`@<movieId>` replaced by the movie's title where it is known."""
    return MENTION_RE.sub(lambda m: titles.get(m.group(1), m.group(0)), text)


@dataclass
class ReDialLoad:
    dialogues: list[Dialogue]
    duplicates: int


def _parse_conversation(
    record: dict, path: Path, line_no: int, fallback_titles: dict[str, str]
) -> Dialogue:
    require_fields(record, REQUIRED, path, line_no)
    raw_mentions = record.get("movieMentions") or {}
    if not isinstance(raw_mentions, dict):
        raw_mentions = {}
    titles = {str(k): clean_title(v) for k, v in raw_mentions.items() if v}
    roles = {
        str(record["initiatorWorkerId"]): SEEKER,
        str(record["respondentWorkerId"]): RECOMMENDER,
    }
    messages = record["messages"]
    if not isinstance(messages, list):
        raise DataFormatError(f"{path}, line {line_no}: 'messages' must be a list")
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or "text" not in message
            or "senderWorkerId" not in message
        ):
            raise DataFormatError(
                f"{path}, line {line_no}: message {index} needs 'senderWorkerId' and 'text'"
            )
        sender = str(message["senderWorkerId"])
        if sender not in roles:
            raise DataFormatError(
                f"{path}, line {line_no}: message {index} sender {sender} is neither the "
                f"initiator nor the respondent"
            )
        text = str(message["text"])
        mentions: list[Mention] = []
        seen: set[str] = set()
        for movie_id in MENTION_RE.findall(text):
            if movie_id not in seen:
                seen.add(movie_id)
                title = titles.get(movie_id) or fallback_titles.get(movie_id, "")
                mentions.append(Mention(movie_id, title))
        by_id = {m.key: m.title for m in mentions if m.title}
        if by_id:
            text = _with_titles(text, by_id)
        turns.append(Turn(roles[sender], text, mentions))
    return Dialogue(str(record["conversationId"]), turns, source=str(path))


def load_redial(paths: Sequence[Path], movie_list: Path | None = None) -> ReDialLoad:
    """Dialogues from ReDial JSONL files, deduplicated by conversationId across files."""
    fallback: dict[str, str] = {}
    if movie_list is None and paths:
        candidate = Path(paths[0]).parent / MOVIE_LIST
        movie_list = candidate if candidate.is_file() else None
    if movie_list is not None:
        fallback = load_movie_list(movie_list)
    kept: dict[str, Dialogue] = {}
    duplicates = 0
    for path in paths:
        path = Path(path)
        for line_no, record in iter_jsonl(path):
            dialogue = _parse_conversation(record, path, line_no, fallback)
            previous = kept.get(dialogue.dialogue_id)
            if previous is None:
                kept[dialogue.dialogue_id] = dialogue
                continue
            duplicates += 1
            if len(dialogue.turns) > len(previous.turns):
                kept[dialogue.dialogue_id] = dialogue
    return ReDialLoad(list(kept.values()), duplicates)
