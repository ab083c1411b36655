"""The conversation-aware table on any conversation dataset (issue 25): most-popular, ItemKNN,
EASE, the item-only LRURec, the text tower alone, the fused policy and RAR (RL from the fused
run), each alone and + the trained ranker, with R@25 / R@50 (the retrieval ceiling) and N@10 on
cold targets, plus the paired tests. It runs the quickstart's stages on `--dataset`, so the
ReDial table is `make quickstart`'s and this script gives the same table for INSPIRED:

    python experiments/table_conversational.py --dataset inspired --data-dir ../shared/data \\
        --corpus runs/quickstart/corpus --out runs/conversational-inspired

Reuses finished stages (and the corpus given); `--set-train key=value` shrinks budgets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rar.quickstart import PAIRS, headline_rows, run_quickstart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="inspired", help="redial | inspired | reddit | custom")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, help="a built corpus (default: build one)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set-train", action="append", default=[], help="override (all runs)")
    parser.add_argument("--set-rar", action="append", default=[], help="override (the RL run)")
    args = parser.parse_args()
    result = run_quickstart(
        args.data_dir,
        args.out,
        overrides={"train": args.set_train, "rar": args.set_rar},
        corpus=args.corpus,
        dataset=args.dataset,
    )
    evaluation = json.loads((result.evaluation_dir / "evaluation.json").read_text())
    ceiling = json.loads((result.evaluation_dir / "ceiling.json").read_text())
    lines = [
        f"{args.dataset} test split: {ceiling['rows']} rows, {ceiling['cold_rows']} cold",
        "",
        "| system | N@10 | R@10 | R@25 | R@50 | cold N@10 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {' | '.join(values)} |" for name, values in headline_rows(evaluation, ceiling)
    ]
    lines += ["", "| comparison (N@10) | B − A | 95% CI | p |", "|---|---:|---|---:|"]
    for a, b in PAIRS:
        found = list((args.out / "reports").glob("compare_*/compare.json"))
        for path in found:
            report = json.loads(path.read_text())
            names = [report[side].rsplit(" (", 1)[0] for side in ("a", "b")]
            if names == [a, b]:
                row = next(r for r in report["rows"] if r["metric"] == "ndcg@10")
                lines.append(
                    f"| {b} vs {a} | {row['diff']:+.4f} | [{row['ci_low']:+.4f}, "
                    f"{row['ci_high']:+.4f}] | {row['p_value']:.3f} |"
                )
    text = "\n".join(lines) + "\n"
    (args.out / "table_conversational.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
