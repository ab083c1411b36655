r"""Table 4 of the paper: SimPO vs online DPO post-training of the pretrained LRURec.

Each variant of experiments/configs/table4_simpo_vs_dpo.yaml is trained with `rar.rl.trainer.train` for
every seed (runs shared with the other RL tables when the configs agree), then evaluated on the
test split through the pipeline (retriever top-k -> frozen ranker), next to the pretrained
LRURec alone and + ranker. Prints a paper-style table and writes OUT/table4_simpo_vs_dpo.{md,json}.

    .venv/bin/python experiments/table4_simpo_vs_dpo.py --corpus corpus \
        --pretrained-run runs/pretrain-ml-latest-small-lrurec --data-dir ../shared/data \
        [--dataset redial inspired] [--seeds 0 1 2] [--max-steps N] [--quick] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

from _rl_common import run_sweep

SWEEP = str(Path(__file__).parent / "configs" / "table4_simpo_vs_dpo.yaml")

if __name__ == "__main__":
    run_sweep(__doc__, SWEEP, "table4_simpo_vs_dpo")
