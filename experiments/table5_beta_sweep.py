r"""Table 5 of the paper: the DPO beta (0 = SFT, 0.05, 0.1, 0.2).

Each variant of experiments/configs/table5_beta_sweep.yaml is trained with `rar.rl.trainer.train` for
every seed (runs shared with the other RL tables when the configs agree), then evaluated on the
test split through the pipeline (retriever top-k -> frozen ranker), next to the pretrained
LRURec alone and + ranker. Prints a paper-style table and writes OUT/table5_beta_sweep.{md,json}.

    .venv/bin/python experiments/table5_beta_sweep.py --corpus corpus \
        --pretrained-run runs/pretrain-ml-latest-small-lrurec --data-dir ../shared/data \
        [--dataset redial inspired] [--seeds 0 1 2] [--max-steps N] [--quick] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

from _rl_common import run_sweep

SWEEP = str(Path(__file__).parent / "configs" / "table5_beta_sweep.yaml")

if __name__ == "__main__":
    run_sweep(__doc__, SWEEP, "table5_beta_sweep")
