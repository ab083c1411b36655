"""Merge records from all sources into movies: identity keys, then blocked fuzzy title+year.

Order of evidence, strongest first:
1. the same IMDb id; the same dataset key (e.g. ReDial movieId in two ReDial tables, a TMDB id);
2. the same normalised title with years within the tolerance (exact block);
3. similar normalised titles (rapidfuzz, >= threshold) with years within the tolerance, compared
   only inside blocks of (4-character prefix or suffix of the title, year), so the work grows
   near-linearly with the number of movies instead of with all pairs;
4. records without a year, and weak records (e.g. Wikipedia summaries), attach to the best
   existing movie with a matching title; unmatched weak records are counted, not kept.
Two groups never merge when that would join two IMDb ids, two disjoint director lists, or two
different entries of one exclusive catalogue (a catalogue lists each movie once).
Each group's fields, year and corpus id are then settled by `corpus_builder/resolve.py`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.process import cdist

from corpus_builder.records import MovieRecord
from corpus_builder.resolve import (
    assign_ids,
    avoid_title_year_collisions,
    resolve_movie,
    stable_id,
    title_key,
    title_year_collisions,
)
from rar.corpus.movie import Movie
from rar.matching import TitleMatcher, normalize_core, normalized_similarity

# stable_id and title_year_collisions are imported from here too (corpus_builder/build.py)
__all__ = ["MergeResult", "MergeStats", "merge_records", "stable_id", "title_year_collisions"]


@dataclass
class MergeStats:
    records: int = 0
    movies: int = 0
    merged_by_id: int = 0
    merged_by_key: int = 0
    merged_by_exact_title: int = 0
    merged_by_fuzzy_title: int = 0
    attached: int = 0
    unattached_weak: dict[str, int] = field(default_factory=dict)
    blocked_merges: dict[str, int] = field(default_factory=dict)
    id_conflicts: list[dict] = field(default_factory=list)
    fuzzy_comparisons: int = 0
    no_title: dict[str, int] = field(default_factory=dict)
    years_changed_to_avoid_collision: int = 0

    def to_json(self, max_examples: int = 50) -> dict:
        return {
            "records": self.records,
            "movies": self.movies,
            "merged_by_id": self.merged_by_id,
            "merged_by_dataset_key": self.merged_by_key,
            "merged_by_exact_title": self.merged_by_exact_title,
            "merged_by_fuzzy_title": self.merged_by_fuzzy_title,
            "attached_yearless_or_weak": self.attached,
            "unattached_weak_records": dict(sorted(self.unattached_weak.items())),
            "merges_refused": dict(sorted(self.blocked_merges.items())),
            "fuzzy_comparisons": self.fuzzy_comparisons,
            "records_without_title_key": dict(sorted(self.no_title.items())),
            "years_changed_to_avoid_collision": self.years_changed_to_avoid_collision,
            "id_conflicts": len(self.id_conflicts),
            "id_conflict_examples": self.id_conflicts[:max_examples],
        }


@dataclass
class MergeResult:
    """Merged movies (sorted by corpus_id) and, per input record, its movie row (or -1)."""

    movies: list[Movie]
    record_movie: np.ndarray
    stats: MergeStats


class _Groups:
    """Union-find over records that refuses merges contradicting identity evidence."""

    def __init__(self, records: list[MovieRecord], stats: MergeStats):
        n = len(records)
        self.parent = list(range(n))
        self.stats = stats
        self.imdb: list[str | None] = [r.imdb_id for r in records]
        self.directors: list[frozenset[str]] = [
            frozenset(normalize_core(d) for d in r.directors) for r in records
        ]
        self.catalogues: list[dict[str, str] | None] = [
            {r.catalogue or r.source: r.source_id} if r.exclusive and not r.weak else None
            for r in records
        ]

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def conflict(self, a: int, b: int) -> str | None:
        """Why roots a and b must stay apart, or None."""
        if self.imdb[a] and self.imdb[b] and self.imdb[a] != self.imdb[b]:
            return "different_imdb_ids"
        if self.directors[a] and self.directors[b] and not (self.directors[a] & self.directors[b]):
            return "disjoint_directors"
        ca, cb = self.catalogues[a], self.catalogues[b]
        if ca and cb:
            for name, source_id in ca.items():
                other = cb.get(name)
                if other is not None and other != source_id:
                    return "same_catalogue_twice"
        return None

    def union(self, a: int, b: int, check: bool = True) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if check:
            reason = self.conflict(ra, rb)
            if reason:
                self.stats.blocked_merges[reason] = self.stats.blocked_merges.get(reason, 0) + 1
                return False
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.imdb[ra] = self.imdb[ra] or self.imdb[rb]
        self.directors[ra] = self.directors[ra] | self.directors[rb]
        if self.catalogues[rb]:
            merged = dict(self.catalogues[ra] or {})
            for name, source_id in self.catalogues[rb].items():
                merged.setdefault(name, source_id)
            self.catalogues[ra] = merged
        return True


def _compact(key: str) -> str:
    return key.replace(" ", "")


def merge_records(
    records: list[MovieRecord],
    dataset_keys: dict[str, dict[str, list[int]]],
    fuzzy_threshold: float = 0.9,
    year_tolerance: int = 1,
    source_priority: list[str] | None = None,
    conflict_year_gap: int = 2,
) -> MergeResult:
    """Group records into movies and resolve each movie's fields (see module doc): the steps
    below run in the module doc's order of evidence, strongest first, on one union-find."""
    stats = MergeStats(records=len(records))
    groups = _Groups(records, stats)
    keys = [title_key(r.title) for r in records]
    priority = {name: i for i, name in enumerate(source_priority or [])}
    # identity: IMDb id (after setting aside ids whose years contradict), then dataset keys
    records = _check_imdb_years(records, priority, year_tolerance, conflict_year_gap, stats)
    _merge_by_identity(records, dataset_keys, groups, stats)
    # strong records: not weak, with a year and a title key
    strong = [i for i, r in enumerate(records) if not r.weak and r.year is not None and keys[i]]
    _merge_exact_titles(records, keys, strong, groups, year_tolerance, stats)
    _merge_fuzzy_titles(records, keys, strong, groups, fuzzy_threshold, year_tolerance, stats)
    dropped = _attach_rest(records, keys, strong, groups, fuzzy_threshold, year_tolerance, stats)
    return _resolve_groups(records, keys, groups, dropped, priority, stats)


