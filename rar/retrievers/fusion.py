"""How a fused retriever weighs the parts of its score, re-fitted on validation after SFT.

A fused retriever scores movie i as the sum of up to four parts: the item tower <state, v_i>,
the per-movie bias b_i, the text tower and the co-occurrence prior. SFT balances them by the
likelihood of the target under a softmax over the whole corpus. That is a good criterion for
a policy's probabilities, but not the balance that puts the target into the top 10: the prior
is sharp on a few co-occurring movies and silent elsewhere, so likelihood keeps it small while
the top of the list wants it large. `experiments/fusion_fit.py` measured this with two
controls. Weights chosen by N@10 gain as much when fitted on training rows as on validation
rows, and weights chosen by likelihood on validation gain nothing. The cause is the criterion,
not held-out data.

So after SFT every part stays as trained, and one weight per part is chosen on the validation
split (as any hyperparameter is), by coordinate search on the retriever's own N@10 (the metric
SFT's early stopping uses). One shared temperature is then chosen by the validation
likelihood, so the policy's Plackett-Luce probabilities stay as calibrated as those weights
allow for RL sampling; ranking ignores it.

The weights are a buffer of the retriever (saved with every checkpoint, ones by default, so
retrievers that were never fitted score exactly as before). `fit_fusion` fits them;
`fit_run_fusion` fits a finished run on its dataset's validation split and writes
`fusion.json` beside its checkpoints, which `load_pretrained_run` applies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from rar.atomic_files import atomic_write_text
from rar.data.types import Turn
from rar.errors import InputError
from rar.metrics import ndcg_at_k
from rar.retrievers.metadata_links import LINK_PARTS

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.data.linking import LinkedSample
    from rar.retrievers.base import Retriever

#: the parts of a retriever's score, in the order they are summed (metadata_links.py has the
#: last two; they exist only once a fit has built them)
PARTS = ("item", "bias", "text", "prior", "people", "title")
FUSION_FILE = "fusion.json"
MULTIPLIERS = (0.25, 0.5, 2.0, 4.0)  # coordinate-search steps per part and pass
TEMPERATURES = tuple(2.0 ** (k / 4) for k in range(-12, 13))
MAX_PASSES = 4
MIN_GAIN = 1e-4  # a step must raise validation N@10 by more than this
# the metadata links start almost off (SFT never saw them); a line search over LINK_GRID
# first turns each up as far as validation N@10 asks, then the coordinate search refines all
LINK_START = 1.0 / 64
LINK_GRID = tuple(LINK_START * 4**k for k in range(6))  # 1/64 .. 16


class FusionWeights(nn.Module):
    """One weight per part of the score (a buffer; all ones = the parts as trained)."""

    weights: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weights", torch.ones(len(PARTS)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # checkpoints written before fusion weights (or before some parts) existed load the
        # missing weights as ones: the old scores
        old = state_dict.get(prefix + "weights", torch.ones(0))
        state_dict[prefix + "weights"] = torch.cat([old, torch.ones(len(PARTS) - len(old))])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def as_dict(self) -> dict[str, float]:
        return {name: float(w) for name, w in zip(PARTS, self.weights.tolist(), strict=True)}

    def set(self, weights: dict[str, float]) -> None:
        unknown = set(weights) - set(PARTS)
        if unknown:
            raise InputError(f"unknown fusion parts {sorted(unknown)}; expected {list(PARTS)}")
        values = [float(weights.get(name, 1.0)) for name in PARTS]
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise InputError(f"fusion weights must be finite and positive, got {weights}")
        self.weights.copy_(torch.tensor(values))


def combine(parts: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """sum_p weight_p * part_p over the parts that have a weight, in PARTS order (a weight of 1
    is not multiplied, so unfitted retrievers give bit-identical scores)."""
    out: torch.Tensor | None = None
    for name in PARTS:
        if name not in parts or name not in weights:
            continue
        term = parts[name] if weights[name] == 1.0 else weights[name] * parts[name]
        out = term if out is None else out + term.to(out.dtype)
    if out is None:
        raise ValueError("a retriever score needs at least one part")
    return out


def is_fused(model: Retriever) -> bool:
    """Whether the score combines two or more sources (item tower, text tower, prior): only
    then is there a balance to fit. The item-only LRURec (the paper's) is never re-weighted."""
    sources = {"item"} if model.config.towers != "text" else set()
    sources |= {"text"} if model.text is not None else set()
    sources |= {"prior"} if model.cooc is not None else set()
    return len(sources) >= 2


@dataclass
class FusionFit:
    """What fitting chose and what it measured on validation (written to fusion.json)."""

    weights: dict[str, float]
    temperature: float
    val_rows: int
    val_ndcg10_before: float
    val_ndcg10_after: float
    val_nll_before: float
    val_nll_after: float
    steps: list[dict[str, Any]] = field(default_factory=list)


class _ValidationParts:
    """The parts of the retriever's score on every validation row, computed once."""

    def __init__(
        self,
        model: Retriever,
        histories: Sequence[Sequence[int]],
        contexts: Sequence[Sequence[Turn]],
        targets: Sequence[Sequence[int]],
        batch_size: int = 256,
    ):
        from rar.retrievers.base import mask_history
        from rar.retrievers.retrieval_batch import RetrievalBatch

        chunks: dict[str, list[torch.Tensor]] = {}
        self.parts: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for start in range(0, len(histories), batch_size):
                batch = RetrievalBatch.from_rows(
                    histories[start : start + batch_size],
                    contexts[start : start + batch_size],
                    model.max_history,
                )
                for name, value in model.score_parts(batch).items():
                    if value.ndim == 1:  # the bias: one row for every sample
                        self.parts[name] = value.float()
                    else:
                        chunks.setdefault(name, []).append(value.float())
            history = RetrievalBatch.from_rows(histories, None, model.max_history).history
            zeros = torch.zeros(len(histories), model.num_items)
            self.mask = mask_history(zeros, model.check_tokens(history))
        self.parts |= {name: torch.cat(values) for name, values in chunks.items()}
        self.targets = [list(t) for t in targets]
        self.rows = torch.tensor([i for i, t in enumerate(targets) for _ in t])
        self.cols = torch.tensor([c for t in targets for c in t])

    def scores(self, weights: dict[str, float]) -> torch.Tensor:
        return combine(self.parts, weights) + self.mask

    def ndcg10(self, weights: dict[str, float]) -> float:
        top = self.scores(weights).topk(10, dim=1).indices.tolist()
        values = [ndcg_at_k(row, t, 10) for row, t in zip(top, self.targets, strict=True)]
        return sum(values) / len(values)

    def nll(self, weights: dict[str, float]) -> float:
        logp = torch.log_softmax(self.scores(weights), dim=1)
        return float(-logp[self.rows, self.cols].mean())


def fit_fusion(
    model: Retriever,
    histories: Sequence[Sequence[int]],
    contexts: Sequence[Sequence[Turn]],
    targets: Sequence[Sequence[int]],
    criterion: str = "ndcg@10",
) -> FusionFit:
    """Choose the part weights on validation rows (corpus rows: histories, targets) and set
    them on `model`. Deterministic: a fixed coordinate search, then a fixed temperature grid.
    `criterion` 'nll' searches by likelihood instead (the control of experiments/fusion_fit.py:
    SFT's own criterion, which should find little to gain)."""
    if criterion not in ("ndcg@10", "nll"):
        raise InputError(f"fusion criterion must be 'ndcg@10' or 'nll', got {criterion!r}")
    if not targets or not any(targets):
        raise InputError("fitting the fusion weights needs validation rows with targets")
    was_training = model.training
    model.eval()
    model.fusion.set({})
    data = _ValidationParts(model, histories, contexts, targets)
    names = [name for name in PARTS if name in data.parts]
    weights = {name: LINK_START if name in LINK_PARTS else 1.0 for name in names}
    # before: the parts as SFT trained them (the metadata links are not part of SFT)
    before = data.ndcg10({n: 1.0 for n in names if n not in LINK_PARTS})

    def gain(w: dict[str, float]) -> float:  # higher is better
        return data.ndcg10(w) if criterion == "ndcg@10" else -data.nll(w)

    weights, steps = search_weights(gain, weights, criterion)
    nll_before = data.nll({n: 1.0 for n in names if n not in LINK_PARTS})
    temperature = min(TEMPERATURES, key=lambda t: data.nll({n: w * t for n, w in weights.items()}))
    weights = {n: w * temperature for n, w in weights.items()}
    model.fusion.set(weights)
    model.train(was_training)
    return FusionFit(
        # the parts this retriever has (a reader builds no others), as the buffer holds them
        weights={k: v for k, v in model.fusion.as_dict().items() if k in weights},
        temperature=temperature,
        val_rows=len(targets),
        val_ndcg10_before=before,
        val_ndcg10_after=data.ndcg10(weights),
        val_nll_before=nll_before,
        val_nll_after=data.nll(weights),
        steps=steps,
    )


def search_weights(
    gain: Callable[[dict[str, float]], float], weights: dict[str, float], criterion: str
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Deterministic search for the weights of highest `gain`: a line search over LINK_GRID
    for each link part, then coordinate passes (MULTIPLIERS per part) until none improves.
    Returns the weights and every accepted step."""
    best = gain(weights)
    steps: list[dict[str, Any]] = []

    def consider(trial: dict[str, float]) -> bool:
        nonlocal weights, best
        value = gain(trial)
        if value <= best + MIN_GAIN:
            return False
        weights, best = trial, value
        steps.append({"weights": dict(weights), criterion: abs(value)})
        return True

    for name in [n for n in weights if n in LINK_PARTS]:
        for value in LINK_GRID:
            consider(weights | {name: value})
    for _ in range(MAX_PASSES):
        improved = False
        for name in list(weights):
            for mult in MULTIPLIERS:
                improved = consider(weights | {name: weights[name] * mult}) or improved
        if not improved:
            break
    return weights, steps


def fit_linked(
    model: Retriever,
    linked: Sequence[LinkedSample],
    corpus: Corpus,
    criterion: str = "ndcg@10",
    links: bool = True,
) -> FusionFit:
    """:func:`fit_fusion` on linked samples (their histories, conversations and targets), with
    the metadata links of `corpus` built first so that their weights are fitted too
    (`links=False`: the parts SFT trained only, the control of experiments/fusion_fit.py)."""
    if links and not model.links.is_built:
        model.links.build(corpus)
    return fit_fusion(
        model,
        [[corpus.index_of(c) for c in item.history_ids] for item in linked],
        [item.sample.context for item in linked],
        [[corpus.index_of(c) for c in item.target_ids] for item in linked],
        criterion,
    )


def write_fusion_file(run_dir: str | Path, fit: FusionFit, dataset: str) -> Path:
    """`<run_dir>/fusion.json`: the weights and what the fit measured on validation."""
    record = asdict(fit) | {"dataset": dataset, "split": "val"}
    path = Path(run_dir) / FUSION_FILE
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def fit_run_fusion(
    run_dir: str | Path, corpus: Corpus, dataset: str, data_dir: str | Path
) -> FusionFit | None:
    """Fit a finished SFT run's fusion weights on `dataset`'s validation split and write them
    to `<run_dir>/fusion.json`; None (nothing written) for a retriever that is not fused."""
    from rar.data.linking import link_samples
    from rar.data.registry import load_conversation_samples
    from rar.retrievers.checkpoint import load_pretrained_run

    model = load_pretrained_run(run_dir, corpus, fusion=False)
    if not is_fused(model):
        return None
    linked, _ = link_samples(load_conversation_samples(dataset, Path(data_dir), "val"), corpus)
    fit = fit_linked(model, linked, corpus)
    write_fusion_file(run_dir, fit, dataset)
    return fit


def has_link_parts(weights: dict[str, float]) -> bool:
    """Whether fitted weights include the metadata links (fits made before they existed
    do not, and load without them)."""
    return any(part in weights for part in LINK_PARTS)


def read_fusion_file(run_dir: str | Path) -> dict[str, float] | None:
    """The weights of `<run_dir>/fusion.json`, or None when the run has none."""
    path = Path(run_dir) / FUSION_FILE
    if not path.is_file():
        return None
    try:
        weights = json.loads(path.read_text(encoding="utf-8"))["weights"]
        out = {str(k): float(v) for k, v in weights.items()}
        FusionWeights().set(out)  # unknown parts, non-positive or non-finite weights
    except (ValueError, KeyError, TypeError, AttributeError, InputError) as err:
        raise InputError(
            f"{path}: not a fusion file ({err}); delete it to use the run's own weights"
        ) from err
    return out
