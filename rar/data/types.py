"""The records every loader produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mention:
    """A movie mentioned in a dataset. `key` is the dataset's own id for it (ReDial movieId,
    MovieLens movieId) or, when the dataset has no ids, the title as written."""

    key: str
    title: str


@dataclass
class Turn:
    role: str  # "seeker" | "recommender"
    text: str
    mentions: list[Mention] = field(default_factory=list)


@dataclass
class Dialogue:
    dialogue_id: str
    turns: list[Turn]
    source: str = ""  # file it came from


@dataclass
class Sample:
    """One recommender turn: what the retriever sees (history), what the ranker reads
    (context), and what should be recommended (targets, minus anything mentioned earlier)."""

    dataset: str
    dialogue_id: str
    turn_index: int
    context: list[Turn]
    history: list[Mention]
    targets: list[Mention]

    @property
    def sample_id(self) -> str:
        return f"{self.dataset}:{self.dialogue_id}:{self.turn_index}"
