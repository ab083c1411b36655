"""What `rar download` fetches: every dataset's official release files, where each goes under
the data directory, and the checksums its publisher pins (`SOURCES`), plus the name lookup
behind `--datasets`. The fetching, resuming and verifying live in `rar.data.download`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rar.errors import InputError


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset release and where it goes under the target directory."""

    url: str
    dest: str  # path under the target dir (archives are kept here too, unless removed)
    md5: str | None = None  # pinned, as published by the source
    sha256: str | None = None
    checksum_url: str | None = None  # the publisher's own md5 file for `url`
    extract_to: str | None = None  # zip archives: directory (under the target) to unpack into
    flatten: bool = False  # unpack every member straight into `extract_to` (drop folders)


@dataclass(frozen=True)
class DatasetSource:
    name: str
    description: str
    approx_size: str
    files: tuple[RemoteFile, ...]
    licence: str = ""
    default: bool = True  # part of `rar download` without --datasets


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
_INSPIRED = "https://raw.githubusercontent.com/sweetpeach/Inspired/master/data"
_REDDIT = "https://huggingface.co/datasets/ZhankuiHe/reddit_cikm/resolve/main"
_IMDB = "https://datasets.imdbws.com"


def _movielens(variant: str, md5: str | None, size: str, default: bool) -> DatasetSource:
    return DatasetSource(
        name=variant,
        description=f"MovieLens {variant} ratings and movies (GroupLens)",
        approx_size=size,
        files=(
            RemoteFile(
                url=f"{_GROUPLENS}/{variant}.zip",
                dest=f"movielens/{variant}.zip",
                md5=md5,
                checksum_url=f"{_GROUPLENS}/{variant}.zip.md5",
                extract_to="movielens",
            ),
        ),
        licence="GroupLens research licence (see README.txt inside)",
        default=default,
    )


SOURCES: dict[str, DatasetSource] = {
    s.name: s
    for s in (
        DatasetSource(
            name="redial",
            description="ReDial dialogues (train/test) and movies_with_mentions.csv",
            approx_size="6 MB",
            files=(
                RemoteFile(
                    url="https://github.com/ReDialData/website/raw/data/redial_dataset.zip",
                    dest="redial/redial_dataset.zip",
                    extract_to="redial",
                    flatten=True,
                ),
            ),
            licence="CC BY 4.0",
        ),
        DatasetSource(
            name="inspired",
            description="INSPIRED dialogues (train/dev/test TSV) and movie_database.tsv",
            approx_size="20 MB",
            files=tuple(
                RemoteFile(
                    url=f"{_INSPIRED}/dialog_data/{split}.tsv",
                    dest=f"inspired/dialog_data/{split}.tsv",
                )
                for split in ("train", "dev", "test")
            )
            + (
                RemoteFile(
                    url=f"{_INSPIRED}/movie_database.tsv", dest="inspired/movie_database.tsv"
                ),
            ),
            licence="no licence stated; research use",
        ),
        DatasetSource(
            name="reddit",
            description="Reddit-Movie (CIKM'23 release): dialogues and item catalogue",
            approx_size="185 MB",
            files=tuple(
                RemoteFile(url=f"{_REDDIT}/{name}", dest=f"reddit_movie/{name}")
                for name in (
                    "entity2id.json",
                    "item_ids.json",
                    "train_data_processed.jsonl",
                    "valid_data_processed.jsonl",
                    "test_data_processed.jsonl",
                )
            ),
            licence="research use only",
        ),
        _movielens("ml-latest-small", None, "1 MB", True),
        _movielens("ml-100k", "0e33842e24a9c977be4e0107933c0723", "5 MB", True),
        _movielens("ml-20m", "cd245b17a1ae2cc31bb14903e1204af3", "190 MB", False),
        DatasetSource(
            name="imdb",
            description="IMDb non-commercial TSV dumps (titles, ratings, crew, principals, names)",
            approx_size="1.5 GB",
            files=tuple(
                RemoteFile(url=f"{_IMDB}/{name}", dest=f"imdb/{name}")
                for name in (
                    "title.basics.tsv.gz",
                    "title.ratings.tsv.gz",
                    "title.crew.tsv.gz",
                    "title.principals.tsv.gz",
                    "name.basics.tsv.gz",
                )
            ),
            licence="IMDb non-commercial licence",
            default=False,
        ),
    )
}


def resolve_datasets(names: Iterable[str] | None) -> list[DatasetSource]:
    """Datasets by name (`all` for every one; None for the defaults), with a clear unknown-name error."""
    if names is None:
        return [s for s in SOURCES.values() if s.default]
    out: list[DatasetSource] = []
    for raw in names:
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            if name == "all":
                out.extend(s for s in SOURCES.values() if s not in out)
                continue
            if name not in SOURCES:
                raise InputError(
                    f"unknown dataset '{name}'; choose from: {', '.join(SOURCES)} (or 'all')"
                )
            if SOURCES[name] not in out:
                out.append(SOURCES[name])
    if not out:
        raise InputError("no dataset named; choose from: " + ", ".join(SOURCES))
    return out
