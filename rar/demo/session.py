"""One browser session: its conversation, a record per recommender turn, and its export.

The export is the project's custom-data format (`rar/data/custom.py`, docs/data.md), one JSONL
row per recommender turn, so `rar evaluate --dataset custom --data FILE` scores a recommender on
demo chats:

- `context`: the turns before the recommendation, `{"role": "user" | "system", "text"}`;
- `history`: every movie mentioned before it (by either side, as in ReDial), oldest first, as
  `Title (Year)`;
- `targets`: the movies the user accepted: the cards they ticked ("I'd watch these"), else the
  recommended movies they named in their next message ("Alien it is!"). A turn with neither is
  not a labelled recommendation point and is left out (the writer says how many), as is a turn
  whose ranker failed;
- `dialogue_id` groups the rows; a `demo` field records what was shown (ignored by the loader).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rar.data.types import Mention, Turn
from rar.demo.linking import MovieOption

SEEKER, RECOMMENDER = "seeker", "recommender"
EXPORT_ROLES = {SEEKER: "user", RECOMMENDER: "system"}


@dataclass
class ChatTurn:
    role: str  # "seeker" | "recommender"
    text: str
    movies: list[MovieOption] = field(default_factory=list)  # linked mentions, in order
    note: bool = False  # a notice shown in the chat ("the ranker failed"), not conversation
    display: str | None = None  # the chat's escaped markdown, when not `text` escaped

    def as_turn(self) -> Turn:
        """The pipeline's Turn; mentions carry corpus ids (the corpus finds them exactly)."""
        return Turn(self.role, self.text, [Mention(m.corpus_id, m.corpus_id) for m in self.movies])


@dataclass
class TurnRecord:
    """What one recommender turn computed and showed (both stages, cost, failure)."""

    backend: str  # ranker label, or "retriever only"
    k: int
    retriever_ids: list[str]  # the retriever's candidates, in its order
    how: str  # how the candidates were found
    ranked_ids: list[str] | None = None  # the ranker's order; None when it failed or was skipped
    n_model_ranked: int | None = None  # leading ranked ids the model placed itself
    error: str | None = None
    latency_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    is_llm: bool = False
    picks: list[str] = field(default_factory=list)  # corpus ids the user ticked

    @property
    def ranked(self) -> bool:
        return self.ranked_ids is not None

    @property
    def shown_ids(self) -> list[str]:
        """The top-k the recommender turn presents: the ranker's, else the retriever's."""
        return list(
            (self.ranked_ids if self.ranked_ids is not None else self.retriever_ids)[: self.k]
        )

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        if self.ranked_ids is None:
            return "retriever only"
        return "cached" if self.cached else "ok"


def movement(retriever_ids: list[str], ranked_ids: list[str]) -> dict[str, int | None]:
    """For each ranked id, how many places the ranker moved it up (+) or down (-) relative to
    the retriever's order; None for an id the retriever did not propose."""
    position = {cid: i for i, cid in enumerate(retriever_ids)}
    return {
        cid: (position[cid] - i if cid in position else None) for i, cid in enumerate(ranked_ids)
    }


def dropped_out(retriever_ids: list[str], ranked_ids: list[str], k: int) -> list[str]:
    """The retriever's top-k movies the ranker pushed out of its top-k, in retriever order."""
    top = set(ranked_ids[:k])
    return [cid for cid in retriever_ids[:k] if cid not in top]


