"""Turning conversations into training/evaluation samples, with the paper's rules.

One sample per recommender turn that mentions at least one movie:
- history = movies mentioned earlier by either role, in order of their most recent mention
  (a movie mentioned twice appears once, at its last position), capped at the 64 most recent;
- context = all earlier turns, with roles;
- targets = the movies mentioned at that turn minus every movie mentioned earlier (no-shortcut
  rule: the model must not win by repeating a title already in the conversation).
A recommender turn whose movies were all mentioned before yields no sample; it is counted as
dropped. Consecutive messages by the same speaker stay separate turns.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rar.data.types import Dialogue, Mention, Sample, Turn
from rar.errors import InputError

MAX_HISTORY = 64
SEEKER = "seeker"
RECOMMENDER = "recommender"
ROLES = (SEEKER, RECOMMENDER)
# Why a recommendation point gave no sample (the keys of `SampleStats.dropped_by_reason`).
DROP_NO_NEW_TARGET = "every target movie was mentioned earlier"
DROP_NO_TARGET = "the target column is empty"
MAX_DROP_EXAMPLES = 20


def unique_keep_last(mentions: Iterable[Mention]) -> list[Mention]:
    """Mentions deduplicated by key, each at the position of its last occurrence."""
    ordered: OrderedDict[str, Mention] = OrderedDict()
    for mention in mentions:
        ordered.pop(mention.key, None)
        ordered[mention.key] = mention
    return list(ordered.values())


def unique_keep_first(mentions: Iterable[Mention]) -> list[Mention]:
    """Mentions deduplicated by key, in order of first occurrence."""
    seen: dict[str, Mention] = {}
    for mention in mentions:
        seen.setdefault(mention.key, mention)
    return list(seen.values())


def make_sample(
    dataset: str,
    dialogue_id: str,
    turn_index: int,
    context: Sequence[Turn],
    history: Sequence[Mention],
    targets: Sequence[Mention],
    max_history: int = MAX_HISTORY,
) -> Sample | None:
    """A sample with the no-shortcut rule applied, or None when no target is left."""
    history = unique_keep_last(history)
    earlier = {m.key for m in history}
    kept = [m for m in unique_keep_first(targets) if m.key not in earlier]
    if not kept:
        return None
    capped = history[-max_history:] if max_history > 0 else []
    return Sample(dataset, dialogue_id, turn_index, list(context), capped, kept)


@dataclass(frozen=True)
class DroppedRow:
    """One input row that gave no sample, with its file line, so a user can find and fix it."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}: {self.reason}"


@dataclass
class DialogueSamples:
    """What one dialogue contributed: its samples, its dropped turns, its annotated mentions.

    `dropped` counts every dropped turn; `drops` holds those known by file line (row formats);
    the rest were dropped because every target movie was mentioned earlier.
    """

    dialogue_id: str
    samples: list[Sample]
    dropped: int
    mentions: list[Mention] = field(default_factory=list)  # every annotated mention, in order
    drops: list[DroppedRow] = field(default_factory=list)

    @property
    def mention_keys(self) -> list[str]:
        return [m.key for m in self.mentions]


def samples_from_dialogue(
    dialogue: Dialogue, dataset: str, max_history: int = MAX_HISTORY
) -> DialogueSamples:
    """All samples of one dialogue (see the module docstring for the rules)."""
    samples: list[Sample] = []
    dropped = 0
    history: OrderedDict[str, Mention] = OrderedDict()
    for index, turn in enumerate(dialogue.turns):
        if turn.role not in ROLES:
            raise InputError(
                f"dialogue {dialogue.dialogue_id} ({dialogue.source}): turn {index} has role "
                f"{turn.role!r}, expected one of {ROLES}"
            )
        if turn.role == RECOMMENDER and turn.mentions:
            sample = make_sample(
                dataset,
                dialogue.dialogue_id,
                index,
                dialogue.turns[:index],
                list(history.values()),
                turn.mentions,
                max_history,
            )
            if sample is None:
                dropped += 1
            else:
                samples.append(sample)
        for mention in turn.mentions:
            history.pop(mention.key, None)
            history[mention.key] = mention
    mentions = [m for t in dialogue.turns for m in t.mentions]
    return DialogueSamples(dialogue.dialogue_id, samples, dropped, mentions)


def group_samples(
    samples: Iterable[Sample], dropped_by_dialogue: dict[str, int] | None = None
) -> list[DialogueSamples]:
    """Samples that arrive one per record (custom, Reddit) grouped back into dialogues."""
    groups: dict[str, DialogueSamples] = {}
    for sample in samples:
        group = groups.setdefault(sample.dialogue_id, DialogueSamples(sample.dialogue_id, [], 0))
        group.samples.append(sample)
    for dialogue_id, count in (dropped_by_dialogue or {}).items():
        groups.setdefault(dialogue_id, DialogueSamples(dialogue_id, [], 0)).dropped += count
    return list(groups.values())


@dataclass
class SampleStats:
    """Counts like the paper's Table 8, plus what was dropped or deduplicated."""

    dialogues: int = 0
    samples: int = 0
    movies: int = 0  # distinct movie keys among annotated mentions
    mentions: int = 0  # annotated movie mentions
    dropped: int = 0  # recommendation points that gave no sample (reasons below)
    duplicates: int = 0  # duplicate dialogues / records removed while loading
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    dropped_rows: list[str] = field(default_factory=list)  # the first few, "file, line N: why"

    def as_dict(self) -> dict:
        return {
            "dialogues": self.dialogues,
            "samples": self.samples,
            "movies": self.movies,
            "mentions": self.mentions,
            "dropped": self.dropped,
            "duplicates": self.duplicates,
            "dropped_by_reason": dict(self.dropped_by_reason),
            "dropped_rows": list(self.dropped_rows),
        }

    def drop_summary(self) -> str:
        """ "2 with the target column is empty (f.csv, line 3; ...), 1 because ..." for messages."""
        parts = []
        for reason, count in sorted(self.dropped_by_reason.items()):
            rows = [r.split(": ", 1)[0] for r in self.dropped_rows if r.endswith(f": {reason}")]
            where = f" ({'; '.join(rows)}{'; ...' if len(rows) < count else ''})" if rows else ""
            parts.append(f"{count} dropped: {reason}{where}")
        return ", ".join(parts) if parts else "none dropped"


def summarize(records: Sequence[DialogueSamples], duplicates: int = 0) -> SampleStats:
    """Counts over a set of dialogues."""
    keys: set[str] = set()
    mentions = 0
    reasons: dict[str, int] = {}
    rows: list[str] = []
    for record in records:
        keys.update(m.key for m in record.mentions)
        mentions += len(record.mentions)
        for drop in record.drops:
            reasons[drop.reason] = reasons.get(drop.reason, 0) + 1
            if len(rows) < MAX_DROP_EXAMPLES:
                rows.append(str(drop))
        unexplained = record.dropped - len(record.drops)
        if unexplained > 0:
            reasons[DROP_NO_NEW_TARGET] = reasons.get(DROP_NO_NEW_TARGET, 0) + unexplained
    return SampleStats(
        dialogues=len(records),
        samples=sum(len(r.samples) for r in records),
        movies=len(keys),
        mentions=mentions,
        dropped=sum(r.dropped for r in records),
        duplicates=duplicates,
        dropped_by_reason=dict(sorted(reasons.items())),
        dropped_rows=rows,
    )
