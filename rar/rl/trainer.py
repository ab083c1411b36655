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

import copy
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rar.checkpoints import DataOrder, TrainingCheckpoint, seed_everything
from rar.data.linking import LinkedSample
from rar.errors import InputError, MissingPathError
from rar.optim import adamw, clip_gradients, cosine_with_warmup
from rar.pipeline import PipelineResult
from rar.rankers.concurrency import RankerUnavailable
from rar.rl.batches import Batch, make_batch
from rar.rl.candidate_order import cross_sample_permutation
from rar.rl.feedback import FailedSets, rank_sets, reward_diagnostics
from rar.rl.inputs import load_splits, with_dropout
from rar.rl.losses import nll_loss
from rar.rl.objectives import OBJECTIVES, RLStep
from rar.rl.policy import sample_ranked_sets, top1_kl
from rar.rl.ranker_totals import RankerTotals, step_counters, step_increase
from rar.rl.report import evaluate_samples, flatten, mean_rows, write_per_sample
from rar.rl.selection import ModelSelection
from rar.rl.train_config import TrainConfig
from rar.tracking import Run, check_run_target

if TYPE_CHECKING:
    from rar.corpus import Corpus

log = logging.getLogger("rar.rl")

# v2: the data order (epoch, position) is stored, by rar.checkpoints
CHECKPOINT_FORMAT = "rar-rl-trainer-v2"


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
        from rar.retrievers import load_pretrained_run

        vectors = torch.tensor(np.asarray(corpus.vectors(), dtype=np.float32))
        if config.pretrained_run is None:
            from rar.retrievers import build_retriever

            model = build_retriever(config.retriever, vectors)
        else:
            model = load_pretrained_run(config.pretrained_run, corpus)
        if config.retriever_dropout is not None:
            model = with_dropout(model, config.retriever_dropout, vectors)
        self.model = model
        self.reference = copy.deepcopy(
            model
        ).eval()  # the initial policy (KL logging, optional ref)
        for p in self.reference.parameters():
            p.requires_grad_(False)
        self.link_stats: dict[str, Any] = {}
        self.splits = splits if splits is not None else self._load_splits()
        self.train_samples = self.splits["train"]
        if not self.train_samples:
            raise InputError(f"no linked training samples for dataset '{config.data.dataset}'")
        self.val_samples = self.splits.get("val", [])
        if config.id_embedding:  # hybrid item table: ID embedding for the items seen in training
            from rar.retrievers import with_id_embedding

            seen = {
                self.row_of[c] for s in self.train_samples for c in s.history_ids + s.target_ids
            }
            self.model = with_id_embedding(self.model, sorted(seen), vectors)

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
        if ranker is None and (self.rl.method != "sft" or self.val_samples):
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
        scores = self.model.scores(batch.history)  # [B, N], history = -inf, dropout on
        nll = nll_loss(scores, batch.targets, batch.target_mask)
        out: dict[str, float] = {"loss_nll": float(nll.detach())}
        rl_loss = torch.zeros((), dtype=nll.dtype)
        t_sample = t_rank = 0.0
        with torch.no_grad():
            ref_scores = self.reference.scores(batch.history)
        out["kl_top1_to_initial"] = float(top1_kl(scores.detach(), ref_scores).mean())
        if rl.method != "sft":
            detached = scores.detach()
            g = rl.sets_per_sample
            t0 = time.perf_counter()
            sets = self.sample(detached, g)  # [B, g, k]
            t_sample += time.perf_counter() - t0
            rows = list(range(len(batch.samples)))
            t0 = time.perf_counter()
            rewards, ranks, failed = self.rank_sets(batch, rows, sets, detached)
            t_rank += time.perf_counter() - t0
            out.update(reward_diagnostics(rewards, sets, batch))
            perm = None
            if rl.shuffle_rewards:  # the control: rewards no longer belong to their sample
                perm = cross_sample_permutation(len(rows), [self.config.seed, self.step, 1])
                out["shuffle_rewards"] = 1.0
            step = RLStep(
                rl,
                batch,
                scores,
                ref_scores,
                sets,
                rewards,
                ranks,
                failed,
                perm,
                self.sample,
                self.rank_sets,
            )
            rl_loss, stats = OBJECTIVES[rl.method](step)
            t_sample += step.seconds["sample"]
            t_rank += step.seconds["rank"]
            out.update(stats)
            out[f"loss_{rl.method}"] = float(rl_loss.detach())
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

    def _checkpoint(self) -> TrainingCheckpoint:
        """The resumable state of this run (its `run` is replaced once the directory exists)."""
        return TrainingCheckpoint(
            self.run,
            CHECKPOINT_FORMAT,
            "rar train",
            {"model": self.model, "initial_model": self.reference},
            self.optimizer,
            self.scheduler,
            self.generator,
        )

    def _data_identity(self) -> dict[str, Any]:
        return {"train_ids": [s.sample.sample_id for s in self.train_samples]}

    def save_checkpoint(self) -> Path:
        """Write last.pt (atomically, prev.pt kept) with every RNG and the data order."""
        return self._checkpoint().save(
            self.step,
            DataOrder.at_step(self.config.seed, self.step, self.steps_per_epoch),
            data=self._data_identity()
            | {"steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps},
            ranker_counters=self.ranker_totals.totals(),
            **self.selection.state(),
        )

    def load_checkpoint(self) -> None:
        """Continue from last.pt: weights, optimiser, schedule, RNGs, best model, counters."""
        resumed = self._checkpoint().load(data=self._data_identity())
        state = resumed.state
        self.step = resumed.step
        self.ranker_totals.resume_from(state.get("ranker_counters"))
        self.selection.restore(state)

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
        """Evaluate the best checkpoint on validation (and test); write metrics.json."""
        from rar.retrievers import load_retriever

        best_path = self.run.checkpoints / "best.pt"
        if best_path.exists():
            best = load_retriever(best_path, self.corpus.vectors())
            self.model.load_state_dict(best.state_dict())
        final: dict[str, Any] = {
            "method": self.rl.method,
            "dataset": self.config.data.dataset,
            "steps": self.step,
            "budget_steps": self.total_steps,
            "best_step": self.selection.best["step"],
            "stopped_early": self.selection.stopped_early,
            "candidate_order": self.rl.candidate_order,
            "shuffle_rewards": self.rl.shuffle_rewards,
            "n_train": len(self.train_samples),
            "eval_protocol": self.config.eval_protocol,
            "n_val": len(self.val_samples),
            "link_stats": self.link_stats,
        }
        if self.val_samples:
            # the best checkpoint's validation figures were measured when it was selected
            best_val = self.selection.best.get("metrics") or self.evaluate(self.val_samples).metrics
            final.update({f"val/{k}": v for k, v in best_val.items()})
        test = self.splits.get("test") or []
        if test:
            result = self.evaluate(test, "test")
            final.update({f"test/{k}": v for k, v in result.metrics.items()})
            final["n_test"] = len(test)
            write_per_sample(result, self.run.path)
        if self.ranker is not None:
            final["ranker"] = self.ranker_totals.report()  # this run's, across resumes
            events = [r for r in self.run.history() if r.get("event") == "ranker_unavailable"]
            final["ranker_interruptions"] = len(events)
            final["ranker_interrupted_failures"] = sum(
                r.get("ranker_failures", 0) + r.get("ranker_outage_retries", 0) for r in events
            )
        self.run.finish(flatten(final))
        return final


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
