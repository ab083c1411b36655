"""RL post-training of the retriever from ranker feedback (paper Algorithm 1).

`losses` (DPO, SimPO, GRPO, NLL), `rewards` (NDCG reward, DPO winner rule), `inputs` (what a
run loads: policy, initial policy, data, ranker), `trainer` (the online loop, handed those
objects), `state` (its resumable state, saved whole as the checkpoint), `rl_config` /
`train_config`.
"""
