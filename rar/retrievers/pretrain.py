"""Pretrain a retriever on MovieLens sessions linked to the corpus (`rar pretrain`).

Sessions come from the DATA helper's 8:1:1 split; items are mapped to corpus rows through the
corpus link table `movielens-<variant>`. Training: shifted-sequence next-item NLL (sampled or
full softmax), AdamW, early stopping on validation NDCG@10; the best model is
`checkpoints/best.pt`, the last epoch `checkpoints/last.pt` (rar.checkpoints: --resume continues
exactly).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rar.checkpoints import DataOrder, TrainingCheckpoint, seed_everything
from rar.errors import InputError, MissingPathError
from rar.optim import adamw, clip_gradients
from rar.progress import progress_bar
from rar.retrievers.base import Retriever
from rar.retrievers.checkpoint import (
    load_retriever,
    save_retriever,
)
from rar.retrievers.pretrain_config import PretrainConfig
from rar.retrievers.ranking_eval import popularity_scores, ranking_metrics
from rar.retrievers.registry import build_retriever
from rar.retrievers.sequences import (
    SessionLinkStats,
    eval_examples,
    left_pad,
    link_sessions,
    training_windows,
)
from rar.retrievers.training_loss import next_item_loss
from rar.tracking import Run, check_run_target

if TYPE_CHECKING:
    from rar.corpus import Corpus


@dataclass
class PretrainData:
    """Token sequences per split (corpus row + 1) and what linking dropped."""

    train: list[list[int]]
    val: list[list[int]]
    test: list[list[int]]
    num_items: int
    stats: dict[str, Any] = field(default_factory=dict)


def movielens_dir(spec: str, data_dir: Path | None) -> Path:
    path = Path(spec)
    if not path.is_absolute() and data_dir is not None:
        path = data_dir / path
    if not path.is_dir():
        raise MissingPathError(
            f"MovieLens directory not found: {path} (set data.movielens or --data-dir)"
        )
    return path


def build_pretrain_data(
    movielens_path: Path,
    corpus: Corpus,
    seed: int,
    min_length: int = 2,
    max_eval: int | None = None,
) -> PretrainData:
    """Split MovieLens into sessions and link every item to a corpus row (drops counted)."""
    from rar.data.movielens import load_movielens
    from rar.data.movielens_sessions import sessionize, split_sessions

    variant = movielens_path.name
    links = corpus.link_table(f"movielens-{variant}")
    if not links:
        raise InputError(
            f"the corpus has no links for 'movielens-{variant}'; build the corpus with that MovieLens release"
        )
    key_to_row = {key: corpus.index_of(cid) for key, cid in links.items() if cid is not None}
    sessions = sessionize(load_movielens(movielens_path).ratings)
    splits = split_sessions(sessions.sessions, seed=seed)
    out: dict[str, list[list[int]]] = {}
    stats: dict[str, Any] = {
        "variant": variant,
        "linked_movies": len(key_to_row),
        "sessions_shorter_than_2_ratings": sessions.dropped_sessions,
        "ratings_in_those_sessions": sessions.dropped_interactions,
    }
    for name in ("train", "val", "test"):
        link_stats = SessionLinkStats()
        seqs = link_sessions(splits[name], key_to_row, min_length, link_stats)
        if name != "train" and max_eval is not None and len(seqs) > max_eval:
            pick = np.random.default_rng(seed).choice(len(seqs), max_eval, replace=False)
            stats[f"{name}_sessions_subsampled_from"] = len(seqs)
            seqs = [seqs[i] for i in sorted(pick)]
        out[name] = seqs
        stats[name] = {**link_stats.as_dict(), "sessions_kept": len(seqs)}
    if not out["train"]:
        raise InputError(f"no training sessions left after linking {movielens_path} to the corpus")
    return PretrainData(out["train"], out["val"], out["test"], len(corpus), stats)


def evaluate(
    model: Retriever, sequences: list[list[int]], batch_size: int = 256
) -> dict[str, float]:
    """Val/test metrics: predict each session's last item from the items before it."""
    was_training = model.training
    model.eval()
    histories, targets = eval_examples(sequences, model.config.max_len)
    metrics = ranking_metrics(model.logits, histories, targets, batch_size)
    model.train(was_training)
    return metrics


def evaluate_popularity(
    data: PretrainData, sequences: list[list[int]], max_len: int
) -> dict[str, float]:
    """The most-popular-in-training baseline (history items excluded), for scale."""
    pop = popularity_scores(data.train, data.num_items).float()
    histories, targets = eval_examples(sequences, max_len)
    return ranking_metrics(lambda h: pop.expand(len(h), -1), histories, targets)


# v2: rar.checkpoints layout (RNG states, data order); v1 was untagged
CHECKPOINT_FORMAT = "rar-pretrain-v2"


def _data_identity(windows: list[list[int]]) -> dict[str, Any]:
    """What a resume checks: the training windows are the ones the checkpoint was trained on."""
    digest = hashlib.sha256(np.asarray([len(w) for w in windows], dtype=np.int64).tobytes())
    for window in windows:
        digest.update(np.asarray(window, dtype=np.int64).tobytes())
    return {"windows": len(windows), "windows_sha256": digest.hexdigest()}


