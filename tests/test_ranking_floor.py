"""The FLOP count behind experiments/bench_ranking_floor.py agrees with what torch's FLOP
counter sees a real Llama forward execute, so the floor it prints rests on the right work."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

from bench_ranking_floor import Shapes, forward_flops, ranking_flops  # noqa: E402

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _tiny_llama():
    config = transformers.LlamaConfig(
        vocab_size=96,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        attn_implementation="eager",  # explicit matmuls, so the FLOP counter sees attention
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval(), config


def test_shapes_read_a_grouped_query_config():
    _, config = _tiny_llama()
    shapes = Shapes.of(config)
    assert (shapes.heads, shapes.kv_heads, shapes.head_dim) == (6, 2, 8)
    assert shapes.linear_shapes() == [(48, 48), (48, 16), (48, 16), (48, 48)] + [(48, 80)] * 2 + [
        (80, 48)
    ]


def test_forward_flops_match_torch_flop_counter():
    """The counter charges eager attention as full QK^T and PV and every vocabulary row; with
    the same charges our count must equal what it saw, part by part."""
    from torch.utils.flop_counter import FlopCounterMode

    model, config = _tiny_llama()
    n = 20
    ids = torch.randint(0, config.vocab_size, (1, n), generator=torch.Generator().manual_seed(1))
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(ids)
    seen = {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}
    ours = forward_flops(Shapes.of(config), n, n, [n] * n)
    assert ours["linear"] + ours["lm_head"] == seen["aten.mm"]
    assert ours["attention"] == seen["aten.bmm"]
    assert sum(ours.values()) == counter.get_total_flops()


def test_ranking_counts_the_causal_triangle_and_each_title_on_the_prompt():
    shapes = Shapes(layers=1, hidden=8, intermediate=16, heads=2, kv_heads=1, head_dim=4, vocab=10)
    per_key = 2 * 2 * 2 * 4
    alone = ranking_flops(shapes, 10, [])
    assert alone["attention"] == per_key * 10 * 11 / 2  # the lower triangle, diagonal included
    assert alone["lm_head"] == 2 * 8 * 10  # one vocabulary row
    # a 3-token title runs 2 tokens (its last only gets predicted), seeing 11 and 12 keys
    with_title = ranking_flops(shapes, 10, [3, 1])
    assert with_title["attention"] - alone["attention"] == per_key * (11 + 12)
    assert with_title["lm_head"] - alone["lm_head"] == 2 * 8 * 10 * 2
    linear_per_token = sum(2 * i * o for i, o in shapes.linear_shapes())
    assert with_title["linear"] == linear_per_token * 12
