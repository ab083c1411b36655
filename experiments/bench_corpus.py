"""Corpus-builder benchmark: merge+link time, peak memory and duplicate detection quality on
synthetic source tables (33.7k / 100k / 337k movies), embedding throughput, and the cost of a
rebuild after 1% of movies change.

    python experiments/bench_corpus.py                       # everything
    python experiments/bench_corpus.py --sizes 33700 100000  # merge/link only at these sizes
    python experiments/bench_corpus.py --skip-embedding
    python experiments/bench_corpus.py --quickstart --before-ref e057fa2   # the quickstart corpus,
        # cold, built by the code at that commit and by this checkout, phase by phase, then compared
    python experiments/bench_corpus.py --compare /tmp/qsc/ref /tmp/qsc/new  # two corpus directories

Synthetic truth: N distinct movies. Source "imdb" lists every movie (IMDb id, director, year);
"movielens" 60% of them ("Title, The (Year)" style, an IMDb id for 80%); "redial" 30% (spelling
variants, 15% with the year off by one, no ids); "lists" 20% (typos, case, punctuation, no ids).
5% of movies share their title with another movie released >= 3 years apart (remakes), and 1%
share title and year but have a different director. A mention dataset names 10% of the movies by
"Title (Year)" variants. Each size runs in a fresh subprocess so peak RSS is per size.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = [
    "love",
    "night",
    "dark",
    "star",
    "man",
    "house",
    "city",
    "river",
    "blood",
    "king",
    "queen",
    "last",
    "first",
    "secret",
    "lost",
    "return",
    "world",
    "girl",
    "boy",
    "dream",
    "road",
    "war",
    "story",
    "heart",
    "fire",
    "ice",
    "moon",
    "sun",
    "island",
    "black",
    "white",
    "red",
    "blue",
    "summer",
    "winter",
    "ghost",
    "angel",
    "devil",
    "time",
    "silent",
    "wild",
    "broken",
    "golden",
    "iron",
    "glass",
    "stone",
    "paper",
    "shadow",
    "light",
    "storm",
    "rain",
    "sea",
    "sky",
    "garden",
    "street",
    "train",
    "hotel",
    "party",
    "game",
    "code",
    "empire",
    "legend",
    "escape",
    "hunter",
    "killer",
    "doctor",
    "family",
    "brother",
    "sister",
    "mother",
    "father",
    "friend",
    "stranger",
    "letter",
    "song",
    "dance",
    "kiss",
    "lie",
    "truth",
    "promise",
    "journey",
    "mission",
    "machine",
    "planet",
    "alien",
    "zombie",
    "dragon",
    "wolf",
    "tiger",
    "horse",
    "bird",
    "snake",
    "spider",
    "castle",
    "forest",
    "desert",
    "mountain",
    "valley",
    "ocean",
    "bridge",
]
ARTICLES = ("The", "A", "An")


def make_title(rng: random.Random) -> str:
    words = [rng.choice(WORDS).capitalize() for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))]
    if rng.random() < 0.3:
        words.insert(0, rng.choice(ARTICLES))
    if rng.random() < 0.1:
        words.append(str(rng.randint(2, 5)))
    if rng.random() < 0.1:
        words += [":", rng.choice(WORDS).capitalize(), rng.choice(WORDS)]
    return " ".join(words).replace(" :", ":")


def variant(title: str, rng: random.Random, typo: bool) -> str:
    """A realistic other spelling of the same title."""
    choice = rng.random()
    if choice < 0.25:
        out = title.lower()
    elif choice < 0.45:
        out = title.replace(":", " -").replace("&", "and")
    elif choice < 0.6 and title.split(" ", 1)[0] in ARTICLES and " " in title:
        article, rest = title.split(" ", 1)
        out = f"{rest}, {article}"
    else:
        out = title
    if typo and len(out) >= 10:
        i = rng.randrange(2, len(out) - 2)
        if out[i].isalpha():
            out = out[:i] + rng.choice("aeioulnrst") + out[i + 1 :]
    return out


def generate(n: int, seed: int = 0):
    """Records of four sources plus truth labels and a mention dataset."""
    from corpus_builder.records import MovieRecord

    rng = random.Random(seed)
    movies = []
    used: set[tuple[str, int]] = set()
    for m in range(n):
        if movies and rng.random() < 0.05:  # remake: same title, years apart
            base = movies[rng.randrange(len(movies))]
            title, year = base["title"], base["year"] + rng.choice((-1, 1)) * rng.randint(3, 40)
        elif movies and rng.random() < 0.01:  # same title and year, different film
            base = movies[rng.randrange(len(movies))]
            title, year = base["title"], base["year"]
        else:
            title, year = make_title(rng), rng.randint(1920, 2023)
        while (title, year) in used and rng.random() < 0.5:
            title = make_title(rng)
        used.add((title, year))
        movies.append(
            {
                "title": title,
                "year": year,
                "director": f"Director {m}",
                "imdb": f"tt{1000000 + m:07d}",
            }
        )
    records, truth = [], []
    keys: dict[str, dict[str, list[int]]] = {"movielens": {}, "redial": {}}

    def add(record, m, dataset=None, key=None):
        records.append(record)
        truth.append(m)
        if dataset:
            keys[dataset].setdefault(key, []).append(len(records) - 1)

    for m, movie in enumerate(movies):
        add(MovieRecord("imdb", movie["imdb"], movie["title"], movie["year"], directors=[movie["director"]],
                        imdb_id=movie["imdb"], votes=rng.randint(5, 100000)), m)  # fmt: skip
        if rng.random() < 0.6:
            title = movie["title"]
            if title.split(" ", 1)[0] in ARTICLES and " " in title:
                article, rest = title.split(" ", 1)
                title = f"{rest}, {article}"
            imdb = movie["imdb"] if rng.random() < 0.8 else None
            add(MovieRecord("movielens", f"ml:{m}", title, movie["year"], imdb_id=imdb, catalogue="movielens"),
                m, "movielens", str(m))  # fmt: skip
        if rng.random() < 0.3:
            year = movie["year"] + (rng.choice((-1, 1)) if rng.random() < 0.15 else 0)
            add(MovieRecord("redial", f"r:{m}", variant(movie["title"], rng, typo=rng.random() < 0.2), year),
                m, "redial", str(m))  # fmt: skip
        if rng.random() < 0.2:
            add(MovieRecord("lists", f"l:{m}", variant(movie["title"], rng, typo=rng.random() < 0.3), movie["year"],
                            directors=[movie["director"]] if rng.random() < 0.5 else []), m)  # fmt: skip
    mentions = Counter()
    mention_titles: dict[str, str] = {}
    mention_truth: dict[str, int] = {}
    for m in rng.sample(range(n), max(1, n // 10)):
        key = f"{variant(movies[m]['title'], rng, typo=rng.random() < 0.1)} ({movies[m]['year']})"
        mentions[key] += rng.randint(1, 5)
        mention_titles[key] = key
        mention_truth.setdefault(key, m)
    return records, truth, keys, (mentions, mention_titles), mention_truth


def pair_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall of 'same movie' decisions."""

    def pairs(counter: Counter) -> int:
        return sum(c * (c - 1) // 2 for c in counter.values())

    keep = pred >= 0
    pred, truth = pred[keep], truth[keep]
    tp = pairs(Counter(zip(pred.tolist(), truth.tolist(), strict=True)))
    predicted, actual = pairs(Counter(pred.tolist())), pairs(Counter(truth.tolist()))
    return tp / max(predicted, 1), tp / max(actual, 1)


def run_one(n: int, seed: int) -> dict:
    """Merge + link at one size (called in a fresh subprocess)."""
    from corpus_builder.link import MovieMatcher, link_dataset
    from corpus_builder.merge import merge_records

    records, truth, keys, mentions, mention_truth = generate(n, seed)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    merged = merge_records(records, keys, source_priority=["imdb", "movielens", "redial", "lists"])
    t_merge = time.perf_counter() - t0
    popularity = np.array([float(m.votes or 0) for m in merged.movies])
    matcher = MovieMatcher(merged.movies, popularity, threshold=0.88)
    titles = [f"{r.title} ({r.year})" for r in records]
    # as in the real pipeline: each dataset linked once (catalogue keys exactly, mentions by title)
    tables = {
        name: link_dataset(
            name,
            keys[name],
            merged.record_movie,
            titles,
            mentions if name == "redial" else None,
            matcher,
        )
        for name in ("movielens", "redial")
    }
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    precision, recall = pair_counts(merged.record_movie, np.asarray(truth))
    # mention linking accuracy: the linked movie must contain a record of the true movie
    movie_truth: dict[int, Counter] = {}
    for i, row in enumerate(merged.record_movie.tolist()):
        movie_truth.setdefault(row, Counter())[truth[i]] += 1
    mention_table = tables["redial"]
    mentioned = [i for i, key in enumerate(mention_table.keys) if key in mention_truth]
    correct = sum(
        1
        for i in mentioned
        if mention_table.rows[i] >= 0
        and movie_truth[mention_table.rows[i]].most_common(1)[0][0]
        == mention_truth[mention_table.keys[i]]
    )
    linked_mentions = sum(1 for i in mentioned if mention_table.rows[i] >= 0)
    return {
        "movies": n,
        "records": len(records),
        "merged_movies": len(merged.movies),
        "merge_seconds": round(t_merge, 2),
        "merge_link_seconds": round(wall, 2),
        "merge_link_cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dup_precision": round(precision, 4),
        "dup_recall": round(recall, 4),
        "mention_link_rate": round(linked_mentions / max(len(mentioned), 1), 4),
        "mention_link_accuracy": round(correct / max(len(mentioned), 1), 4),
        "fuzzy_comparisons": merged.stats.fuzzy_comparisons,
        "catalogue_link_rate": {k: t.stats()["key_link_rate"] for k, t in tables.items()},
    }


def bench_embedding(data_dir: Path, movies: int, work: Path) -> dict:
    """Full build with embeddings, then a rebuild after changing 1% of the movies."""
    from corpus_builder.build import build_corpus
    from corpus_builder.testing import write_mini_data_dir

    data = write_mini_data_dir(data_dir, work / "data", n_movies=movies)
    from corpus_builder.corpus_config import CorpusConfig

    config = CorpusConfig(
        sources=["redial_movies", "redial_metadata"],
        link={"datasets": ["redial"], "use_data_loaders": False},
        embedding={"cache_dir": None},
    )
    t0 = time.perf_counter()
    full = build_corpus(data, work / "corpus", config, progress=True)
    t_full = time.perf_counter() - t0
    info_path = data / "metadata" / "redial_id2info.json"
    info = json.loads(info_path.read_text())
    changed = 0
    for key in sorted(info)[: max(1, len(info) // 100)]:
        info[key]["plot"] = (info[key].get("plot") or "") + " (restored edition)"
        changed += 1
    info_path.write_text(json.dumps(info))
    t0 = time.perf_counter()
    rebuild = build_corpus(data, work / "corpus", config, progress=False)
    t_rebuild = time.perf_counter() - t0
    emb_full, emb_re = full.build_log["embedding"], rebuild.build_log["embedding"]
    return {
        "movies": full.manifest["counts"]["movies"],
        "full_build_seconds": round(t_full, 2),
        "embedding_seconds": emb_full["seconds"],
        "model_load_seconds": emb_full["model_load_seconds"],
        "movies_per_second": emb_full["movies_per_second"],
        "changed_movies": changed,
        "rebuild_seconds": round(t_rebuild, 2),
        "rebuild_embedded": emb_re["computed"],
        "rebuild_reused": emb_re["reused"],
        "rebuild_embedding_seconds": emb_re["seconds"],
        "rebuild_model_load_seconds": emb_re["model_load_seconds"],
        "rebuild_ratio": round(t_rebuild / t_full, 4),
        "rebuild_ratio_without_model_load": round(
            (t_rebuild - emb_re["model_load_seconds"]) / (t_full - emb_full["model_load_seconds"]),
            4,
        ),
    }


PHASES = ("read", "merge", "link", "filter", "write", "embed", "index")


def compare_corpora(a: Path, b: Path, atol: float = 1e-5) -> dict:
    """Whether two corpus directories hold the same corpus: byte-identical movies.parquet, link
    tables, manifest.json, embedding hashes and meta; vectors (and the flat index's stored
    vectors) equal within `atol`. build_log.json (timings) is not compared."""
    import faiss

    from rar.corpus.schema import (
        EMBEDDING_META_FILE,
        EMBEDDINGS_DIR,
        HASHES_FILE,
        INDEX_FILE,
        LINKS_DIR,
        MANIFEST_FILE,
        MOVIES_FILE,
        VECTORS_FILE,
    )

    a, b = Path(a), Path(b)
    report: dict = {"identical_files": [], "different_files": []}
    names = [MOVIES_FILE, MANIFEST_FILE, f"{EMBEDDINGS_DIR}/{HASHES_FILE}",
             f"{EMBEDDINGS_DIR}/{EMBEDDING_META_FILE}"]  # fmt: skip
    links = sorted({p.name for d in (a, b) for p in (d / LINKS_DIR).glob("*.parquet")})
    names += [f"{LINKS_DIR}/{name}" for name in links]
    for name in names:
        fa, fb = a / name, b / name
        same = fa.is_file() and fb.is_file() and fa.read_bytes() == fb.read_bytes()
        report["identical_files" if same else "different_files"].append(name)
    va = np.load(a / EMBEDDINGS_DIR / VECTORS_FILE)
    vb = np.load(b / EMBEDDINGS_DIR / VECTORS_FILE)
    report["vectors_shape"] = [list(va.shape), list(vb.shape)]
    if va.shape == vb.shape:
        diff = np.abs(va - vb)
        report["vectors_max_abs_diff"] = float(diff.max()) if diff.size else 0.0
        report["vectors_bit_identical_rows"] = (
            int((diff.max(axis=1) == 0).sum()) if diff.size else 0
        )
    ia, ib = faiss.read_index(str(a / INDEX_FILE)), faiss.read_index(str(b / INDEX_FILE))
    report["index"] = [type(ia).__name__, ia.ntotal, type(ib).__name__, ib.ntotal]
    index_diff = None
    if ia.ntotal == ib.ntotal and ia.ntotal and isinstance(ia, faiss.IndexFlat):
        ra, rb = ia.reconstruct_n(0, ia.ntotal), ib.reconstruct_n(0, ib.ntotal)
        index_diff = float(np.abs(ra - rb).max())
        report["index_vectors_max_abs_diff"] = index_diff
    report["equal"] = (
        not report["different_files"]
        and va.shape == vb.shape
        and report.get("vectors_max_abs_diff", 0.0) <= atol
        and report["index"][1] == report["index"][3]
        and (index_diff is None or index_diff <= atol)
    )
    return report


def _corpus_config(src: Path) -> Path:
    """The quickstart corpus config of the checkout `src` (rar/configs/, or configs/ before the
    configs became package data)."""
    packaged = src / "rar" / "configs" / "corpus_quickstart.yaml"
    return packaged if packaged.is_file() else src / "configs" / "corpus_quickstart.yaml"


def _timed_build(src: Path, data_dir: Path, out: Path) -> dict:
    """One cold quickstart-corpus build by the code in `src`, in a fresh interpreter (as the
    quickstart's first stage: rar/configs/corpus_quickstart.yaml, no previous corpus, no cache)."""
    import os
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    load0 = os.getloadavg()[0]
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rar", "build-corpus", "--config",
         str(_corpus_config(src)), "--data-dir", str(data_dir),
         "--out", str(out), "--quiet"],
        cwd=src, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"build with {src} failed:\n{proc.stderr[-3000:]}")
    build_log = json.loads((out / "build_log.json").read_text())
    embedding = build_log.get("embedding", {})
    return {
        "source": str(src),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(
            usage.ru_utime - usage0.ru_utime + usage.ru_stime - usage0.ru_stime, 1
        ),
        "load_before": round(load0, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "phases": {k: build_log["timings"].get(k) for k in PHASES},
        "model_load_seconds": embedding.get("model_load_seconds"),
        "embedded": embedding.get("computed"),
        "movies_per_second": embedding.get("movies_per_second"),
    }


def bench_quickstart(before_ref: str, data_dir: Path, work: Path) -> dict:
    """The quickstart corpus built cold by `before_ref`'s code and by this checkout, one after
    the other in one run, phase by phase; then the two corpora compared."""
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    before_src = work / "before-src"
    before_src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", before_ref],
                             capture_output=True, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(before_src)], input=archive, check=True)
    runs = {}
    for name, src in (("before", before_src), ("after", ROOT)):
        runs[name] = _timed_build(src, data_dir, work / name)
        print(json.dumps({name: runs[name]}), flush=True)
    comparison = compare_corpora(work / "before", work / "after")
    print(f"\n| phase | before ({before_ref}) s | after s |\n|---|---|---|")
    for phase in PHASES:
        print(f"| {phase} | {runs['before']['phases'][phase]} | {runs['after']['phases'][phase]} |")
    for key in ("model_load_seconds", "movies_per_second", "wall_seconds", "cpu_seconds",
                "load_before", "load_after"):  # fmt: skip
        print(f"| {key} | {runs['before'][key]} | {runs['after'][key]} |")
    print(json.dumps({"comparison": comparison}, indent=2), flush=True)
    return {"before_ref": before_ref, **runs, "comparison": comparison}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[33_700, 100_000, 337_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument(
        "--embed-movies", type=int, default=1500, help="ReDial movies in the embedding benchmark."
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rar_bench_corpus"))
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument("--quickstart", action="store_true",
                        help="Only the cold quickstart corpus build, --before-ref vs this checkout.")  # fmt: skip
    parser.add_argument("--before-ref", default="main", help="git commit of the 'before' build.")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"),
                        help="Only compare two corpus directories (exit 1 when they differ).")  # fmt: skip
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.seed)))
        return
    if args.compare:
        report = compare_corpora(*args.compare)
        print(json.dumps(report, indent=2))
        raise SystemExit(0 if report["equal"] else 1)
    if args.quickstart:
        results = bench_quickstart(args.before_ref, args.data_dir, args.work)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        return
    results: dict = {"merge_link": []}
    for size in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(size), "--seed", str(args.seed)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"size {size} failed:\n{proc.stderr}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        results["merge_link"].append(row)
        print(json.dumps(row), flush=True)
    rows = results["merge_link"]
    if len(rows) >= 2:
        ratio = rows[-1]["merge_link_seconds"] / rows[0]["merge_link_seconds"]
        cpu_ratio = rows[-1]["merge_link_cpu_seconds"] / rows[0]["merge_link_cpu_seconds"]
        results["time_ratio"] = round(ratio, 2)
        results["cpu_time_ratio"] = round(cpu_ratio, 2)
        print(f"time({rows[-1]['movies']})/time({rows[0]['movies']}) = {ratio:.2f} wall, {cpu_ratio:.2f} cpu "
              f"(size ratio {rows[-1]['movies'] / rows[0]['movies']:.1f})")  # fmt: skip
    if not args.skip_embedding:
        import shutil

        shutil.rmtree(args.work, ignore_errors=True)
        args.work.mkdir(parents=True)
        results["embedding"] = bench_embedding(args.data_dir, args.embed_movies, args.work)
        print(json.dumps(results["embedding"]), flush=True)
        shutil.rmtree(args.work, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
