"""Online RL post-training of the retriever from a frozen ranker's feedback (paper Algorithm 1).

Per step, for a batch of conversation samples: score the whole corpus (history masked),
sample candidate sets from the Plackett-Luce policy, have the ranker rank every set
(one concurrent batch, through its cache), reward = NDCG of the target(s) in the ranker's
output, loss = NLL + RL loss (dpo | simpo | grpo; sft = NLL only), AdamW step with a cosine
schedule. Validation runs the deterministic pipeline (top-k -> ranker) and keeps the best
checkpoint. Resumable: model, optimiser, scheduler, every RNG and the data order are saved
atomically, so a killed run continues exactly where its last checkpoint left off.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rar.checkpoints import DataOrder, seed_everything
from rar.data.linking import LinkedSample
from rar.errors import InputError, MissingPathError
from rar.optim import adamw, clip_gradients, cosine_with_warmup
from rar.pipeline import PipelineResult
from rar.rankers.concurrency import RankerUnavailable
from rar.rl.batches import Batch, make_batch
from rar.rl.feedback import FailedSets, rank_sets
from rar.rl.inputs import (
    frozen_copy,
    load_policy,
    load_splits,
    with_seen_ids,
    with_training_prior,
)
from rar.rl.losses import nll_loss
from rar.rl.objectives import rl_term
from rar.rl.policy import sample_ranked_sets, top1_kl
from rar.rl.ranker_totals import RankerTotals, step_counters, step_increase
from rar.rl.report import evaluate_samples, finish, mean_rows
from rar.rl.rl_checkpoint import load_checkpoint, save_checkpoint
from rar.rl.selection import ModelSelection
from rar.rl.train_config import TrainConfig
from rar.tracking import Run, check_run_target

if TYPE_CHECKING:
    from rar.corpus import Corpus

log = logging.getLogger("rar.rl")


class RLTrainer:
    """Runs one `rar train` job. Construct, then call :meth:`train` (returns the final metrics)."""

    def __init__(
        self,
        config: TrainConfig,
        run: Run,
        corpus: Corpus | None = None,
        ranker: Any = None,
        splits: dict[str, list[LinkedSample]] | None = None,
        progress: bool = True,
    ):
        self.config = config
        self.run = run
        self.progress = progress
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        if corpus is None:
            from rar.corpus import Corpus

            corpus = Corpus.load(config.corpus)
        self.corpus = corpus
        self.corpus_ids: list[str] = list(corpus.ids)
        self.row_of = {cid: i for i, cid in enumerate(self.corpus_ids)}
        vectors = torch.tensor(np.asarray(corpus.vectors(), dtype=np.float32))
        self.model = load_policy(config, corpus, vectors)
        self.reference = frozen_copy(self.model)  # the initial policy (KL logging, optional ref)
        self.link_stats: dict[str, Any] = {}
        self.splits = splits if splits is not None else self._load_splits()
        self.train_samples = self.splits["train"]
        if not self.train_samples:
            raise InputError(f"no linked training samples for dataset '{config.data.dataset}'")
        self.val_samples = self.splits.get("val", [])
        if config.id_embedding:  # hybrid item table: ID embedding for the items seen in training
            self.model = with_seen_ids(self.model, self.train_samples, self.row_of, vectors)
        if config.cooc_prior:  # fitted on the training dialogues only
            self.model = with_training_prior(self.model, self.train_samples, self.row_of, vectors)
        if self.model.turn_encoder is not None:  # every turn embedded once, up front
            texts = (s.sample.context for split in self.splits.values() for s in split)
            self.model.turn_encoder.warm_contexts(texts, progress=progress)

        self.rl = config.rl
        if self.rl.k > len(self.corpus_ids):
            raise InputError(f"rl.k={self.rl.k} exceeds the corpus size {len(self.corpus_ids)}")

        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = adamw(params, config.optim)
        self.steps_per_epoch = math.ceil(len(self.train_samples) / config.optim.batch_size)
        self.total_steps = max(1, int(round(config.epochs * self.steps_per_epoch)))
        if config.max_steps is not None:  # a cap on the epoch budget
            self.total_steps = min(self.total_steps, config.max_steps)
        o = config.optim
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: cosine_with_warmup(s, o.warmup_steps, self.total_steps, o.min_lr_ratio),
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        if ranker is None and (self.rl.has_rl_term or self.val_samples):
            from rar.rankers import build_ranker

            ranker = build_ranker(config.ranker, corpus)
        self.ranker = ranker
        self.ranker_totals = RankerTotals(ranker)  # carried across resumes in the checkpoint
        self._failed = FailedSets()  # this step's ranked / failed sets
        self._step_counters: dict[str, float] = {}  # ranker counters when the step began
        self.step = 0
        self.selection = ModelSelection(config.select_metric, config.patience)

    # ---- data ---------------------------------------------------------------------------
    def _load_splits(self) -> dict[str, list[LinkedSample]]:
        splits, self.link_stats = load_splits(self.config, self.corpus)
        return splits

    def batch_for_step(self, step: int) -> Batch:
        """The batch of a step: its epoch's seeded permutation, so resuming at any step
        reproduces the data order exactly."""
        at = DataOrder.at_step(self.config.seed, step, self.steps_per_epoch)
        idx = at.batch(len(self.train_samples), self.config.optim.batch_size)
        return make_batch(
            [self.train_samples[i] for i in idx], self.row_of, self.model.config.max_len
        )

    # ---- ranker -------------------------------------------------------------------------
    def rank_sets(
        self, batch: Batch, rows: Sequence[int], sets: torch.Tensor, scores: torch.Tensor
    ) -> tuple[np.ndarray, list[list[int | None]], np.ndarray]:
        """The ranker's verdicts on sets [len(rows), g, k] (:func:`rar.rl.feedback.rank_sets`),
        counted in this step's :class:`FailedSets`."""
        return rank_sets(
            self.ranker, self.corpus_ids, self.rl, batch, rows, sets, scores, self._failed
        )

    # ---- one step -----------------------------------------------------------------------
    def sample(self, scores: torch.Tensor, g: int) -> torch.Tensor:
        return sample_ranked_sets(
            scores,
            self.rl.k,
            g,
            self.rl.temperature,
            self.generator,
            method=self.rl.sampler,
            head_size=self.rl.head_size,
        )

    def train_step(self, batch: Batch) -> dict[str, float]:
        rl, t_start = self.rl, time.perf_counter()
        counters_before = self._step_counters = step_counters(self.ranker)
        self._failed = FailedSets()
        self.model.train()
        scores = self.model.scores(batch.inputs)  # [B, N], history = -inf, dropout on
        nll = nll_loss(scores, batch.targets, batch.target_mask)
        out: dict[str, float] = {"loss_nll": float(nll.detach())}
        rl_loss = torch.zeros((), dtype=nll.dtype)
        t_sample = t_rank = 0.0
        with torch.no_grad():
            ref_scores = self.reference.scores(batch.inputs)
        out["kl_top1_to_initial"] = float(top1_kl(scores.detach(), ref_scores).mean())
        if rl.has_rl_term:
            shuffle_seed = [self.config.seed, self.step, 1]
            rl_loss, rl_stats, seconds = rl_term(
                rl, batch, scores, ref_scores, self.sample, self.rank_sets, shuffle_seed
            )
            t_sample, t_rank = seconds["sample"], seconds["rank"]
            out.update(rl_stats)
            self._failed.check(out, self.rl.max_failed_share, self.step + 1)
        t0 = time.perf_counter()
        loss = rl.nll_weight * nll + rl.rl_weight * rl_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = clip_gradients(self.model, self.config.optim)
        if norm is not None:
            out["grad_norm"] = norm
        self.optimizer.step()
        self.scheduler.step()
        t_update = time.perf_counter() - t0
        total = time.perf_counter() - t_start
        out.update(
            loss=float(loss.detach()),
            lr=self.scheduler.get_last_lr()[0],
            time_step=total,
            time_sample=t_sample,
            time_rank=t_rank,
            time_update=t_update,
            time_forward_other=total - t_sample - t_rank - t_update,
        )
        out.update(step_increase(counters_before, step_counters(self.ranker)))
        return out

    # ---- validation and checkpoints -----------------------------------------------------
    def evaluate(
        self, samples: Sequence[LinkedSample], split: str = "validation"
    ) -> PipelineResult:
        """Pipeline metrics of the current policy (see :func:`rar.rl.report.evaluate_samples`)."""
        what = f"{split} at step {self.step}"
        return evaluate_samples(
            samples, self.corpus, self.model, self.ranker, self.rl.k, self.config.eval_ks, what
        )

    def validate(self) -> dict[str, float]:
        """Validate through the pipeline; a new best is saved as best.pt."""
        result = self.evaluate(self.val_samples)
        if self.selection.update(result.metrics, self.step):
            from rar.retrievers import save_retriever

            metric = self.selection.metric
            save_retriever(
                self.model,
                self.run.checkpoints / "best.pt",
                extra={"step": self.step, metric: result.metrics[metric]},
            )
        return {f"val/{k}": v for k, v in result.metrics.items()} | self.selection.row()

    @property
    def last_checkpoint(self) -> Path:
        return self.run.last_checkpoint

    def save_checkpoint(self) -> Path:
        """Write last.pt (atomically, prev.pt kept): :func:`rar.rl.rl_checkpoint.save_checkpoint`."""
        return save_checkpoint(self)

    def load_checkpoint(self) -> None:
        """Continue from last.pt: weights, optimiser, schedule, RNGs, best model, counters."""
        load_checkpoint(self)

    # ---- the loop -----------------------------------------------------------------------
    def train(self, resume: bool = False) -> dict[str, Any]:
        """Train to `total_steps`, or until `patience` validations bring no improvement
        (continuing from last.pt when resuming); returns final metrics of the best model."""
        cfg = self.config
        if resume:
            if not self.last_checkpoint.is_file():
                raise MissingPathError(f"cannot resume: {self.last_checkpoint} does not exist")
            self.load_checkpoint()
            self.run.truncate_history(self.step)
            log.info("resumed %s at step %d", self.run.path, self.step)
        elif self.val_samples and cfg.validate_at_start:
            self.run.log(0, **self.validate())
        window: list[dict[str, float]] = []
        bar = None
        if self.progress:
            from rar.progress import progress_bar

            bar = progress_bar(
                self.total_steps, f"train {cfg.rl.method}", "step", initial=self.step
            )
        try:
            while self.step < self.total_steps and not self.selection.stopped_early:
                try:
                    metrics = self.train_step(self.batch_for_step(self.step))
                except RankerUnavailable as exc:
                    self._log_interrupted_step(exc)
                    raise
                self.step += 1
                window.append(metrics)
                row: dict[str, float] = {}
                if self.step % cfg.tracking.log_every == 0 or self.step == self.total_steps:
                    row.update(mean_rows(window))
                    row["epoch"] = self.step / self.steps_per_epoch
                    window = []
                if self.val_samples and (
                    self.step % cfg.val_every == 0 or self.step == self.total_steps
                ):
                    row.update(self.validate())
                if row:
                    self.run.log(self.step, **row)
                if self.selection.stopped_early:
                    log.info(
                        "early stop at step %d: %d validations without a better %s (best: step %s)",
                        self.step,
                        self.selection.bad_evals,
                        cfg.select_metric,
                        self.selection.best["step"],
                    )
                if (
                    self.step % cfg.checkpoint_every == 0
                    or self.step == self.total_steps
                    or self.selection.stopped_early
                ):
                    self.save_checkpoint()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{metrics['loss']:.3f}", reward=f"{metrics.get('reward_mean', 0):.3f}"
                    )
        finally:
            if bar is not None:
                bar.close()
        return self.finish()

    def _log_interrupted_step(self, exc: Exception) -> None:
        """A step the ranker's server stopped (the breaker tripped): its calls, retries and
        failures go to metrics.jsonl as an `event` row, which a resume keeps (the step itself is
        logged again, once, when it completes)."""
        row: dict[str, Any] = {"event": "ranker_unavailable", "error": str(exc)}
        row.update(step_increase(self._step_counters, step_counters(self.ranker)))
        self.run.log(self.step + 1, **row)

    def finish(self) -> dict[str, Any]:
        """Evaluate the best checkpoint on validation (and test); write metrics.json
        (:func:`rar.rl.report.finish`)."""
        return finish(self)


def train(
    config: TrainConfig,
    resume: bool = False,
    overwrite: bool = False,
    corpus: Corpus | None = None,
    ranker: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Create (or reopen with `resume`) the run directory and train; returns the final metrics
    plus `run_dir`. Inputs are loaded and checked before the directory is made, and a run that
    fails before recording any progress removes the directory it made."""
    t = config.tracking
    path = Path(t.runs_dir) / config.name
    check_run_target(path, resume, overwrite)
    # loads corpus, pretrained run, data and ranker (any of which may fail) and writes nothing
    trainer = RLTrainer(config, Run(path, config), corpus=corpus, ranker=ranker, progress=progress)
    try:
        run = trainer.run = Run.create(
            config.name,
            config,
            t.runs_dir,
            resume=resume,
            overwrite=overwrite,
            wandb=t.wandb,
            wandb_project=t.wandb_project,
        )
        try:
            final = trainer.train(resume=resume)
        except BaseException:
            run.discard_if_unstarted()
            raise
    finally:
        if trainer.ranker is not None and ranker is None:
            trainer.ranker.close()
    final["run_dir"] = str(run.path)
    return final
