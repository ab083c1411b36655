"""RL post-training of the retriever from ranker feedback (paper Algorithm 1).

`losses` (DPO, SimPO, GRPO, NLL), `rewards` (NDCG reward, DPO winner rule),
`trainer` (the online loop with checkpoint/resume), `rl_config` / `train_config`.
"""