class Pretrainer:
    """Trains one retriever on linked MovieLens sessions: handed its model, data, config and run
    (:func:`load_pretrain_inputs` loads the first two from a config). Early stopping on val
    NDCG@10 (`patience` evaluations, one per epoch, without improvement); the best model is
    `checkpoints/best.pt`, and a checkpoint after every epoch (rar.checkpoints) lets `resume`
    continue exactly."""

    def __init__(
        self,
        model: Retriever,
        data: PretrainData,
        config: PretrainConfig,
        run: Run,
        progress: bool = True,
    ):
        """Marks the training items as seen in `model`'s item table."""
        self.model, self.data, self.config = model, data, config
        self.run, self.best_path, self.progress = run, run.checkpoints / "best.pt", progress
        self.windows = training_windows(data.train, model.config.max_len)
        model.items.mark_seen(torch.tensor(sorted({t - 1 for s in data.train for t in s})))
        self.optimizer = adamw(model.parameters(), config.optim)
        generator = self.generator = torch.Generator()  # negatives (seeded per epoch)
        self.checkpoint = TrainingCheckpoint(
            run,
            CHECKPOINT_FORMAT,
            "rar pretrain",
            {"model": model},
            self.optimizer,
            generator=generator,
        )
        self.identity = _data_identity(self.windows)
        self.steps_per_epoch = math.ceil(len(self.windows) / config.optim.batch_size)
        if config.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, config.max_steps_per_epoch)
        # where training stands: the best validation so far, evaluations since it, steps taken
        self.best: dict[str, Any] = {"epoch": -1, "val/ndcg@10": -math.inf}
        self.bad_evals, self.step, self.start_epoch = 0, 0, 0

    def train(self, resume: bool = False) -> dict[str, Any]:
        """Train to `epochs` or an early stop (continuing from last.pt when resuming); returns
        the best epoch's summary plus `stopped_early`."""
        if resume:
            self._resume()
        for epoch in range(self.start_epoch, self.config.epochs):
            if self.bad_evals >= self.config.patience:
                break
            losses, seconds = self._train_epoch(epoch)
            self._end_epoch(epoch, losses, seconds)
        if not self.best_path.is_file():
            raise RuntimeError(
                "training finished without any evaluation (epochs reached on resume?)"
            )
        return self.best | {"stopped_early": self.bad_evals >= self.config.patience}

    def _resume(self) -> None:
        """Continue from last.pt: weights, optimiser, RNGs, epoch, step and the best so far."""
        if not self.checkpoint.path.is_file():
            raise MissingPathError(f"cannot resume: {self.checkpoint.path} does not exist")
        resumed = self.checkpoint.load(data=self.identity)
        self.start_epoch, self.step = resumed.order.epoch, resumed.step
        self.best, self.bad_evals = resumed.state["best"], resumed.state["bad_evals"]
        self.run.truncate_history(self.step)

    def _train_epoch(self, epoch: int) -> tuple[list[float], float]:
        """One epoch's steps; returns their losses and the seconds they took. Dropout and
        negatives are seeded per epoch, so an epoch is the same in any process."""
        seed, bs = self.config.seed, self.config.optim.batch_size
        torch.manual_seed(seed * 100_003 + epoch)
        self.generator.manual_seed(seed * 100_003 + epoch)
        order = DataOrder(seed, epoch, 0).permutation(len(self.windows))
        self.model.train()
        losses: list[float] = []
        started = time.perf_counter()
        bar = progress_bar(
            self.steps_per_epoch, f"epoch {epoch}", "step", enabled=self.progress, leave=False
        )
        for i in range(self.steps_per_epoch):
            batch = left_pad([self.windows[j] for j in order[i * bs : (i + 1) * bs]])
            loss = self._train_batch(batch)
            self.step += 1
            losses.append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        bar.close()
        return losses, time.perf_counter() - started

    def _train_batch(self, batch: torch.Tensor) -> float:
        """One optimiser step on a batch of windows; returns its loss."""
        loss_cfg = self.config.loss
        inputs, targets = self.model.training_pairs(batch, self.generator)
        loss = next_item_loss(
            self.model,
            inputs,
            targets,
            loss_cfg.kind,
            loss_cfg.num_negatives,
            loss_cfg.in_batch_negatives,
            loss_cfg.max_in_batch_negatives,
            self.generator,
        )
        self.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)  # = loss.backward(), which torch leaves untyped
        clip_gradients(self.model, self.config.optim)
        self.optimizer.step()
        return loss.item()

    def _end_epoch(self, epoch: int, losses: list[float], seconds: float) -> None:
        """Validate (a new best is saved as best.pt), log the epoch, write last.pt."""
        val = evaluate(self.model, self.data.val, self.config.eval_batch_size)
        improved = val["ndcg@10"] > self.best["val/ndcg@10"]
        if improved:
            self.best = {
                "epoch": epoch,
                "step": self.step,
                **{f"val/{k}": v for k, v in val.items()},
            }
            self.bad_evals = 0
            extra = {"epoch": epoch, "step": self.step, "val": val}
            save_retriever(self.model, self.best_path, extra=extra)
        else:
            self.bad_evals += 1
        sequences = min(len(self.windows), self.steps_per_epoch * self.config.optim.batch_size)
        self.run.log(
            self.step,
            epoch=epoch,
            train_loss=float(np.mean(losses)) if losses else None,
            train_seconds=round(seconds, 2),
            sequences_per_s=round(sequences / max(seconds, 1e-9), 1),
            **{f"val/{k}": v for k, v in val.items()},
            best=improved,
        )
        # the next batch is the first of the next epoch
        self.checkpoint.save(
            self.step,
            DataOrder(self.config.seed, epoch + 1, 0),
            self.identity,
            best=self.best,
            bad_evals=self.bad_evals,
        )