@dataclass
class Session:
    """One browser session's conversation. Turns alternate freely; `records[i]` belongs to the
    recommender turn `turns[record_turns[i]]`."""

    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    started: float = field(default_factory=time.time)
    turns: list[ChatTurn] = field(default_factory=list)
    records: list[TurnRecord] = field(default_factory=list)
    record_turns: list[int] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)  # mention key -> corpus id the user chose
    pending_key: str | None = None  # the mention the "did you mean" choice is about

    def add_seeker(self, text: str, movies: list[MovieOption]) -> None:
        self.turns.append(ChatTurn(SEEKER, text, list(movies)))

    def add_recommendation(
        self,
        record: TurnRecord,
        text: str,
        movies: list[MovieOption],
        display: str | None = None,
    ) -> None:
        """The recommender's turn; a failed one is only a notice (rankers never read it)."""
        note = record.error is not None
        self.turns.append(ChatTurn(RECOMMENDER, text, list(movies), note=note, display=display))
        self.records.append(record)
        self.record_turns.append(len(self.turns) - 1)

    def replace_last_recommendation(
        self,
        record: TurnRecord,
        text: str,
        movies: list[MovieOption],
        display: str | None = None,
    ) -> None:
        """Re-rank the latest recommender turn (another ranker or k), keeping the user's picks
        that are still shown."""
        if not self.records:
            raise ValueError("no recommendation to replace")
        old = self.records[-1]
        record.picks = [c for c in old.picks if c in record.shown_ids]
        self.records[-1] = record
        note = record.error is not None
        self.turns[self.record_turns[-1]] = ChatTurn(
            RECOMMENDER, text, list(movies), note=note, display=display
        )

    def history_before(self, turn_index: int) -> list[MovieOption]:
        """Movies mentioned before `turns[turn_index]`, oldest first, each once at its latest
        mention (the data loaders' history rule)."""
        order: dict[str, MovieOption] = {}
        for turn in self.turns[:turn_index]:
            for movie in turn.movies:
                order.pop(movie.corpus_id, None)
                order[movie.corpus_id] = movie
        return list(order.values())

    def pipeline_turns(self, upto: int | None = None) -> list[Turn]:
        """The conversation (before `turns[upto]`) as the retriever and ranker read it."""
        return [t.as_turn() for t in self.turns[:upto] if not t.note]

    # ------------------------------------------------------------------ export
    def targets_of(self, record_index: int, label: dict[str, MovieOption]) -> list[MovieOption]:
        """What the user accepted at a recommender turn: ticked cards, else the shown movies
        their next message names ("Alien it is!")."""
        record = self.records[record_index]
        if record.picks:
            return [label[c] for c in record.picks if c in label]
        at = self.record_turns[record_index]
        following = self.turns[at + 1] if at + 1 < len(self.turns) else None
        if following is None or following.role != SEEKER:
            return []
        shown = set(record.shown_ids)
        return [m for m in following.movies if m.corpus_id in shown]

    def custom_rows(self, movie_of) -> list[dict]:
        """The custom-format rows; `movie_of(corpus_id)` gives a MovieOption (for picks)."""
        rows = []
        for i, record in enumerate(self.records):
            at = self.record_turns[i]
            if record.error is not None:
                continue  # the recommender said nothing this turn: not a recommendation point
            label = {c: movie_of(c) for c in record.picks}
            targets = self.targets_of(i, label)
            if not targets:
                continue
            rows.append(
                {
                    "dialogue_id": f"demo-{self.session_id}",
                    "context": [
                        {"role": EXPORT_ROLES[t.role], "text": t.text}
                        for t in self.turns[:at]
                        if not t.note
                    ],
                    "history": [m.label for m in self.history_before(at)],
                    "targets": [m.label for m in targets],
                    "demo": {
                        "ranker": record.backend,
                        "status": record.status,
                        "shown": [movie_of(c).label for c in record.shown_ids],
                        "retriever": [movie_of(c).label for c in record.retriever_ids[: record.k]],
                    },
                }
            )
        return rows

    def write_custom(self, path: str | Path, movie_of) -> tuple[Path, int, int]:
        """Write the JSONL export; (path, rows written, recommender turns left out)."""
        path = Path(path)
        rows = self.custom_rows(movie_of)
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600: a chat is the user's own; Gradio's copy for the download keeps these bits
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        with open(fd, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path, len(rows), len(self.records) - len(rows)
