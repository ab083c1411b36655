"""The retriever as a stochastic policy: Plackett-Luce over the scores of the whole corpus.

A ranked candidate set C = (c_1..c_k) has probability
P(C) = prod_i exp(s_{c_i}) / sum_{j not in c_<i} exp(s_j)   (paper Eq. 3).
Sampling from it is exactly Gumbel-top-k: perturb every score with independent
Gumbel(0, 1) noise and keep the k largest, in order. Items masked to -inf (the
conversation's history) are never drawn.

Three samplers, all exact Plackett-Luce:
- :func:`gumbel_top_k` — noise for every (row, group, item); simple, memory B*g*N.
- :func:`top_down_sample` — explicit noise only for the top-M scored items; the
  maximum of the perturbed tail is a single Gumbel at the tail's log-sum-exp
  (Gumbel-max property), refined only while it can still enter the top k
  (the argmax drawn in proportion to exp(score), the next maximum a Gumbel
  truncated below the previous one). Cost ~ one top-M and one exp pass over
  the scores, independent of g.
- :func:`sequential_sample` — k categorical draws without replacement; the
  textbook reference the benchmark compares against.

:func:`log_prob` is the exact log-likelihood, stable when the chosen items hold
nearly all of the mass (float64, with an exact masked recomputation as fallback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_LOG_HALF = -math.log(2.0)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, accurate near 0 and near -inf (Maechler 2012)."""
    x = x.clamp(max=0.0)
    return torch.where(x > _LOG_HALF, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _gumbel(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Standard Gumbel noise as -log(Exp(1)); exponential_ never returns 0."""
    noise = torch.empty(shape, dtype=dtype, device=device)
    noise.exponential_(generator=generator)
    return noise.log_().neg_()


def _check_shape(scores: torch.Tensor, k: int, g: int) -> None:
    if scores.dim() != 2:
        raise ValueError(f"scores must be [batch, n_items], got shape {tuple(scores.shape)}")
    if k < 1 or g < 1:
        raise ValueError(f"k and g must be >= 1, got k={k}, g={g}")
    if k > scores.shape[1]:
        raise ValueError(
            f"every row needs at least k={k} unmasked items; rows have {scores.shape[1]}"
        )


def _too_few(scores: torch.Tensor, k: int) -> ValueError:
    live = int((~torch.isneginf(scores)).sum(dim=1).min())
    return ValueError(f"every row needs at least k={k} unmasked items; smallest row has {live}")


def _check(scores: torch.Tensor, k: int, g: int) -> None:
    """Full check (one pass over the scores); the fast samplers check their output instead."""
    _check_shape(scores, k, g)
    if bool(torch.isneginf(scores.topk(k, dim=1).values[:, -1]).any()):
        raise _too_few(scores, k)


def gumbel_top_k(
    scores: torch.Tensor,
    k: int,
    g: int = 1,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    chunk_elements: int = 1 << 24,
) -> torch.Tensor:
    """g Plackett-Luce ranked sets of size k per row: top-k of scores/T + Gumbel noise.

    Vectorised over batch x group, processed in chunks of about `chunk_elements`
    noise values to bound memory. Returns LongTensor [B, g, k] of item indices.
    """
    _check_shape(scores, k, g)
    s = (scores / temperature).detach()
    batch, n = s.shape
    out = torch.empty((batch, g, k), dtype=torch.long, device=s.device)
    if batch * n <= chunk_elements:
        groups_per_chunk = chunk_elements // (batch * n)
        for start in range(0, g, groups_per_chunk):
            stop = min(g, start + groups_per_chunk)
            noisy = _gumbel((batch, stop - start, n), generator, s.dtype, s.device)
            noisy.add_(s[:, None, :])
            out[:, start:stop] = noisy.topk(k, dim=-1).indices
    else:
        rows_per_chunk = max(1, chunk_elements // n)
        for gi in range(g):
            for start in range(0, batch, rows_per_chunk):
                stop = min(batch, start + rows_per_chunk)
                noisy = _gumbel((stop - start, n), generator, s.dtype, s.device)
                noisy.add_(s[start:stop])
                out[start:stop, gi] = noisy.topk(k, dim=-1).indices
    if bool(torch.isneginf(s.gather(1, out.view(batch, g * k))).any()):
        raise _too_few(scores, k)
    return out


def sequential_sample(
    scores: torch.Tensor,
    k: int,
    g: int = 1,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Reference sampler: k successive softmax draws without replacement. Returns [B, g, k]."""
    _check(scores, k, g)
    s = (scores / temperature).detach()
    batch, n = s.shape
    logits = s[:, None, :].expand(batch, g, n).reshape(batch * g, n).clone()
    picks = []
    for _ in range(k):
        probs = torch.softmax(logits, dim=-1)
        choice = torch.multinomial(probs, 1, generator=generator)
        picks.append(choice)
        logits.scatter_(1, choice, float("-inf"))
    return torch.cat(picks, dim=1).view(batch, g, k)


class _TailSampler:
    """Draws tail items in proportion to exp(score) in O(log N): a two-level (block, item) CDF."""

    def __init__(self, s: torch.Tensor, head_idx: torch.Tensor, shift: torch.Tensor, block: int):
        """s [b, N] scores, head_idx [b, M] items excluded, shift [b] an upper bound of the
        tail scores (weights exp(s - shift) <= 1 cannot overflow)."""
        batch, n = s.shape
        self.block = block
        pad = (-n) % block
        self.row_max = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        w = torch.zeros((batch, n + pad), dtype=s.dtype, device=s.device)
        torch.sub(s, self.row_max[:, None], out=w[:, :n]).exp_()
        if head_idx.shape[1]:
            w.scatter_(1, head_idx, 0.0)
        self.w = w  # [B, n + pad] float32 weights relative to the tail's max
        block_sums = w.view(batch, -1, block).sum(dim=-1, dtype=torch.float64)
        self.block_cdf = block_sums.cumsum(dim=1)  # [B, n_blocks]
        total = self.block_cdf[:, -1]
        self.log_total = torch.log(total) + self.row_max.double()  # log-sum-exp of the tail
        self.n = n

    def draw(self, rows: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One item per entry of `rows` (batch indices), P(j) proportional to exp(s_j) over the tail."""
        cdf = self.block_cdf[rows]
        u = torch.rand(len(rows), dtype=torch.float64, generator=generator, device=cdf.device)
        u = u * cdf[:, -1]
        blk = torch.searchsorted(cdf, u[:, None], right=True).squeeze(1)
        blk = blk.clamp(max=cdf.shape[1] - 1)
        prev = torch.where(blk > 0, cdf.gather(1, (blk - 1).clamp(min=0)[:, None]).squeeze(1), 0.0)
        resid = u - prev
        offsets = blk[:, None] * self.block + torch.arange(self.block, device=cdf.device)
        inner = self.w[rows[:, None], offsets].double().cumsum(dim=1)
        pos = torch.searchsorted(inner, resid[:, None], right=True).squeeze(1)
        # rounding can put u past the last non-zero weight of the block: take that last one
        last_nz = (inner < inner[:, -1:]).sum(dim=1)
        pos = torch.minimum(pos, last_nz)
        return blk * self.block + pos


def top_down_sample(
    scores: torch.Tensor,
    k: int,
    g: int = 1,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    head_size: int = 512,
    block: int = 512,
    max_rejections: int = 64,
    max_bound_candidates: int = 2048,
) -> torch.Tensor:
    """Exact Plackett-Luce sampling that draws explicit noise only for the top `head_size` items.

    Top-down Gumbel construction (the Gumbel-max property): the maximum of s_j + G_j
    over the tail T is Gumbel(logsumexp_T s), its argmax is j with probability
    exp(s_j)/sum_T exp(s), independently of the value; the maximum over T minus the
    argmax is a Gumbel at the reduced log-sum-exp truncated below the previous maximum.
    Tail maxima are extracted only while they exceed the current k-th largest perturbed
    value, so the returned top-k equals the top-k of a full Gumbel perturbation.

    Fast path first (no pass over the tail's scores at all): every tail score is at most
    u = the largest tail score, so a tail item can only enter the top k if its noise
    exceeds a = tau - u (tau = the head's k-th perturbed value). How many do is
    Binomial(n_tail, P(G > a)), which items is a uniform subset, and their noise is a
    Gumbel truncated to (a, inf); their exact perturbed values then join the head's.
    Rows expecting more than `max_bound_candidates` such items (flat scores) take the
    log-sum-exp construction above instead. Returns LongTensor [B, g, k].
    """
    _check_shape(scores, k, g)
    s = (scores / temperature).detach().float()
    batch, n = s.shape
    m = min(head_size, n)
    if m < k:
        _check(scores, k, g)
    head = _Head.of(s, m)
    if m >= k and bool(torch.isneginf(head.vals[:, k - 1]).any()):
        raise _too_few(scores, k)
    top = _FlatTop.of_head(head, g, k, generator)
    # the rows with a tail to settle (without one, the head's top-k is the answer)
    pending = torch.isfinite(head.tail_bound)[top.row_b]
    if not bool(pending.any()):
        return top.ordered(batch, g)
    if m >= k and max_bound_candidates > 0:
        pending &= ~_bound_path(s, head, top, pending, max_bound_candidates, generator)
    if bool(pending.any()):
        _TailExtraction(s, head, top, pending, block, max_rejections, generator).run()
    return top.ordered(batch, g)


@dataclass
class _Head:
    """The top `m` scored items of each row (explicit noise) and what bounds the rest, the tail:
    its largest score `tail_bound` (-inf without a tail) and `tail_mask` [B, N] (True outside the
    head; masked tail items need no exclusion: their weight exp(-inf) is 0 and their perturbed
    value -inf, so they can never be drawn)."""

    vals: torch.Tensor  # [B, m]
    idx: torch.Tensor  # [B, m]
    tail_bound: torch.Tensor  # [B]
    tail_mask: torch.Tensor  # [B, N] bool

    @property
    def n_tail(self) -> int:
        return self.tail_mask.shape[1] - self.idx.shape[1]

    @classmethod
    def of(cls, s: torch.Tensor, m: int) -> _Head:
        batch, n = s.shape
        if m > 0:
            top = s.topk(min(m + 1, n), dim=1)
            vals, idx = top.values[:, :m], top.indices[:, :m]
            tail_bound = top.values[:, m] if m < n else s.new_full((batch,), float("-inf"))
        else:
            vals = s.new_empty(batch, 0)
            idx = torch.empty(batch, 0, dtype=torch.long, device=s.device)
            tail_bound = s.amax(dim=1)
        tail_mask = torch.ones_like(s, dtype=torch.bool)
        if m > 0:
            tail_mask.scatter_(1, idx, False)
        return cls(vals, idx, tail_bound, tail_mask)


@dataclass
class _FlatTop:
    """The top-k perturbed values found so far and their items, per (row, group) flattened to
    [B*g, k] (padded with -inf); `row_b` maps a flat row to its batch row."""

    vals: torch.Tensor  # [B*g, k] float64
    idx: torch.Tensor  # [B*g, k]
    row_b: torch.Tensor  # [B*g]

    @classmethod
    def of_head(cls, head: _Head, g: int, k: int, generator: torch.Generator | None) -> _FlatTop:
        """The head's perturbed values (Gumbel noise for every (row, group, head item))."""
        batch, m = head.vals.shape
        dev = head.vals.device
        hv = head.vals.double()[:, None, :] + _gumbel((batch, g, m), generator, torch.float64, dev)
        kk = min(k, m)
        top_vals = torch.full((batch, g, k), float("-inf"), dtype=torch.float64, device=dev)
        top_idx = torch.zeros((batch, g, k), dtype=torch.long, device=dev)
        if kk > 0:
            v, pos = hv.topk(kk, dim=-1)
            top_vals[..., :kk] = v
            top_idx[..., :kk] = head.idx[:, None, :].expand(batch, g, m).gather(2, pos)
        top_vals = torch.nan_to_num(top_vals, nan=float("-inf"))  # -inf scores + noise stay -inf
        row_b = torch.arange(batch, device=dev)[:, None].expand(batch, g).reshape(-1)
        return cls(top_vals.view(batch * g, k), top_idx.view(batch * g, k), row_b)

    def merge(self, rows: torch.Tensor, vals: torch.Tensor, idx: torch.Tensor) -> None:
        """Insert candidates (`vals`, `idx` [len(rows), c]) into the top-k of `rows`."""
        cand_vals = torch.cat([self.vals[rows], vals], dim=1)
        cand_idx = torch.cat([self.idx[rows], idx], dim=1)
        top = cand_vals.topk(self.vals.shape[1], dim=1)
        self.vals[rows] = top.values
        self.idx[rows] = cand_idx.gather(1, top.indices)

    def ordered(self, batch: int, g: int) -> torch.Tensor:
        """The ranked sets [B, g, k]: each top-k by decreasing perturbed value."""
        k = self.vals.shape[1]
        return _order(self.vals.view(batch, g, k), self.idx.view(batch, g, k))


class _TailExtraction:
    """The log-sum-exp construction of :func:`top_down_sample` for the `pending` flat rows:
    tail maxima extracted one at a time (the argmax drawn in proportion to exp(score) from the
    tail not yet extracted, the value a Gumbel at that remainder's log-sum-exp truncated below
    the previous maximum) while they can still enter the row's top k."""

    def __init__(
        self,
        s: torch.Tensor,
        head: _Head,
        top: _FlatTop,
        pending: torch.Tensor,
        block: int,
        max_rejections: int,
        generator: torch.Generator | None,
    ):
        self.s, self.tail_mask, self.top = s, head.tail_mask, top
        self.max_rejections, self.generator = max_rejections, generator
        batch, dev, flat = s.shape[0], s.device, len(top.row_b)
        need_b = torch.unique(top.row_b[pending])
        self.local = torch.full((batch,), -1, dtype=torch.long, device=dev)  # batch row -> sampler
        self.local[need_b] = torch.arange(len(need_b), device=dev)
        self.sampler = _TailSampler(s[need_b], head.idx[need_b], head.tail_bound[need_b], block)
        # log-sum-exp of each row's remaining tail, and the next tail maximum
        self.lse_rem = torch.full((flat,), float("-inf"), dtype=torch.float64, device=dev)
        self.lse_rem[pending] = self.sampler.log_total[self.local[top.row_b[pending]]]
        self.tail_max = self.lse_rem + _gumbel((flat,), generator, torch.float64, dev)
        # items extracted so far per row ([rows, rounds], -1 = none), for the duplicate check
        self.extracted = torch.full((flat, 0), -1, dtype=torch.long, device=dev)
        self.n_extracted = torch.zeros(flat, dtype=torch.long, device=dev)
        self.pending = pending

    def run(self) -> None:
        """Extract until no row's next tail maximum can enter its top k (updates `top`)."""
        active = (self.pending & (self.tail_max > self.top.vals[:, -1])).nonzero().squeeze(1)
        while len(active) > 0:
            active = self._round(active)

    def _round(self, active: torch.Tensor) -> torch.Tensor:
        """One extraction for each active row; returns the rows still active."""
        b = self.top.row_b[active]
        items = self._distinct_items(active, b)
        vals = self.tail_max[active]
        self._record(active, items)
        self.top.merge(active, vals[:, None], items[:, None])
        new_lse = self._remaining_lse(active, b, items)
        self.lse_rem[active] = new_lse
        # next maximum: Gumbel at the remaining log-sum-exp, truncated below the previous one
        fresh = new_lse + _gumbel((len(active),), self.generator, torch.float64, self.s.device)
        nxt = -torch.logaddexp(-vals, -fresh)
        nxt = torch.where(torch.isfinite(new_lse), nxt, torch.full_like(nxt, float("-inf")))
        self.tail_max[active] = nxt
        return active[nxt > self.top.vals[active, -1]]

    def _distinct_items(self, active: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The argmax of each active row's *remaining* tail: draws that repeat an item already
        extracted from the row are rejected and drawn again, `max_rejections` times; the rows
        redrawn last then take an exact draw from the remainder (the extracted items hold
        almost all tail mass)."""
        items = self.sampler.draw(self.local[b], self.generator)
        dup = self._repeats(active, items)
        for _ in range(self.max_rejections):
            dup = self._repeats(active, items)
            if not bool(dup.any()):
                return items
            items[dup] = self.sampler.draw(self.local[b[dup]], self.generator)
        for i in dup.nonzero().squeeze(1).tolist():
            excluded = _row_items(self.extracted, active[i])
            items[i] = _draw_excluding(self.s[b[i]], self.tail_mask[b[i]], excluded, self.generator)
        return items

    def _repeats(self, active: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.extracted[active] == items[:, None]).any(dim=1)

    def _record(self, active: torch.Tensor, items: torch.Tensor) -> None:
        """Add `items` to the active rows' extracted items."""
        if bool((self.n_extracted[active] >= self.extracted.shape[1]).any()):
            column = torch.full(
                (self.extracted.shape[0], 1), -1, dtype=torch.long, device=self.s.device
            )
            self.extracted = torch.cat([self.extracted, column], dim=1)
        self.extracted[active, self.n_extracted[active]] = items
        self.n_extracted[active] += 1

    def _remaining_lse(
        self, active: torch.Tensor, b: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor:
        """The remaining tail's log-sum-exp without `items` (exact recomputation when the item
        held nearly all of it)."""
        ratio = self.s[b, items].double() - self.lse_rem[active]
        new_lse = self.lse_rem[active] + log1mexp(ratio)
        unstable = ratio > -1e-3
        for i in unstable.nonzero().squeeze(1).tolist():
            excluded = _row_items(self.extracted, active[i])
            new_lse[i] = _lse_excluding(self.s[b[i]], self.tail_mask[b[i]], excluded)
        return new_lse


def _row_items(extracted: torch.Tensor, row: torch.Tensor) -> list[int]:
    return [j for j in extracted[int(row)].tolist() if j >= 0]


def _bound_path(
    s: torch.Tensor,
    head: _Head,
    top: _FlatTop,
    pending: torch.Tensor,
    cap: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Complete the rows whose tail can be settled from the bound u alone (see
    :func:`top_down_sample`): how many tail items enter (Binomial), which (a uniform subset)
    and their noise (a truncated Gumbel); updates `top` in place, returns the rows done."""
    tau = top.vals[:, -1]
    a = tau - head.tail_bound.double()[top.row_b]  # tail noise must exceed a to matter
    ok = pending & torch.isfinite(a)
    rows = ok.nonzero().squeeze(1)
    if len(rows) == 0:
        return ok
    p_enter = -torch.expm1(-torch.exp(-a))  # P(Gumbel > a)
    n_tail = torch.full((len(rows),), float(head.n_tail), dtype=torch.float64, device=s.device)
    counts = torch.binomial(n_tail, p_enter[rows].clamp(0.0, 1.0), generator=generator).long()
    small = counts <= cap
    rows, counts = rows[small], counts[small]
    done = torch.zeros_like(pending)
    done[rows] = True
    todo = counts > 0
    rows, counts = rows[todo], counts[todo]
    if len(rows) == 0:
        return done
    b = top.row_b[rows]
    chosen = _uniform_tail_subset(head.tail_mask, b, counts, generator)
    noise = _gumbel_above(a[rows][:, None], chosen.shape[1], generator)
    values = s[b[:, None], chosen].double() + noise
    live = torch.arange(chosen.shape[1], device=s.device)[None, :] < counts[:, None]
    top.merge(rows, torch.where(live, values, torch.full_like(values, float("-inf"))), chosen)
    return done


def _uniform_tail_subset(
    tail_mask: torch.Tensor,
    b: torch.Tensor,
    counts: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """For each batch row b[i], a uniform subset of `counts[i]` distinct tail items, [len(b),
    max(counts)] (unused places 0): uniform draws over the corpus, keeping the first occurrence
    of each tail item (rejecting head, masked and repeated items)."""
    dev = tail_mask.device
    n_items = tail_mask.shape[1]
    width = int(counts.max())
    chosen = torch.zeros((len(b), width), dtype=torch.long, device=dev)
    filled = torch.zeros(len(b), dtype=torch.long, device=dev)
    while bool((filled < counts).any()):
        need = (filled < counts).nonzero().squeeze(1)
        draws = torch.randint(
            n_items, (len(need), width + width // 8 + 8), generator=generator, device=dev
        )
        valid = tail_mask[b[need][:, None], draws]
        if bool((filled[need] > 0).any()):  # a later round: also reject items already chosen
            seen_before = (draws[:, :, None] == chosen[need][:, None, :]) & (
                torch.arange(width, device=dev)[None, None, :] < filled[need][:, None, None]
            )
            valid &= ~seen_before.any(dim=2)
        valid &= _first_occurrences(draws)
        rank = valid.long().cumsum(dim=1) - 1 + filled[need][:, None]
        take = valid & (rank < counts[need][:, None])
        r_idx, c_idx = take.nonzero(as_tuple=True)
        chosen[need[r_idx], rank[r_idx, c_idx]] = draws[r_idx, c_idx]
        filled[need] = torch.minimum(counts[need], filled[need] + valid.long().sum(dim=1))
    return chosen


def _first_occurrences(draws: torch.Tensor) -> torch.Tensor:
    """True where a row's draw is the first of its value in that row."""
    order = torch.sort(draws, dim=1, stable=True)
    first = torch.ones_like(draws, dtype=torch.bool)
    first_sorted = torch.ones_like(draws, dtype=torch.bool)
    first_sorted[:, 1:] = order.values[:, 1:] != order.values[:, :-1]
    first.scatter_(1, order.indices, first_sorted)
    return first


def _gumbel_above(a: torch.Tensor, width: int, generator: torch.Generator | None) -> torch.Tensor:
    """[len(a), width] Gumbel noise truncated to (a, inf), via E = exp(-G) ~ Exp(1) truncated
    to [0, e^-a)."""
    v = torch.rand((len(a), width), dtype=torch.float64, generator=generator, device=a.device)
    e = -torch.log1p(-v * (-torch.expm1(-torch.exp(-a))))
    return -torch.log(e)


def _order(vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    order = vals.argsort(dim=-1, descending=True, stable=True)
    return idx.gather(-1, order)


def _lse_excluding(row: torch.Tensor, tail_mask: torch.Tensor, excluded: list[int]) -> float:
    keep = tail_mask & torch.isfinite(row)
    keep[torch.tensor(excluded, dtype=torch.long, device=row.device)] = False
    if not bool(keep.any()):
        return float("-inf")
    return float(torch.logsumexp(row.double()[keep], dim=0))


def _draw_excluding(
    row: torch.Tensor,
    tail_mask: torch.Tensor,
    excluded: list[int],
    generator: torch.Generator | None,
) -> int:
    keep = tail_mask & torch.isfinite(row)
    keep[torch.tensor(excluded, dtype=torch.long, device=row.device)] = False
    idx = keep.nonzero().squeeze(1)
    probs = torch.softmax(row.double()[idx], dim=0)
    return int(idx[torch.multinomial(probs, 1, generator=generator)])


def sample_ranked_sets(
    scores: torch.Tensor,
    k: int,
    g: int = 1,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    method: str = "auto",
    head_size: int = 512,
) -> torch.Tensor:
    """g ranked sets of k items per row from Plackett-Luce(scores / temperature): [B, g, k].

    `method`: "top_down" (fast and exact at corpus scale), "gumbel" (full-corpus noise),
    "sequential" (reference) or "auto" (gumbel while B*g*N <= 2^22 noise values, where one
    vectorised pass beats top_down's per-round overhead; top_down above). All have the same
    output distribution.
    """
    if method == "auto":
        method = "gumbel" if scores.shape[0] * g * scores.shape[1] <= 1 << 22 else "top_down"
    if method == "top_down":
        return top_down_sample(scores, k, g, temperature, generator, head_size=head_size)
    if method == "gumbel":
        return gumbel_top_k(scores, k, g, temperature, generator)
    if method == "sequential":
        return sequential_sample(scores, k, g, temperature, generator)
    raise ValueError(f"unknown sampler '{method}'; expected auto, top_down, gumbel or sequential")


def log_prob(
    scores: torch.Tensor,
    ranked: torch.Tensor,
    temperature: float = 1.0,
    exact_below: float = 1e-6,
) -> torch.Tensor:
    """Exact Plackett-Luce log-likelihood log P(C) of each ranked set, with gradients.

    scores [B, N], ranked [B, g, k] -> [B, g] (in the dtype of `scores`).
    Denominator at position i: the mass of the never-chosen items ("rest") plus the
    chosen items from position i on (a reverse cumulative log-sum-exp), combined with
    logaddexp. rest = logsumexp(all) + log1mexp(logsumexp(chosen) - logsumexp(all)), with
    the [B, g, k] part in float64 (the corpus-wide log-sum-exp stays in the input dtype); when the chosen items hold all but a fraction `exact_below` of the mass
    that subtraction would lose digits, so those rows are recomputed by an exact masked
    log-sum-exp.
    """
    if ranked.dim() != 3 or scores.dim() != 2 or ranked.shape[0] != scores.shape[0]:
        raise ValueError(
            f"expected scores [B, N] and ranked [B, g, k]; got {tuple(scores.shape)} and "
            f"{tuple(ranked.shape)}"
        )
    s = scores / temperature if temperature != 1.0 else scores
    batch, g, k = ranked.shape
    # only [B] and [B, g, k] values go to float64: the full-corpus pass stays in the input dtype
    chosen = s.gather(1, ranked.reshape(batch, g * k)).view(batch, g, k).double()
    lse_all = torch.logsumexp(s, dim=1).double()  # [B]
    suffix = torch.logcumsumexp(chosen.flip(-1), dim=-1).flip(-1)  # suffix[..., i] = LSE(c_i..c_k)
    frac = suffix[..., 0] - lse_all[:, None]  # log share of the chosen items, <= 0
    rest = lse_all[:, None] + log1mexp(frac)
    unstable = frac > math.log1p(-exact_below)
    if bool(unstable.any()):
        rows = unstable.nonzero()
        exact = []
        for b, gi in rows.tolist():
            keep = torch.ones(s.shape[1], dtype=torch.bool, device=s.device)
            keep[ranked[b, gi]] = False
            keep &= torch.isfinite(s[b])
            if bool(keep.any()):
                exact.append(torch.logsumexp(s[b][keep].double(), dim=0))
            else:
                exact.append(chosen.new_tensor(float("-inf")))
        rest = rest.index_put((rows[:, 0], rows[:, 1]), torch.stack(exact))
    denom = torch.logaddexp(rest[..., None].expand_as(suffix), suffix)
    return (chosen - denom).sum(dim=-1).to(scores.dtype)


def top1_kl(scores: torch.Tensor, ref_scores: torch.Tensor) -> torch.Tensor:
    """Exact KL(softmax(scores) || softmax(ref)) over the corpus per row: the drift of the
    first-position distribution, a cheap exact proxy for drift of the whole policy."""
    logp = torch.log_softmax(scores.double(), dim=-1)
    logq = torch.log_softmax(ref_scores.double(), dim=-1)
    p = logp.exp()
    finite = torch.isfinite(logp) & torch.isfinite(logq)
    terms = torch.where(finite, p * (logp - logq), torch.zeros_like(p))
    return terms.sum(dim=-1)
