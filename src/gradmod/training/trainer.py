"""The Trainer: one training run from a ``TrainConfig``, resumable bit for bit on CPU.

Each optimizer step is::

    images, labels = next batch            (BatchLoader: order and augmentation from (seed, epoch))
    clean-loss gradients -> modulator       (modulation.feedback_loss = "clean" only)
    images = attack(images)                 (adversarial training only)
    loss = cross_entropy(model(images), labels)
    zero_grad; loss.backward()
    optimizer.step()                        (wrapped by the modulator when LGM is on)
    scheduler.step()                        (warmup + cosine, by step)

and at each step boundary, in this order: training record, controllers'
``on_step_end``, validation (every ``run.eval_every`` steps, at each epoch end
and at the last step), periodic checkpoint, then the stop checks (signal, time
budget, target). A checkpoint is therefore always taken at a state the
uninterrupted run also passes through, which is what makes resuming exact.
With adversarial training, an epoch end also measures PGD accuracy on the
monitor batch; a run that overfitted catastrophically ends, after its last
step, with the weights of its most robust epoch (``adversarial.restore_best``).

``train_seconds`` counts training only: the clock stops during evaluation and
checkpoint writing, because the comparison harness measures time to target
on training time.

Under torchrun (``torchrun --nproc_per_node W -m gradmod train ...``) each of
the W ranks trains on its shard of every global batch through DDP. The ranks
sum their step losses and agree on every stop decision with a collective per
step, and only rank 0 evaluates (broadcasting the numbers) and writes files.
A model without BatchNorm, dropout or adversarial training therefore follows
the single-process run with the same global batch, up to the rounding of the
gradient all-reduce (see ``gradmod.distributed``).

NOTE: bit-exact resumption also needs the same torch thread count (and the
same torch build), because CPU reductions round differently across threads.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import gradmod
from gradmod.data import BatchLoader, FashionMNIST, Split
from gradmod.distributed import (
    TrainableDataParallel,
    agree_on_stop,
    broadcast_numbers,
    detect_torchrun,
    join_process_group,
    local_device,
    sum_step_statistics,
)
from gradmod.training import _components as components
from gradmod.training._fields import ConfigError
from gradmod.training.adversarial import BestRobustWeights, clean_feedback_gradients
from gradmod.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from gradmod.training.config import TrainConfig
from gradmod.training.evaluation import Evaluation, evaluate
from gradmod.training.interrupt import StopOnSignal, TrainingInterrupted
from gradmod.training.metrics import MetricLogger
from gradmod.training.recipes import resolve_recipe
from gradmod.training.result import TrainResult
from gradmod.training.schedule import WarmupCosineSchedule

__all__ = ["Trainer"]

logger = logging.getLogger(__name__)


class Trainer:
    """Train a model on Fashion-MNIST as ``config`` specifies, with metrics, checkpoints and LGM.

    Args:
        config: a ``TrainConfig`` or its dict form; recipe keys left unset are
            filled from the model's recipe (see ``self.config`` for the result).
        dataset: an already loaded ``FashionMNIST`` (``train``, ``val``, ``test``
            splits), so that many runs in one process load the files once; None
            loads it from ``config.data``.

    Attributes used by pipeline controllers: ``model``, ``optimizer``,
    ``modulator`` (None when modulation is off), ``config``, ``controllers``,
    ``step`` and ``log_event``.

    Under torchrun the Trainer joins the process group itself; the caller
    destroys it at the end with ``gradmod.distributed.leave_process_group()``.

    Raises:
        ConfigError: an invalid setting, before any training.
        gradmod.data.DataError: missing or invalid dataset files.
    """

    def __init__(self, config: TrainConfig | dict[str, Any], dataset: FashionMNIST | None = None) -> None:
        if isinstance(config, dict):
            config = TrainConfig.from_dict(config)
        elif isinstance(config, TrainConfig):
            config = copy.deepcopy(config)
            config.validate()
        else:
            raise TypeError(f"config must be a TrainConfig or a dict, got {type(config).__name__}")
        self.config = resolve_recipe(config)
        self.device = local_device(self.config.device, detect_torchrun())
        self.place = self._join_process_group()
        if self.config.threads is not None:
            torch.set_num_threads(self.config.threads)

        self.model = components.build_seeded_model(self.config, self.device)
        components.seed_training(self.config.seed)
        self.optimizer = components.build_optimizer_from_config(self.model, self.config)
        self.modulator = components.build_modulator(self.model, self.config, self.optimizer)
        self.adversarial = components.build_adversarial(self.config)
        self._data_parallel = TrainableDataParallel(self.model, self.device) if self.place.is_distributed else None
        components.check_tensorboard(self.config)

        self.dataset = dataset if dataset is not None else components.load_dataset(self.config)
        if self.dataset.val is None:
            raise ConfigError("the dataset has no validation split; load it with val_size >= 1")
        self.train_loader = self._build_train_loader()
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = self.config.epochs * self.steps_per_epoch
        if self.config.max_steps is not None:
            self.total_steps = min(self.total_steps, self.config.max_steps)
        self.scheduler = WarmupCosineSchedule(
            self.optimizer,
            warmup_steps=self.config.schedule.warmup_steps,
            total_steps=self.total_steps,
            min_lr_ratio=self.config.schedule.min_lr_ratio,
        )
        if self.config.schedule.warmup_steps >= self.total_steps:
            logger.warning(
                "schedule.warmup_steps = %d covers all of this run's %d steps, so the learning rate never "
                "reaches optimizer.lr; lower schedule.warmup_steps for short runs",
                self.config.schedule.warmup_steps,
                self.total_steps,
            )
        self.overfitting_monitor = components.build_overfitting_monitor(self.config, self.dataset)
        self.best_robust = BestRobustWeights()
        self.restored_epoch: int | None = None
        self._clean_feedback = self._wants_clean_feedback()

        self.metrics = MetricLogger()
        self.gains_history: list[dict[str, Any]] = []
        self.step = 0
        self.epoch = 0  # epoch of the next batch
        self.batch_index = 0  # index of the next batch within its epoch
        self.train_seconds = 0.0
        self.steps_to_target: int | None = None
        self.seconds_to_target: float | None = None
        self.last_validation: dict[str, Any] | None = None
        self.diverged = False
        self._batches = None
        self._running_since: float | None = None
        self._window = {"images": 0, "seconds": 0.0}
        self._step_lr = float("nan")  # learning rate of the step being logged (first group)
        self._folder_claimed = False
        self.controllers: list[Any] = components.build_pipeline_controllers(self.config, self)

    # ------------------------------------------------------------ construction
    def _wants_clean_feedback(self) -> bool:
        """Return whether each step measures the modulator's feedback on the clean loss (an extra pass)."""
        if self.config.modulation.feedback_loss != "clean":
            return False
        if self.adversarial is None or self.modulator is None:
            logger.info(
                "modulation.feedback_loss = 'clean' changes nothing here: it needs adversarial training "
                "and a modulation policy, and without them the training loss is the clean loss"
            )
            return False
        if self.place.is_distributed:
            raise ConfigError(
                "modulation.feedback_loss = 'clean' is not supported under torchrun yet; "
                "use 'adversarial' or train in one process"
            )
        return True

    def _join_process_group(self) -> Any:
        options = self.config.distributed
        try:
            return join_process_group(options.backend, options.timeout_seconds, self.device)
        except ValueError as error:
            raise ConfigError(f"distributed: {error}") from None

    def _build_train_loader(self) -> BatchLoader:
        data = self.config.data
        train = self.dataset.train
        if data.train_subset is not None and data.train_subset > len(train):
            raise ConfigError(
                f"data.train_subset = {data.train_subset} exceeds the {len(train)} training images; "
                "use a smaller subset or leave it unset"
            )
        available = data.train_subset or len(train)
        if available < data.batch_size:
            raise ConfigError(
                f"data.batch_size = {data.batch_size} is larger than the {available} training images, "
                "so an epoch would have no full batch; lower batch_size or raise train_subset"
            )
        world_size = self.place.world_size
        if data.batch_size % world_size != 0:
            raise ConfigError(
                f"data.batch_size = {data.batch_size} is the global batch and must be divisible by the "
                f"{world_size} processes (each takes batch_size / {world_size}); choose a multiple of {world_size}"
            )
        # drop_last: a last batch of one image would break batch norm in training mode.
        # Rank r's batch i contains positions r, r + W, ... of the global batch i, so the
        # ranks' batches together are exactly the single-process batch.
        return BatchLoader(
            train,
            data.batch_size // world_size,
            shuffle=True,
            seed=self.config.seed,
            augment=data.augment,
            drop_last=True,
            subset=data.train_subset,
            rank=self.place.rank,
            world_size=world_size,
        )

    @classmethod
    def resume(
        cls,
        path: str | Path,
        dataset: FashionMNIST | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> Trainer:
        """Rebuild a Trainer from a checkpoint (a file, or a run folder that contains ``checkpoint.pt``).

        ``overrides`` maps dotted config keys to new values, for settings that do
        not change the training itself (``run.quiet``, ``data.path``, ``device``).
        The run folder becomes the checkpoint's folder, even if it was moved.
        """
        path = Path(path)
        checkpoint_path = path / CHECKPOINT_NAME if path.is_dir() else path
        state = load_checkpoint(checkpoint_path)
        changes = {"run.out": str(checkpoint_path.parent), **(overrides or {})}
        config = TrainConfig.from_dict(state["config"]).replace(**changes)
        trainer = cls(config, dataset)
        trainer.load_state_dict(state)
        logger.info("resumed %s at step %d of %d", checkpoint_path, trainer.step, trainer.total_steps)
        return trainer

    # ---------------------------------------------------------------- public
    def log_event(self, kind: str, step: int, **values: Any) -> None:
        """Record a controller decision in ``events.jsonl`` and the result's events."""
        record = {"kind": str(kind), "step": int(step), **{key: _plain(value) for key, value in values.items()}}
        self.metrics.log_event(record)
        logger.debug("event %s at step %d: %s", kind, step, values)

    def fit(self, max_steps: int | None = None, time_budget: float | None = None) -> TrainResult:
        """Train to the end of the configured run, or until a stop condition, and evaluate.

        Args:
            max_steps: stop once ``self.step`` reaches this many optimizer steps in
                total. Unlike ``config.max_steps`` it does not shorten the
                schedule, so a later ``fit`` or resume continues the same run.
            time_budget: stop after this many training seconds in total.

        At the end: a checkpoint (with a run folder), a validation evaluation if the
        last step had none, the test evaluation, and ``result.json``.

        Raises:
            TrainingInterrupted: after SIGINT or SIGTERM, once the checkpoint is written.
        """
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
            raise ValueError(f"max_steps must be an int >= 0, got {max_steps!r}")
        if time_budget is not None and not time_budget > 0:
            raise ValueError(f"time_budget must be > 0 seconds, got {time_budget!r}")
        stop_step = self.total_steps if max_steps is None else min(self.total_steps, max_steps)
        folder = self._claim_run_folder()
        run = self.config.run
        metrics_folder = folder if self.place.is_main else None
        self.metrics.open(metrics_folder, csv_file=run.csv, tensorboard=run.tensorboard, step=self.step)
        logger.info(
            "training %s with %s for %d steps (%d per epoch), from step %d",
            self.config.model.name,
            self.config.optimizer.name,
            self.total_steps,
            self.steps_per_epoch,
            self.step,
        )
        try:
            stopped_early = self._train_until(stop_step, time_budget)
            result = self._finish(stopped_early or self.step < self.total_steps)
        finally:
            self._pause_clock()
            self.metrics.close()
        return result

    # -------------------------------------------------------------- training
    def _train_until(self, stop_step: int, time_budget: float | None) -> bool:
        """Run steps until ``stop_step``; return True when a stop condition ended it sooner."""
        self.model.train()
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=self.config.run.quiet or not self.place.is_main,
            unit="step",
            desc=self.config.model.name,
            dynamic_ncols=True,
        )
        stopped_early = False
        try:
            with StopOnSignal() as stop:
                self._start_clock()
                while self.step < stop_step and not self.diverged:
                    loss, correct, count = self._train_step()
                    self._end_step(loss, correct, count, bar)
                    signum, out_of_time = self._stop_requests(stop, time_budget)
                    if signum is not None:
                        self._pause_clock()
                        checkpoint = self._save_checkpoint()
                        raise TrainingInterrupted(signum, self.step, checkpoint)
                    if self.diverged:
                        stopped_early = True
                        break
                    if out_of_time:
                        logger.info("time budget of %.1f s used up at step %d", time_budget, self.step)
                        stopped_early = True
                        break
                    if self.config.run.stop_at_target and self.steps_to_target is not None:
                        stopped_early = True
                        break
                self._pause_clock()
                self._save_checkpoint()
        finally:
            bar.close()
        return stopped_early

    def _stop_requests(self, stop: StopOnSignal, time_budget: float | None) -> tuple[int | None, bool]:
        """Return (signal number or None, time budget used up), the same on every rank."""
        out_of_time = time_budget is not None and self._elapsed() >= time_budget
        if self.place.is_distributed:
            return agree_on_stop(stop.signum, out_of_time, self.device)
        return stop.signum, out_of_time

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._batches is None:
            self.train_loader.set_epoch(self.epoch)
            self._batches = self.train_loader.iter_from(self.batch_index)
        return next(self._batches)

    def _train_step(self) -> tuple[float, int, int]:
        """Run one optimizer step; return (loss, correct predictions, batch size)."""
        self._step_lr = float(self.optimizer.param_groups[0]["lr"])
        images, labels = self._next_batch()
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        if self._clean_feedback:
            self.modulator.set_feedback_gradients(clean_feedback_gradients(self.model, self.modulator, images, labels))
        if self.adversarial is not None:
            images = self.adversarial.perturb(self.model, images, labels)
        model = self.model if self._data_parallel is None else self._data_parallel.wrapper()
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        correct = (logits.detach().argmax(dim=1) == labels).sum()
        if self.place.is_distributed:
            return sum_step_statistics(loss.item(), int(correct.item()), len(labels), self.device)
        return loss.item(), int(correct.item()), len(labels)

    def _end_step(self, loss: float, correct: int, count: int, bar: tqdm) -> None:
        """Do everything that happens at a step boundary, in the documented order."""
        self.step += 1
        self.batch_index += 1
        epoch_ended = self.batch_index == self.steps_per_epoch
        if epoch_ended:
            self.epoch += 1
            self.batch_index = 0
            self._batches = None
        self._window["images"] += count

        run = self.config.run
        if self.step % run.log_every == 0 or self.step == self.total_steps:
            self._log_train_record(loss, correct / count)
        if not math.isfinite(loss):
            self._check_divergence(loss)
        for controller in self.controllers:
            if hasattr(controller, "on_step_end"):
                controller.on_step_end(self, self.step, loss)

        bar.update(1)
        if self.step % 10 == 0:
            bar.set_postfix(self._progress_fields(loss), refresh=False)
        periodic = run.eval_every is not None and self.step % run.eval_every == 0
        if periodic or epoch_ended or self.step == self.total_steps:
            self._validate(epoch_ended)
            bar.set_postfix(self._progress_fields(loss), refresh=False)
        if run.checkpoint_every is not None and self.step % run.checkpoint_every == 0:
            self._pause_clock()
            self._save_checkpoint()
            self._start_clock()

    def _log_train_record(self, loss: float, accuracy: float) -> None:
        elapsed = self._elapsed()
        window_seconds = elapsed - self._window["seconds"]
        record = {
            "kind": "train",
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "loss": loss,
            "accuracy": accuracy,
            "lr": self._step_lr,
            "images_per_second": self._window["images"] / window_seconds if window_seconds > 0 else None,
            "train_seconds": elapsed,
        }
        if self.modulator is not None and self.step % self.config.run.gains_every == 0:
            gains = self.modulator.gains()
            record.update({f"lgm/gain/{name}": gain for name, gain in gains.items()})
            record["lgm/skipped_steps"] = self.modulator.skipped_steps
            self.gains_history.append({"step": self.step, "gains": gains})
        self.metrics.log(record)
        self._window = {"images": 0, "seconds": elapsed}

    def _check_divergence(self, loss: float) -> None:
        """Stop when the loss is not finite and the weights are no longer finite either.

        A non-finite loss with finite weights (the modulator skipped the step) lets training go on.
        """
        finite = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        if not finite:
            self.diverged = True
            self.log_event("diverged", self.step, loss=loss)
            logger.warning("training diverged at step %d: loss %s and non-finite weights", self.step, loss)

    def _progress_fields(self, loss: float) -> dict[str, str]:
        fields = {"epoch": f"{self.step / self.steps_per_epoch:.2f}", "loss": f"{loss:.4f}"}
        if self.last_validation is not None:
            fields["val_acc"] = f"{self.last_validation['val_accuracy']:.4f}"
        return fields

    # ------------------------------------------------------------ evaluation
    def _validate(self, epoch_ended: bool) -> None:
        """Evaluate on the validation split, record it, check the target and notify controllers."""
        self._pause_clock()
        evaluation = self._evaluate(self.dataset.val)
        record = self._evaluation_record("eval", "val", evaluation)
        if epoch_ended and self.overfitting_monitor is not None:
            self._check_overfitting(record)
        self.metrics.log(record)
        self.last_validation = record

        target = self.config.target_accuracy
        if target is not None and self.steps_to_target is None and evaluation.accuracy >= target:
            self.steps_to_target = self.step
            self.seconds_to_target = self.train_seconds
            self.log_event(
                "target_reached", self.step, val_accuracy=evaluation.accuracy, train_seconds=self.train_seconds
            )
            logger.info(
                "validation accuracy %.4f reached the target %.4f at step %d after %.1f training seconds",
                evaluation.accuracy,
                target,
                self.step,
                self.train_seconds,
            )
        for controller in self.controllers:
            if hasattr(controller, "on_eval_end"):
                controller.on_eval_end(self, self.step, evaluation.accuracy)
        self._start_clock()

    def _evaluate(self, split: Split) -> Evaluation:
        """Evaluate on rank 0 and broadcast the numbers, so every rank records and decides alike."""
        if not self.place.is_distributed:
            return evaluate(self.model, split, self.config.data.eval_batch_size, self.device)
        numbers = None
        if self.place.is_main:
            evaluation = evaluate(self.model, split, self.config.data.eval_batch_size, self.device)
            numbers = [evaluation.loss, evaluation.accuracy, float(evaluation.count)]
        loss, accuracy, count = broadcast_numbers(numbers, 3, self.device)
        return Evaluation(loss=loss, accuracy=accuracy, count=round(count))

    def _check_overfitting(self, record: dict[str, Any]) -> None:
        result = self.overfitting_monitor.check(self.model, self.epoch)
        record["pgd_accuracy"] = result.accuracy
        folder = Path(self.config.run.out) if self.config.run.out is not None and self.place.is_main else None
        self.best_robust.offer(self.model, self.epoch, self.step, result.accuracy, folder, self.config.to_dict())
        if result.collapsed:
            self.log_event(
                "catastrophic_overfitting",
                self.step,
                epoch=result.epoch,
                pgd_accuracy=result.accuracy,
                best_accuracy=result.best_accuracy,
                best_epoch=result.best_epoch,
                reason=result.reason,
            )

    def _evaluation_record(self, kind: str, prefix: str, evaluation: Evaluation) -> dict[str, Any]:
        return {
            "kind": kind,
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            f"{prefix}_loss": evaluation.loss,
            f"{prefix}_accuracy": evaluation.accuracy,
            "train_seconds": self.train_seconds,
        }

    def _restore_best_robust(self) -> None:
        """After catastrophic overfitting, go back to the most robust epoch's weights (once)."""
        collapsed = any(event["kind"] == "catastrophic_overfitting" for event in self.metrics.events)
        keep = self.best_robust
        if not (collapsed and self.config.adversarial.restore_best) or self.restored_epoch is not None:
            return
        if keep.weights is None or keep.step == self.step:
            return
        keep.restore(self.model)
        self.restored_epoch = keep.epoch
        self.last_validation = None  # the restored weights are evaluated afresh
        self.log_event("restored_best_robust", self.step, epoch=keep.epoch, from_step=keep.step, pgd_accuracy=keep.pgd_accuracy)

    def _finish(self, stopped_early: bool) -> TrainResult:
        """Evaluate what the last step has not, measure the test accuracy once and build the result."""
        if self.step == self.total_steps:  # a run stopped sooner may go on: keep its weights
            self._restore_best_robust()
        if self.last_validation is None or self.last_validation["step"] != self.step:
            evaluation = self._evaluate(self.dataset.val)
            self.last_validation = self._evaluation_record("eval", "val", evaluation)
            self.metrics.log(self.last_validation)
        test = self._evaluate(self.dataset.test)
        self.metrics.log(self._evaluation_record("test", "test", test))
        result = TrainResult(
            config=self.config.to_dict(),
            steps=self.step,
            epochs=self.step / self.steps_per_epoch,
            train_seconds=self.train_seconds,
            final_val_loss=self.last_validation["val_loss"],
            final_val_accuracy=self.last_validation["val_accuracy"],
            test_loss=test.loss,
            test_accuracy=test.accuracy,
            target_accuracy=self.config.target_accuracy,
            steps_to_target=self.steps_to_target,
            seconds_to_target=self.seconds_to_target,
            history=list(self.metrics.history),
            gains_history=list(self.gains_history),
            events=list(self.metrics.events),
            diverged=self.diverged,
            stopped_early=stopped_early,
            restored_epoch=self.restored_epoch,
        )
        if self.config.run.out is not None and self.place.is_main:
            result.save(Path(self.config.run.out) / "result.json")
        logger.info(
            "finished at step %d: validation accuracy %.4f, test accuracy %.4f, %.1f training seconds",
            self.step,
            result.final_val_accuracy,
            result.test_accuracy,
            self.train_seconds,
        )
        return result

    # ------------------------------------------------------------------ clock
    def _start_clock(self) -> None:
        self._running_since = time.perf_counter()

    def _pause_clock(self) -> None:
        if self._running_since is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.train_seconds = self._elapsed()
        self._running_since = None

    def _elapsed(self) -> float:
        if self._running_since is None:
            return self.train_seconds
        return self.train_seconds + time.perf_counter() - self._running_since

    # ------------------------------------------------------------ checkpoints
    def _claim_run_folder(self) -> Path | None:
        """Create the run folder on the first ``fit`` and write ``config.json``."""
        run = self.config.run
        if run.out is None:
            return None
        folder = Path(run.out)
        if not self._folder_claimed:
            # Every rank checks, so that all of them raise together; only rank 0 writes.
            if (folder / CHECKPOINT_NAME).exists() and not run.overwrite:
                raise ConfigError(
                    f"run.out = {str(folder)!r} already contains a checkpoint; resume it "
                    f"(gradmod train --resume {folder}), choose another folder, or set run.overwrite = true"
                )
            self._folder_claimed = True
            if not self.place.is_main:
                return None
            folder.mkdir(parents=True, exist_ok=True)
            config_text = json.dumps(self.config.to_dict(), indent=1)
            (folder / "config.json").write_text(config_text + "\n", encoding="utf-8")
        return folder if self.place.is_main else None

    def _save_checkpoint(self) -> Path | None:
        if self.config.run.out is None:
            return None
        if not self.place.is_main:
            return Path(self.config.run.out) / CHECKPOINT_NAME
        return save_checkpoint(self.state_dict(), Path(self.config.run.out) / CHECKPOINT_NAME)

    def state_dict(self) -> dict[str, Any]:
        """Return the whole training state at the current step boundary."""
        return {
            "format": CHECKPOINT_FORMAT,
            "gradmod_version": gradmod.__version__,
            "config": self.config.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "train_seconds": self.train_seconds,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "modulator": None if self.modulator is None else self.modulator.state_dict(),
            "controllers": [{"type": type(c).__name__, "state": c.state_dict()} for c in self._stateful_controllers()],
            "overfitting_monitor": None if self.overfitting_monitor is None else self.overfitting_monitor.state_dict(),
            "best_robust": self.best_robust.state_dict(),
            "rng": capture_rng_state(),
            "history": self.metrics.history,
            "events": self.metrics.events,
            "gains_history": self.gains_history,
            "steps_to_target": self.steps_to_target,
            "seconds_to_target": self.seconds_to_target,
            "last_validation": self.last_validation,
            "diverged": self.diverged,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; keys missing from older checkpoints keep their fresh values."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if (state.get("modulator") is None) != (self.modulator is None):
            raise ValueError("the checkpoint and the config disagree on whether modulation is on")
        if self.modulator is not None:
            self.modulator.load_state_dict(state["modulator"])
        self._load_controllers(state.get("controllers", []))
        if self.overfitting_monitor is not None and state.get("overfitting_monitor") is not None:
            self.overfitting_monitor.load_state_dict(state["overfitting_monitor"])
        if state.get("best_robust") is not None:
            self.best_robust.load_state_dict(state["best_robust"])

        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_index = int(state["batch_index"])
        self._batches = None
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self._window = {"images": 0, "seconds": self.train_seconds}
        self.metrics.history = list(state.get("history", []))
        self.metrics.events = list(state.get("events", []))
        self.gains_history = list(state.get("gains_history", []))
        self.steps_to_target = state.get("steps_to_target")
        self.seconds_to_target = state.get("seconds_to_target")
        self.last_validation = state.get("last_validation")
        self.diverged = bool(state.get("diverged", False))
        self._folder_claimed = True
        restore_rng_state(state["rng"])

    def _stateful_controllers(self) -> list[Any]:
        """Return the controllers that have state to checkpoint; the others are rebuilt as they are."""
        return [c for c in self.controllers if hasattr(c, "state_dict") and hasattr(c, "load_state_dict")]

    def _load_controllers(self, saved: list[dict[str, Any]]) -> None:
        controllers = self._stateful_controllers()
        saved_types = [entry["type"] for entry in saved]
        current_types = [type(c).__name__ for c in controllers]
        if saved_types != current_types:
            raise ValueError(
                f"the checkpoint has controllers {saved_types} but the config builds {current_types}; "
                "resume with the checkpoint's own feedback and freezing settings"
            )
        for controller, entry in zip(controllers, saved):
            controller.load_state_dict(entry["state"])


def _plain(value: Any) -> Any:
    """Convert tensors and NumPy scalars in event values to Python numbers and lists."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "item") and callable(value.item) and type(value).__module__ == "numpy":
        return value.item()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
