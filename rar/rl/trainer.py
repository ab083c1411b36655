"""Online RL post-training of the retriever from a frozen ranker's feedback (paper Algorithm 1).

Per step, for a batch of conversation samples: score the whole corpus (history masked),
sample candidate sets from the Plackett-Luce policy, have the ranker rank every set
(one concurrent batch, through its cache), reward = NDCG of the target(s) in the ranker's
output, loss = NLL + RL loss (dpo | simpo | grpo; sft = NLL only), AdamW step with a cosine
schedule. Validation runs the deterministic pipeline (top-k -> ranker) and keeps the best
checkpoint. Resumable: the trainer's whole :class:`TrainerState` (model, optimiser, scheduler,
every RNG, model selection, ranker counters) and the data order are saved atomically, so a
killed run continues exactly where its last checkpoint left off.

The trainer is handed its policy, initial policy, data, corpus, ranker and run (as TRL's
trainers are); :meth:`RLTrainer.from_config` and :func:`train` load them from a config
(:func:`rar.rl.inputs.load_inputs`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rar.checkpoints import DataOrder
from rar.data.linking import LinkedSample
from rar.errors import MissingPathError
from rar.optim import clip_gradients
from rar.pipeline import PipelineResult, System
from rar.progress import progress_bar
from rar.rankers.concurrency import RankerUnavailable
from rar.retrievers.fusion import FusionFit, fit_linked, is_fused, write_fusion_file
from rar.rl.batches import Batch, make_batch
from rar.rl.feedback import FailedSets, Verdicts, rank_sets
from rar.rl.inputs import LinkedSplits, TrainerInputs, check_inputs, frozen_copy, load_inputs
from rar.rl.losses import nll_loss
from rar.rl.objectives import rl_term
from rar.rl.policy import sample_ranked_sets, top1_kl
from rar.rl.ranker_totals import step_counters, step_increase
from rar.rl.report import (
    evaluate_samples,
    flatten,
    mean_rows,
    ranker_block,
    run_summary,
    write_per_sample,
)
from rar.rl.state import TrainerState
from rar.rl.train_config import TrainConfig
from rar.tracking import Run, check_run_target

if TYPE_CHECKING:
    from rar.corpus import Corpus
    from rar.rankers.base import Ranker
    from rar.retrievers import Retriever

log = logging.getLogger("rar.rl")


class RLTrainer:
    """Runs one `rar train` job. Construct (or :meth:`from_config`), then call :meth:`train`
    (returns the final metrics)."""

    def __init__(
        self,
        policy: Retriever,
        reference: Retriever | None = None,
        *,
        config: TrainConfig,
        data: LinkedSplits,
        corpus: Corpus,
        ranker: Ranker | None,
        run: Run,
        progress: bool = True,
    ):
        """`policy` is trained as it is (fitted to the training split already, see
        :func:`rar.rl.inputs.load_inputs`); `reference` is the initial policy (KL logging and
        `rl.use_reference`), a frozen copy of `policy` when None. `ranker` may be None only for
        a run that asks it nothing (SFT without validation rows)."""
        check_inputs(config, data, len(corpus.ids))
        if ranker is None and (config.rl.has_rl_term or data.val):
            raise ValueError("a run with an RL term or validation rows needs a ranker")
        self.config, self.rl, self.run, self.progress = config, config.rl, run, progress
        self.data, self.corpus, self.ranker = data, corpus, ranker
        self.corpus_ids: list[str] = list(corpus.ids)
        self.row_of = {cid: i for i, cid in enumerate(self.corpus_ids)}
        self.steps_per_epoch, self.total_steps = config.step_budget(len(data.train))
        if reference is None:
            reference = frozen_copy(policy)
        self.state = TrainerState.start(policy, reference, config, self.total_steps, ranker)
        self._failed = FailedSets()  # this step's ranked / failed sets
        self._step_counters: dict[str, float] = {}  # ranker counters when the step began

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        run: Run,
        *,
        corpus: Corpus | None = None,
        ranker: Ranker | None = None,
        data: LinkedSplits | None = None,
        progress: bool = True,
    ) -> RLTrainer:
        """A trainer on `run` for `config`, its inputs loaded (a `corpus`, `ranker` or `data`
        given is used as it is; see :func:`rar.rl.inputs.load_inputs`). A ranker built here is
        the caller's to close (`trainer.ranker.close()`)."""
        inputs = load_inputs(config, corpus, ranker, data, progress)
        return cls.of_inputs(inputs, config, run, progress)

    @classmethod
    def of_inputs(
        cls, inputs: TrainerInputs, config: TrainConfig, run: Run, progress: bool = True
    ) -> RLTrainer:
        return cls(
            inputs.policy,
            inputs.reference,
            config=config,
            data=inputs.data,
            corpus=inputs.corpus,
            ranker=inputs.ranker,
            run=run,
            progress=progress,
        )

    @property
    def model(self) -> Retriever:
        """The policy being trained."""
        return self.state.policy

    # ---- data ---------------------------------------------------------------------------
    def batch_for_step(self, step: int) -> Batch:
        """The batch of a step: its epoch's seeded permutation, so resuming at any step
        reproduces the data order exactly."""
        at = DataOrder.at_step(self.config.seed, step, self.steps_per_epoch)
        idx = at.batch(len(self.data.train), self.config.optim.batch_size)
        return make_batch([self.data.train[i] for i in idx], self.row_of, self.model.config.max_len)

    # ---- ranker -------------------------------------------------------------------------
    def rank_sets(
        self, batch: Batch, rows: Sequence[int], sets: torch.Tensor, scores: torch.Tensor
    ) -> Verdicts:
        """The ranker's verdicts on sets [len(rows), g, k] (:func:`rar.rl.feedback.rank_sets`),
        counted in this step's :class:`FailedSets`."""
        assert self.ranker is not None  # a run with an RL term has one (checked when built)
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
            self.state.generator,
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
            ref_scores = self.state.reference.scores(batch.inputs)
        out["kl_top1_to_initial"] = float(top1_kl(scores.detach(), ref_scores).mean())
        if rl.has_rl_term:
            shuffle_seed = [self.config.seed, self.state.step, 1]
            rl_loss, rl_stats, seconds = rl_term(
                rl, batch, scores, ref_scores, self.sample, self.rank_sets, shuffle_seed
            )
            t_sample, t_rank = seconds["sample"], seconds["rank"]
            out.update(rl_stats)
            self._failed.check(out, self.rl.max_failed_share, self.state.step + 1)
        t0 = time.perf_counter()
        loss = rl.nll_weight * nll + rl.rl_weight * rl_loss
        self._update(loss, out)
        t_update = time.perf_counter() - t0
        total = time.perf_counter() - t_start
        out.update(
            loss=float(loss.detach()),
            lr=float(self.state.scheduler.get_last_lr()[0]),
            time_step=total,
            time_sample=t_sample,
            time_rank=t_rank,
            time_update=t_update,
            time_forward_other=total - t_sample - t_rank - t_update,
        )
        out.update(step_increase(counters_before, step_counters(self.ranker)))
        return out

    def _update(self, loss: torch.Tensor, out: dict[str, float]) -> None:
        """One optimiser and schedule step on `loss` (the gradient norm goes to `out`)."""
        self.state.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)  # = loss.backward(), which torch leaves untyped
        norm = clip_gradients(self.model, self.config.optim)
        if norm is not None:
            out["grad_norm"] = norm
        self.state.optimizer.step()
        self.state.scheduler.step()

    # ---- validation and checkpoints -----------------------------------------------------
    def evaluate(
        self, samples: Sequence[LinkedSample], split: str = "validation"
    ) -> PipelineResult:
        """Pipeline metrics of the current policy (see :func:`rar.rl.report.evaluate_samples`)."""
        what = f"{split} at step {self.state.step}"
        system = System(self.config.name, self.model, self.ranker)
        return evaluate_samples(samples, self.corpus, system, self.rl.k, self.config.eval_ks, what)

    def validate(self) -> dict[str, float]:
        """Validate through the pipeline; a new best is saved as best.pt."""
        result = self.evaluate(self.data.val)
        selection, step = self.state.selection, self.state.step
        if selection.update(result.metrics, step):
            from rar.retrievers import save_retriever

            metric = selection.metric
            save_retriever(
                self.model,
                self.run.checkpoints / "best.pt",
                extra={"step": step, metric: result.metrics[metric]},
            )
        return {f"val/{k}": v for k, v in result.metrics.items()} | selection.row()

    def _data_identity(self) -> dict[str, Any]:
        """What a resume checks: the training rows are the checkpoint's."""
        return {"train_ids": [s.sample.sample_id for s in self.data.train]}

    def save_checkpoint(self) -> Path:
        """Write last.pt (atomically, prev.pt kept): the :class:`TrainerState`, the data order
        and the training data's identity and step budget."""
        order = DataOrder.at_step(self.config.seed, self.state.step, self.steps_per_epoch)
        budget = {"steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps}
        return self.state.save(self.run, order, self._data_identity() | budget)

    def load_checkpoint(self) -> None:
        """Continue from last.pt: the whole :class:`TrainerState` (weights, optimiser,
        schedule, RNGs, step, best model, counters)."""
        self.state.load(self.run, self._data_identity())

    # ---- the loop -----------------------------------------------------------------------
    def train(self, resume: bool = False) -> dict[str, Any]:
        """Train to `total_steps`, or until `patience` validations bring no improvement
        (continuing from last.pt when resuming); returns final metrics of the best model."""
        self._begin(resume)
        window: list[dict[str, float]] = []  # the step rows since the last log line
        title, step = f"train {self.config.rl.method}", self.state.step
        with progress_bar(
            self.total_steps, title, "step", enabled=self.progress, initial=step
        ) as bar:
            while self.state.step < self.total_steps and not self.state.selection.stopped_early:
                metrics = self._step()
                self._after_step(metrics, window)
                bar.update(1)
                bar.set_postfix(
                    loss=f"{metrics['loss']:.3f}", reward=f"{metrics.get('reward_mean', 0):.3f}"
                )
        return self.finish()

    def _begin(self, resume: bool) -> None:
        """Resume from last.pt (its later history dropped), or validate the initial policy."""
        if resume:
            if not self.run.last_checkpoint.is_file():
                raise MissingPathError(f"cannot resume: {self.run.last_checkpoint} does not exist")
            self.load_checkpoint()
            self.run.truncate_history(self.state.step)
            log.info("resumed %s at step %d", self.run.path, self.state.step)
        elif self.data.val and self.config.validate_at_start:
            self.run.log(0, **self.validate())

    def _step(self) -> dict[str, float]:
        """Train on the next batch; a step the ranker's server stopped is logged, then raised."""
        try:
            metrics = self.train_step(self.batch_for_step(self.state.step))
        except RankerUnavailable as exc:
            self._log_interrupted_step(exc)
            raise
        self.state.step += 1
        return metrics

    def _due(self, every: int) -> bool:
        """Whether the step just taken is one of every `every` (the last step always is)."""
        return self.state.step % every == 0 or self.state.step == self.total_steps

    def _after_step(self, metrics: dict[str, float], window: list[dict[str, float]]) -> None:
        """Log the step means when due (`window` holds the rows since the last log line),
        validate, report an early stop, and checkpoint."""
        cfg, step, selection = self.config, self.state.step, self.state.selection
        window.append(metrics)
        row: dict[str, float] = {}
        if self._due(cfg.tracking.log_every):
            row.update(mean_rows(window))
            row["epoch"] = step / self.steps_per_epoch
            window.clear()
        if self.data.val and self._due(cfg.val_every):
            row.update(self.validate())
        if row:
            self.run.log(step, **row)
        if selection.stopped_early:
            log.info(
                "early stop at step %d: %d validations without a better %s (best: step %s)",
                step,
                selection.bad_evals,
                cfg.select_metric,
                selection.best["step"],
            )
        if self._due(cfg.checkpoint_every) or selection.stopped_early:
            self.save_checkpoint()

    def _log_interrupted_step(self, exc: Exception) -> None:
        """A step the ranker's server stopped (the breaker tripped): its calls, retries and
        failures go to metrics.jsonl as an `event` row, which a resume keeps (the step itself is
        logged again, once, when it completes)."""
        row: dict[str, Any] = {"event": "ranker_unavailable", "error": str(exc)}
        row.update(step_increase(self._step_counters, step_counters(self.ranker)))
        self.run.log(self.state.step + 1, **row)

    # ---- the end ------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Restore the best checkpoint, evaluate it on validation (and test); write
        metrics.json (flat) and return the final metrics."""
        self._restore_best()
        fusion = self._fit_fusion()
        final = run_summary(self.config, self.rl, self.data, self.state, self.total_steps)
        if self.data.val:
            # the best checkpoint's validation figures were measured when it was selected
            best_val = self.state.selection.best.get("metrics") if fusion is None else None
            best_val = best_val or self.evaluate(self.data.val).metrics
            final.update({f"val/{k}": v for k, v in best_val.items()})
        if fusion is not None:
            final["fusion"] = {"weights": fusion.weights, "temperature": fusion.temperature}
            final["fusion"] |= {"val_ndcg10_before": fusion.val_ndcg10_before}
        if self.data.test:
            result = self.evaluate(self.data.test, "test")
            final.update({f"test/{k}": v for k, v in result.metrics.items()})
            final["n_test"] = len(self.data.test)
            write_per_sample(result, self.run.path)
        if self.ranker is not None:
            final.update(ranker_block(self.state.ranker_totals, self.run.history()))
        self.run.finish(flatten(final))
        return final

    def _fit_fusion(self) -> FusionFit | None:
        """After SFT of a fused policy: its part weights re-fitted on the validation split
        (rar/retrievers/fusion.py), written to fusion.json; the final figures are the fitted
        policy's."""
        fit = self.config.fit_fusion and self.rl.method == "sft" and bool(self.data.val)
        if not fit or not is_fused(self.model):
            return None
        result = fit_linked(self.model, self.data.val, self.corpus)
        write_fusion_file(self.run.path, result, self.config.data.dataset)
        log.info(
            "fusion weights fitted on validation: retriever N@10 %.4f -> %.4f (%s)",
            result.val_ndcg10_before,
            result.val_ndcg10_after,
            ", ".join(f"{k} {v:.3g}" for k, v in result.weights.items()),
        )
        return result

    def _restore_best(self) -> None:
        best_path = self.run.checkpoints / "best.pt"
        if best_path.exists():
            from rar.retrievers import load_retriever

            best = load_retriever(best_path, self.corpus.vectors())
            self.model.load_state_dict(best.state_dict())


def train(
    config: TrainConfig,
    resume: bool = False,
    overwrite: bool = False,
    corpus: Corpus | None = None,
    ranker: Ranker | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Create (or reopen with `resume`) the run directory and train; returns the final metrics
    plus `run_dir`. Inputs are loaded and checked before the directory is made, and a run that
    fails before recording any progress removes the directory it made. A ranker built here
    (none given) is closed at the end."""
    t = config.tracking
    check_run_target(Path(t.runs_dir) / config.name, resume, overwrite)
    # loads corpus, pretrained run, data and ranker (any of which may fail) and writes nothing
    inputs = load_inputs(config, corpus, ranker, progress=progress)
    try:
        run = Run.create(
            config.name,
            config,
            t.runs_dir,
            resume=resume,
            overwrite=overwrite,
            wandb=t.wandb,
            wandb_project=t.wandb_project,
        )
        try:
            final = RLTrainer.of_inputs(inputs, config, run, progress).train(resume=resume)
        except BaseException:
            run.discard_if_unstarted()
            raise
    finally:
        if inputs.ranker is not None and ranker is None:
            inputs.ranker.close()
    final["run_dir"] = str(run.path)
    return final
