"""LRURec's parallel scan must equal the step-by-step recurrence, padding included."""

from __future__ import annotations

import math

import pytest
import torch

from rar.retrievers import RetrieverConfig, build_retriever
from rar.retrievers.lru import scan_parallel, scan_sequential


def _log_lambda(d: int, generator: torch.Generator) -> torch.Tensor:
    modulus = 0.8 + 0.19 * torch.rand(d, generator=generator, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(d, generator=generator, dtype=torch.float64)
    return torch.complex(torch.log(modulus), phase)


@pytest.mark.parametrize("length", [1, 2, 3, 7, 8, 33, 64])
def test_scan_matches_sequential_float64(length):
    g = torch.Generator().manual_seed(length)
    log_lam = _log_lambda(6, g)
    x = torch.complex(
        torch.randn(3, length, 6, generator=g, dtype=torch.float64),
        torch.randn(3, length, 6, generator=g, dtype=torch.float64),
    )
    torch.testing.assert_close(
        scan_parallel(log_lam, x), scan_sequential(log_lam, x), rtol=1e-10, atol=1e-10
    )


def test_scan_left_padding_does_not_leak():
    g = torch.Generator().manual_seed(0)
    log_lam = _log_lambda(4, g)
    x = torch.complex(
        torch.randn(1, 5, 4, dtype=torch.float64, generator=g),
        torch.zeros(1, 5, 4, dtype=torch.float64),
    )
    padded = torch.cat([torch.zeros(1, 6, 4, dtype=x.dtype), x], dim=1)
    torch.testing.assert_close(
        scan_parallel(log_lam, padded)[:, 6:], scan_sequential(log_lam, x), rtol=1e-12, atol=1e-12
    )
    assert scan_parallel(log_lam, padded)[:, :6].abs().max() == 0


def test_lrurec_parallel_equals_sequential_on_padded_batch():
    torch.manual_seed(0)
    vectors = torch.randn(50, 12)
    model = (
        build_retriever(RetrieverConfig(name="lrurec", d_model=8, max_len=16), vectors)
        .double()
        .eval()
    )
    history = torch.tensor(
        [
            [0, 0, 0, 0, 5, 6, 7, 8, 9, 10, 11],
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
        ]
    )
    parallel = model.hidden_states(history)
    model.set_sequential(True)
    sequential = model.hidden_states(history)
    real = history > 0
    torch.testing.assert_close(parallel[real], sequential[real], rtol=1e-10, atol=1e-10)


def test_scan_gradients_match_sequential():
    g = torch.Generator().manual_seed(3)
    nu = torch.randn(4, dtype=torch.float64, generator=g).requires_grad_()
    x = torch.randn(2, 9, 4, dtype=torch.float64, generator=g).requires_grad_()
    grads = []
    for scan in (scan_parallel, scan_sequential):
        log_lam = torch.complex(-torch.exp(nu) * 0.1, torch.ones(4, dtype=torch.float64))
        out = scan(log_lam, torch.complex(x, x * 0.5))
        (g_nu, g_x) = torch.autograd.grad(out.abs().sum(), (nu, x))
        grads.append((g_nu, g_x))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-9, atol=1e-9)


def test_lambda_initialised_on_ring():
    torch.manual_seed(0)
    cfg = RetrieverConfig(name="lrurec", d_model=256, r_min=0.8, r_max=0.99)
    model = build_retriever(cfg, torch.randn(10, 8))
    layer = model.lru_layers[0]
    lam = torch.exp(layer.log_lambda())
    assert lam.abs().min() >= 0.8 - 1e-6 and lam.abs().max() <= 0.99 + 1e-6
    torch.testing.assert_close(torch.exp(layer.gamma_log), torch.sqrt(1 - lam.abs() ** 2))
    phases = torch.exp(layer.theta_log)
    assert phases.min() >= 0 and phases.max() < 2 * math.pi
