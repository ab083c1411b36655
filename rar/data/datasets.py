"""Dataset names: the one list that CLI choices and help, config validation, the readers
(`rar.data.registry`) and the corpus builder's link step all use.

A leaf (no pandas, no readers), so command modules can put the names in their `--help` and
config classes can validate against them without loading any data code.
"""

from __future__ import annotations

from rar.errors import InputError

# conversation dataset -> its folders under DATA_DIR (all are read; see rar.data.registry)
CONVERSATION_DATASETS: dict[str, tuple[str, ...]] = {
    "redial": ("redial",),
    "inspired": ("inspired",),
    "reddit": ("reddit_movie", "reddit"),
    "custom": ("custom",),
}
DATASET_NAMES: tuple[str, ...] = tuple(CONVERSATION_DATASETS)
# MovieLens is not conversations: it pretrains the retriever and has its own link tables
MOVIELENS = "movielens"
STATS_DATASETS: tuple[str, ...] = (*DATASET_NAMES, MOVIELENS)


def dataset_choices(names: tuple[str, ...] = DATASET_NAMES) -> str:
    """`redial | inspired | ...` for help texts."""
    return " | ".join(names)


def check_dataset(name: str) -> str:
    """`name` if it is a conversation dataset, else an error listing the ones there are."""
    if name not in CONVERSATION_DATASETS:
        raise InputError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    return name
