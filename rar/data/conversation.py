"""One conversation typed or saved by a user (`rar rank`, interactive chat): the file format,
and the movies and search text it yields for candidate retrieval (`rar.pipeline.ConversationRetrieval`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from rar.data.types import Mention, Turn
from rar.errors import InputError, MissingPathError

if TYPE_CHECKING:
    from rar.corpus import Corpus

ROLES = {"seeker", "recommender"}
_QUOTED = re.compile(r'"([^"]{2,120})"|\*([^*]{2,120})\*')


def load_conversation(path: str | Path) -> list[Turn]:
    """A conversation file: a JSON list of {"role": "seeker"|"recommender", "text": ...,
    optional "mentions": [title or {"key", "title"}]} (or {"turns": [...]})."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"conversation file not found: {path}")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a BOM is harmless
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            "save the conversation as UTF-8 JSON and run again"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict) and "turns" in data:
        data = data["turns"]
    if not isinstance(data, list) or not data:
        raise InputError(f'{path}: expected a non-empty JSON list of turns {{"role", "text"}}')
    turns = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise InputError(f"{path}: turn {i} must be an object with a string 'text'")
        role = item.get("role", "seeker")
        if role not in ROLES:
            raise InputError(
                f"{path}: turn {i} has role {role!r}; expected 'seeker' or 'recommender'"
            )
        mentions = []
        for m in item.get("mentions") or []:
            if isinstance(m, str):
                mentions.append(Mention(m, m))
            elif isinstance(m, dict) and isinstance(m.get("title"), str):
                mentions.append(Mention(str(m.get("key", m["title"])), m["title"]))
            else:
                raise InputError(f"{path}: turn {i}: a mention must be a title or {{'title': ...}}")
        turns.append(Turn(role, item["text"], mentions))
    return turns


def quoted_titles(text: str) -> list[str]:
    """Titles the user marked in free text: "Title" or *Title*."""
    return [a or b for a, b in _QUOTED.findall(text)]


def mentioned_rows(corpus: Corpus, turns: list[Turn]) -> list[int]:
    """Corpus rows of the movies mentioned so far (explicit mentions, else quoted titles)."""
    rows: list[int] = []
    for turn in turns:
        titles = [m.title for m in turn.mentions] or quoted_titles(turn.text)
        for title in titles:
            found = corpus.find(title, limit=1)
            if found and found[0] not in rows:
                rows.append(found[0])
    return rows


def conversation_query(turns: list[Turn], last: int = 6) -> str:
    """Search text for the corpus index: the last few turns, seeker turns only when present."""
    seeker = [t.text for t in turns[-last:] if t.role == "seeker" and t.text.strip()]
    return "\n".join(seeker or [t.text for t in turns[-last:]])