@dataclass
class PretrainInputs:
    """What a `rar pretrain` run trains with: the corpus, the linked sessions, a fresh model."""

    corpus: Corpus
    data: PretrainData
    model: Retriever


def load_pretrain_inputs(
    config: PretrainConfig, data_dir: Path | None = None, corpus: Corpus | None = None
) -> PretrainInputs:
    """Load the corpus (unless given) and the linked MovieLens sessions of `config`, then build
    its fresh retriever with every RNG seeded with `config.seed`."""
    if corpus is None:
        from rar.corpus import Corpus

        corpus_dir = Path(config.corpus)
        if not corpus_dir.is_dir():
            raise MissingPathError(
                f"corpus directory not found: {corpus_dir} (set corpus or --corpus)"
            )
        corpus = Corpus.load(corpus_dir)
    data = build_pretrain_data(
        movielens_dir(config.data.movielens, data_dir),
        corpus,
        config.seed,
        config.data.min_session_length,
        config.data.max_eval_sessions,
    )
    vectors = corpus.vectors()
    seed_everything(config.seed)
    return PretrainInputs(corpus, data, build_retriever(config.retriever, vectors))


def final_metrics(
    model: Retriever, data: PretrainData, config: PretrainConfig, best: dict[str, Any]
) -> dict[str, Any]:
    """metrics.json of a finished run: the best model (`model`, restored from best.pt; `best`
    its summary) on validation and test, the popularity baseline on test, the data's counts."""
    bs = config.eval_batch_size
    metrics: dict[str, Any] = {
        "retriever": config.retriever.name,
        "best_epoch": best["epoch"],
        "best_step": best.get("step"),  # checkpoints older than this field lack it
        "stopped_early": best["stopped_early"],
    }
    metrics.update({f"val/{k}": v for k, v in evaluate(model, data.val, bs).items()})
    metrics.update({f"test/{k}": v for k, v in evaluate(model, data.test, bs).items()})
    popularity = evaluate_popularity(data, data.test, config.retriever.max_len)
    metrics.update({f"popularity/test/{k}": v for k, v in popularity.items()})
    splits = ("train", "val", "test")
    metrics.update(
        n_train_sessions=len(data.train),
        n_val_sessions=len(data.val),
        n_test_sessions=len(data.test),
        items_unlinked=sum(data.stats[s]["items_unlinked"] for s in splits),
        sessions_dropped=sum(data.stats[s]["sessions_too_short"] for s in splits),
    )
    return metrics


def pretrain(
    config: PretrainConfig,
    data_dir: Path | None = None,
    corpus: Corpus | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run a full pretraining job; returns (and writes to metrics.json) val and test metrics."""
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _pretrain(config, data_dir, corpus, resume, overwrite, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _pretrain(
    config: PretrainConfig,
    data_dir: Path | None,
    corpus: Corpus | None,
    resume: bool,
    overwrite: bool,
    progress: bool,
) -> dict[str, Any]:
    """Inputs are loaded and checked before the run directory is made; a run that fails before
    its first epoch removes the directory it made."""
    t = config.tracking
    check_run_target(Path(t.runs_dir) / config.name, resume, overwrite)
    inputs = load_pretrain_inputs(config, data_dir, corpus)
    run = Run.create(
        config.name,
        config,
        t.runs_dir,
        resume=resume,
        overwrite=overwrite,
        wandb=t.wandb,
        wandb_project=t.wandb_project,
    )
    if not resume:  # a resumed run logged it when it started
        run.log(0, event="data", **{"data": inputs.data.stats})
    try:
        best = Pretrainer(inputs.model, inputs.data, config, run, progress).train(resume=resume)
    except BaseException:
        run.discard_if_unstarted()  # a failure before the first epoch leaves nothing behind
        raise
    model = load_retriever(run.checkpoints / "best.pt", inputs.corpus.vectors())
    metrics = final_metrics(model, inputs.data, config, best)
    run.finish(metrics)
    metrics["run_dir"] = str(run.path)
    return metrics
