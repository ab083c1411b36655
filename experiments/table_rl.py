r"""The RL table (paper Table 1 RL rows) on our own splits, with the offline semantic ranker.

For each dataset (ReDial, INSPIRED): the pretrained retriever alone, the pretrained retriever
+ ranker (no post-training), and SFT / DPO / SimPO / GRPO post-training (+ ranker), each over
several seeds (experiments/configs/table_rl.yaml). Reports N@5 R@5 N@10 R@10 on the test split
as mean ± standard error over seeds (single deterministic rows: over samples), and paired
bootstraps of each method vs SFT on the per-sample N@10 averaged over seeds. The same driver as
Tables 3-5 (`_rl_common.run_sweep`): runs are shared between the tables, finished runs reused,
killed ones resumed. Writes OUT/table_rl.{md,json}.

    .venv/bin/python experiments/table_rl.py --corpus corpus \
        --pretrained-run runs/pretrain-ml-latest-small-lrurec --data-dir ../shared/data \
        [--dataset redial inspired] [--seeds 0 1 2] [--set data.train_size=500] [--quick]
"""

from __future__ import annotations

from pathlib import Path

from _rl_common import run_sweep

SWEEP = str(Path(__file__).parent / "configs" / "table_rl.yaml")

if __name__ == "__main__":
    run_sweep(__doc__, SWEEP, "table_rl")
