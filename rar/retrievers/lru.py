"""LRURec (Yue et al., WSDM 2024): linear recurrent units with a parallel scan.

Each LRU layer runs h_t = lambda * h_{t-1} + gamma * B x_t with a diagonal complex lambda
(eigenvalues initialised on a ring r_min..r_max with uniform phase, gamma = sqrt(1 - |lambda|^2)),
then o_t = C h_t + x_t (residual) and LayerNorm; a position-wise feed-forward follows.
Because the recurrence is linear and time-invariant, all states come from a scan of
ceil(log2 L) doubling levels instead of L sequential steps.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from rar.errors import InputError
from rar.retrievers.base import Retriever
from rar.retrievers.layers import FeedForward, pad_mask
from rar.retrievers.retriever_config import RetrieverConfig


def _scan_blocks_(h: torch.Tensor, log_lam: torch.Tensor) -> torch.Tensor:
    """In place: after level j every block of 2^(j+1) steps holds its own scan from a zero state.

    Level j adds lam^(1..2^j) times the last state of each block's first half to its second
    half, so log2(P) levels of elementwise work turn h (length P, a power of two) into the scan.
    """
    batch, length, d = h.shape
    levels = length.bit_length() - 1
    steps = torch.arange(1, length // 2 + 1, device=h.device, dtype=h.real.dtype)
    for level in range(levels):
        half = 1 << level
        blocks = h.view(batch, length // (2 * half), 2, half, d)
        powers = torch.exp(steps[:half, None] * log_lam[None, :])  # lam^1 .. lam^half
        blocks[:, :, 1].add_(blocks[:, :, 0, -1:] * powers)
    return h


def _pad_pow2(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Copy of x left-padded with zeros along dim 1 to a power-of-two length (and the pad size)."""
    length = x.shape[1]
    padded = 1 << max(0, (length - 1).bit_length())
    if padded == length:
        return x.clone(), 0
    out = x.new_zeros(x.shape[0], padded, x.shape[2])
    out[:, padded - length :] = x
    return out, padded - length


class _LinearScan(torch.autograd.Function):
    """h_t = lam * h_{t-1} + x_t by the level scan; the backward pass is the reverse scan with
    conj(lam), so no per-level intermediates are stored."""

    @staticmethod
    def forward(ctx, log_lam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h, pad = _pad_pow2(x)
        h = _scan_blocks_(h, log_lam)[:, pad:]
        ctx.save_for_backward(log_lam, h)
        return h

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_lam, h = ctx.saved_tensors
        # Adjoint a_t = g_t + conj(lam) a_{t+1}: a forward scan in reversed time.
        adj, pad = _pad_pow2(grad.flip(1))
        adj = _scan_blocks_(adj, log_lam.conj())[:, pad:].flip(1)
        # d h_t / d lam = h_{t-1}; chain through lam = exp(log_lam) (PyTorch's conjugate convention).
        grad_lam = (adj[:, 1:] * h[:, :-1].conj()).sum(dim=(0, 1))
        return grad_lam * torch.exp(log_lam).conj(), adj


def scan_parallel(log_lam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """All states of h_t = lam * h_{t-1} + x_t (h_0 = 0) along dim 1 in ceil(log2 L) levels.

    `log_lam` [d] complex (lam = exp(log_lam)), `x` [B, L, d] complex. L is padded on the left
    to a power of two with zeros, which leaves every state unchanged (zero input, zero state).
    """
    if x.shape[1] == 0:
        return x
    return _LinearScan.apply(log_lam, x)


def scan_sequential(log_lam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reference: the same recurrence, one step at a time."""
    lam = torch.exp(log_lam)
    h = x.new_zeros(x.shape[0], x.shape[2])
    states = []
    for t in range(x.shape[1]):
        h = lam * h + x[:, t]
        states.append(h)
    return torch.stack(states, dim=1)


class LRULayer(nn.Module):
    """One linear recurrent unit with residual connection and LayerNorm."""

    def __init__(self, d_model: int, r_min: float, r_max: float, max_phase: float, dropout: float):
        super().__init__()
        if not r_min < r_max:
            raise InputError(f"LRURec needs r_min < r_max, got r_min={r_min}, r_max={r_max}")
        u1 = torch.rand(d_model)
        u2 = torch.rand(d_model)
        # |lambda| = exp(-exp(nu_log)) uniform on the ring area between r_min and r_max.
        nu = -0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2)
        self.nu_log = nn.Parameter(torch.log(nu))
        self.theta_log = nn.Parameter(torch.log(max_phase * u2))
        modulus = torch.exp(-nu)
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - modulus**2)))
        self.in_proj = nn.Linear(d_model, 2 * d_model)  # real and imaginary parts of B x
        self.out_proj = nn.Linear(2 * d_model, d_model)  # C h from [Re h, Im h]
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)
        self.use_sequential = False

    def log_lambda(self) -> torch.Tensor:
        return torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, L, d] real, mask [B, L, 1]; inputs at padding are zeroed so no state leaks from it
        (outputs at padding are arbitrary: the next layer masks them again)."""
        re, im = self.in_proj(x).chunk(2, dim=-1)
        u = torch.complex(re, im) * (mask * torch.exp(self.gamma_log))
        log_lam = self.log_lambda().to(u.dtype)
        h = scan_sequential(log_lam, u) if self.use_sequential else scan_parallel(log_lam, u)
        out = self.out_proj(torch.cat([h.real, h.imag], dim=-1))
        return self.norm(x + self.dropout(out))


class LRURec(Retriever):
    """Stack of (LRU layer, feed-forward) blocks over the projected item vectors."""

    def __init__(self, config: RetrieverConfig, item_vectors: torch.Tensor):
        super().__init__(config, item_vectors)
        d = config.d_model
        self.input_norm = nn.LayerNorm(d)
        self.input_dropout = nn.Dropout(config.dropout)
        self.lru_layers = nn.ModuleList(
            LRULayer(d, config.r_min, config.r_max, config.max_phase, config.dropout)
            for _ in range(config.n_layers)
        )
        self.ffns = nn.ModuleList(
            FeedForward(d, config.ffn_mult, config.dropout) for _ in range(config.n_layers)
        )

    def set_sequential(self, sequential: bool) -> None:
        """Switch every layer to the step-by-step recurrence (the reference used in tests)."""
        for layer in self.lru_layers:
            cast(LRULayer, layer).use_sequential = sequential

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = pad_mask(tokens).to(self.items.vectors.dtype)
        x = self.input_dropout(self.input_norm(self.items.embed_tokens(tokens)))
        for lru, ffn in zip(self.lru_layers, self.ffns, strict=True):
            x = ffn(lru(x, mask))
        return x
