"""INSPIRED (Hayati et al., 2020): the official TSV and the processed one-list-per-line JSONL.

Official TSV (`dialog_data/{train,dev,test}.tsv`): one utterance per row with `dialog_id`,
`utt_id`, `speaker` (SEEKER / RECOMMENDER), `text` and `movies` (the titles mentioned in that
utterance, "Title (Year)" separated by ";"). The release escapes double quotes in `text` as
the word QUOTATION_MARK; they are restored. INSPIRED has no movie ids, so `Mention.key` is the
title as written.

Processed JSONL (e.g. `dev_annotated.jsonl`): each line is a JSON list of utterances with
`role`, `text` and `movie` ("Title (Year)") and/or `movie_name` (title without year). `movie`
is preferred (it is more complete and matches the TSV keys). Lines carry no dialogue id, so
the id is "<file stem>:<line number>". Consecutive utterances of one speaker may already be
merged in this form; the TSV keeps them apart.
"""

from __future__ import annotations

import csv
from pathlib import Path

from rar.data.errors import DataFormatError, iter_jsonl, read_table, require_columns
from rar.data.samples import RECOMMENDER, SEEKER
from rar.data.types import Dialogue, Mention, Turn

SPEAKERS = {"SEEKER": SEEKER, "RECOMMENDER": RECOMMENDER}
TSV_COLUMNS = ("dialog_id", "speaker", "text", "movies")


def _mentions(titles: list[str]) -> list[Mention]:
    seen: dict[str, Mention] = {}
    for title in titles:
        title = " ".join(str(title).split())
        if title and title not in seen:
            seen[title] = Mention(title, title)
    return list(seen.values())


def _role(value: object, where: str) -> str:
    role = SPEAKERS.get(str(value).strip().upper())
    if role is None:
        raise DataFormatError(f"{where}: speaker {value!r} is not SEEKER or RECOMMENDER")
    return role


def load_inspired_tsv(path: Path) -> list[Dialogue]:
    """Dialogues from an official INSPIRED TSV, in file order, utterances ordered by utt_id."""
    path = Path(path)
    frame = read_table(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    require_columns(frame, TSV_COLUMNS, path)
    lines = range(2, len(frame) + 2)
    if "utt_id" in frame.columns:
        orders = [int(v) if v.strip().isdigit() else 0 for v in frame["utt_id"].tolist()]
    else:
        orders = list(lines)
    rows_by_dialogue: dict[str, list[tuple[int, int, str, str, str]]] = {}
    for row in zip(
        orders,
        lines,
        frame["speaker"].tolist(),
        frame["text"].tolist(),
        frame["movies"].tolist(),
        frame["dialog_id"].tolist(),
        strict=True,
    ):
        rows_by_dialogue.setdefault(str(row[5]), []).append(row[:5])
    dialogues: list[Dialogue] = []
    for dialog_id, rows in rows_by_dialogue.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        turns = [
            Turn(
                _role(speaker, f"{path}, line {line}"),
                str(text).replace("QUOTATION_MARK", '"'),
                _mentions(str(movies).split(";")),
            )
            for _, line, speaker, text, movies in rows
        ]
        dialogues.append(Dialogue(dialog_id, turns, source=str(path)))
    return dialogues


def load_inspired_jsonl(path: Path) -> list[Dialogue]:
    """Dialogues from the processed form: one JSON list of utterances per line."""
    path = Path(path)
    dialogues: list[Dialogue] = []
    for line_no, utterances in iter_jsonl(path):
        if not isinstance(utterances, list):
            raise DataFormatError(
                f"{path}, line {line_no}: expected a JSON list of utterances, "
                f"got {type(utterances).__name__}"
            )
        turns: list[Turn] = []
        for index, utt in enumerate(utterances):
            if not isinstance(utt, dict) or "role" not in utt or "text" not in utt:
                raise DataFormatError(
                    f"{path}, line {line_no}: utterance {index} needs 'role' and 'text'"
                )
            titles = utt.get("movie") or utt.get("movie_name") or []
            if isinstance(titles, str):
                titles = [titles]
            role = _role(utt["role"], f"{path}, line {line_no}, utterance {index}")
            turns.append(Turn(role, str(utt["text"]), _mentions(list(titles))))
        dialogues.append(Dialogue(f"{path.stem}:{line_no}", turns, source=str(path)))
    return dialogues