def _merge_by_identity(
    records: list[MovieRecord],
    dataset_keys: dict[str, dict[str, list[int]]],
    groups: _Groups,
    stats: MergeStats,
) -> None:
    """Step 1: records with the same IMDb id are one movie (unchecked: the id is the proof),
    then records with the same key of one dataset (checked against the identity evidence)."""
    groups.imdb = [r.imdb_id for r in records]
    by_imdb: dict[str, int] = {}
    for i, record in enumerate(records):
        if record.imdb_id:
            first = by_imdb.setdefault(record.imdb_id, i)
            if first != i and groups.union(first, i, check=False):
                stats.merged_by_id += 1
    for dataset in sorted(dataset_keys):
        for _key, indices in sorted(dataset_keys[dataset].items()):
            for other in indices[1:]:
                if groups.union(indices[0], other):
                    stats.merged_by_key += 1


def _merge_exact_titles(
    records: list[MovieRecord],
    keys: list[str],
    strong: list[int],
    groups: _Groups,
    year_tolerance: int,
    stats: MergeStats,
) -> None:
    """Step 2: strong records with the same normalised title and years within tolerance."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for i in strong:
        by_key[keys[i]].append(i)
    for members in by_key.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda i: (records[i].year, i))
        # same year first, so a record never joins a neighbouring year's movie (and then lends
        # it its year) when a movie of its own year is there to join
        same_year: dict[int, list[int]] = defaultdict(list)
        for i in members:
            same_year[records[i].year].append(i)
        for group in same_year.values():
            for pos in range(1, len(group)):
                for j in reversed(group[:pos]):
                    if groups.find(group[pos]) == groups.find(j):
                        break
                    if groups.union(j, group[pos]):
                        stats.merged_by_exact_title += 1
                        break
        for pos in range(1, len(members)):
            i = members[pos]
            # join the closest earlier record within tolerance that is compatible
            for back in range(pos - 1, -1, -1):
                j = members[back]
                if records[i].year - records[j].year > year_tolerance:
                    break
                if groups.find(i) == groups.find(j):
                    break
                if groups.union(j, i):
                    stats.merged_by_exact_title += 1
                    break


def _merge_fuzzy_titles(
    records: list[MovieRecord],
    keys: list[str],
    strong: list[int],
    groups: _Groups,
    fuzzy_threshold: float,
    year_tolerance: int,
    stats: MergeStats,
) -> None:
    """Step 3: similar titles inside (prefix|suffix, year) blocks; year y is compared with
    y..y+tolerance. Members of one distinct (key, year) entry were merged by step 2 already."""
    distinct: dict[tuple[str, int], int] = {}
    for i in strong:
        distinct.setdefault((keys[i], records[i].year), i)
    entries = sorted(distinct.items())
    blocks: dict[tuple[str, int], list[int]] = defaultdict(list)
    for pos, ((key, year), _i) in enumerate(entries):
        compact = _compact(key)
        if len(compact) < 4:
            continue  # very short titles only merge exactly
        blocks[("p" + compact[:4], year)].append(pos)
        blocks[("s" + compact[-4:], year)].append(pos)
    plain_cutoff = max(0.0, 2 * fuzzy_threshold - 1) * 100 - 1e-6
    for (block, year), members in sorted(blocks.items()):
        others = list(members)
        for offset in range(1, year_tolerance + 1):
            others.extend(blocks.get((block, year + offset), ()))
        if len(others) < 2:
            continue
        left = [entries[p][0][0] for p in members]
        right = [entries[p][0][0] for p in others]
        scores = cdist(left, right, scorer=fuzz.ratio, score_cutoff=plain_cutoff, dtype=np.uint8)
        stats.fuzzy_comparisons += len(left) * len(right)
        rows, cols = np.nonzero(scores)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = members[r], others[c]
            if a >= b and c < len(members):
                continue  # each unordered pair once within one year
            key_a, key_b = entries[a][0][0], entries[b][0][0]
            if key_a == key_b:
                continue
            if normalized_similarity(key_a, key_b) + 1e-9 < fuzzy_threshold:
                continue
            if groups.union(entries[a][1], entries[b][1]):
                stats.merged_by_fuzzy_title += 1


def _attach_rest(
    records: list[MovieRecord],
    keys: list[str],
    strong: list[int],
    groups: _Groups,
    fuzzy_threshold: float,
    year_tolerance: int,
    stats: MergeStats,
) -> set[int]:
    """Step 4: attach yearless and weak records to the best movie with a matching title;
    strong yearless records first, so weak records can also attach to the movies they create.
    Returns the weak records that attached nowhere (counted, not kept)."""
    pending = sorted(
        (i for i, r in enumerate(records) if (r.weak or r.year is None) and keys[i]),
        key=lambda i: (records[i].weak, i),
    )
    dropped: set[int] = set()
    if not pending:
        return dropped
    titles, years, popularity, owners = _attach_targets(records, keys, strong, groups)
    matcher = TitleMatcher(
        titles,
        years,
        threshold=fuzzy_threshold,
        popularity=popularity,
        year_tolerance=year_tolerance,
    )
    matches = matcher.match_many(
        [records[i].title for i in pending], [records[i].year for i in pending]
    )
    yearless_by_key: dict[str, int] = {}
    for i, match in zip(pending, matches, strict=True):
        record = records[i]
        if match is not None and groups.union(owners[match.index], i):
            stats.attached += 1
        elif match is not None and groups.find(owners[match.index]) == groups.find(i):
            continue
        elif keys[i] in yearless_by_key and groups.union(yearless_by_key[keys[i]], i):
            stats.attached += 1
        elif record.weak:
            stats.unattached_weak[record.source] = stats.unattached_weak.get(record.source, 0) + 1
            dropped.add(i)  # counted, not kept
        else:
            yearless_by_key.setdefault(keys[i], i)
    return dropped


def _attach_targets(
    records: list[MovieRecord], keys: list[str], strong: list[int], groups: _Groups
) -> tuple[list[str], list[int | None], list[float], list[int]]:
    """What step 4 matches against: each distinct (movie, title key, year) of the strong
    records, as title, year, popularity (bigger groups first, then votes) and owning root."""
    titles: list[str] = []
    years: list[int | None] = []
    popularity: list[float] = []
    owners: list[int] = []
    size: dict[int, int] = defaultdict(int)
    votes: dict[int, int] = defaultdict(int)
    for i in strong:
        root = groups.find(i)
        size[root] += 1
        votes[root] = max(votes[root], records[i].votes or 0)
    seen: set[tuple[int, str, int | None]] = set()
    for i in strong:
        root = groups.find(i)
        entry = (root, keys[i], records[i].year)
        if entry in seen:
            continue
        seen.add(entry)
        titles.append(records[i].title)
        years.append(records[i].year)
        popularity.append(size[root] * 1e7 + votes[root])
        owners.append(root)
    return titles, years, popularity, owners


def _resolve_groups(
    records: list[MovieRecord],
    keys: list[str],
    groups: _Groups,
    dropped: set[int],
    priority: dict[str, int],
    stats: MergeStats,
) -> MergeResult:
    """Step 5: one movie per group with its fields resolved, ids assigned, sorted by corpus id;
    and each record's movie row (-1 for records not kept)."""
    members_of: dict[int, list[int]] = defaultdict(list)
    group_size = Counter(groups.find(i) for i in range(len(records)))
    for i in range(len(records)):
        if not keys[i] and group_size[groups.find(i)] == 1:
            # nothing to compare by and no identity evidence: counted, not kept
            stats.no_title[records[i].source] = stats.no_title.get(records[i].source, 0) + 1
            continue
        if i in dropped:
            continue
        members_of[groups.find(i)].append(i)
    movies = [
        resolve_movie([records[i] for i in members], priority) for members in members_of.values()
    ]
    stats.years_changed_to_avoid_collision = avoid_title_year_collisions(movies)
    assign_ids(movies)
    order = sorted(range(len(movies)), key=lambda m: movies[m]["corpus_id"])
    position = np.empty(len(order), dtype=np.int64)
    position[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    record_movie = np.full(len(records), -1, dtype=np.int64)
    for m, members in enumerate(members_of.values()):
        record_movie[np.asarray(members, dtype=np.int64)] = position[m]
    # fields are settled: from here on a movie is the corpus's immutable record
    final = [Movie.from_row(movies[m]) for m in order]
    stats.movies = len(final)
    return MergeResult(final, record_movie, stats)


def _check_imdb_years(
    records: list[MovieRecord],
    priority: dict[str, int],
    year_tolerance: int,
    conflict_year_gap: int,
    stats: MergeStats,
) -> list[MovieRecord]:
    """Records sharing an IMDb id must agree on the year; outliers lose the id (reported).

    The reference year is the one most records give; on a tie, not a year in which another IMDb
    id has a movie of that title (a remake tagged with the original's id, as ReDial 77161 "A
    Nightmare on Elm Street (1984)" carries the 2010 remake's tt1179056), then the
    higher-priority source. So one mis-linked row cannot pull two films together.
    """
    by_imdb: dict[str, list[int]] = defaultdict(list)
    claims: dict[tuple[str, int], set[str]] = defaultdict(set)  # (title, year) -> IMDb ids
    for i, record in enumerate(records):
        if record.imdb_id and record.year is not None:
            by_imdb[record.imdb_id].append(i)
            claims[(title_key(record.title), record.year)].add(record.imdb_id)
    out = list(records)
    for imdb in sorted(by_imdb):
        members = by_imdb[imdb]
        years = {records[i].year for i in members}
        if len(years) < 2 or max(years) - min(years) < conflict_year_gap:
            continue
        votes: dict[int, tuple[int, int]] = {}
        taken: dict[int, bool] = {}  # the title in that year is another IMDb id's movie
        for i in members:
            y = records[i].year
            count, best = votes.get(y, (0, 10**9))
            votes[y] = (count + 1, min(best, priority.get(records[i].source, len(priority))))
            others = claims[(title_key(records[i].title), y)] - {imdb}
            taken[y] = taken.get(y, False) or bool(others)
        reference = min(votes, key=lambda y: (-votes[y][0], taken[y], votes[y][1], y))
        detached = [i for i in members if abs(records[i].year - reference) > year_tolerance]
        for i in detached:
            out[i] = dataclasses.replace(records[i], imdb_id=None)
        stats.id_conflicts.append(
            {
                "imdb_id": imdb,
                "kept_year": reference,
                "detached": sorted(
                    f"{records[i].source}:{records[i].source_id} ({records[i].year})"
                    for i in detached
                ),
            }
        )
    return out
