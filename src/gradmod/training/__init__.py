"""The adaptive training pipeline: Trainer, optimizers, schedule, checkpoints and metrics.

Typical use::

    from gradmod.training import TrainConfig, Trainer

    config = TrainConfig.from_dict({"model": {"name": "cnn"}, "modulation": {"policy": "hypergradient"}})
    result = Trainer(config).fit()
    print(result.test_accuracy, result.steps_to_target)

Modules:

- ``config`` (``TrainConfig``) and ``recipes`` (per-model defaults);
- ``optimizers`` and ``muon`` (optimizers by name), ``schedule`` (warmup + cosine);
- ``trainer`` (``Trainer``), ``result`` (``TrainResult``), ``evaluation``;
- ``metrics`` (JSON Lines, CSV, TensorBoard), ``checkpoint`` (atomic files, RNG
  state), ``interrupt`` (SIGINT/SIGTERM);
- ``feedback`` and ``freezing``: the pipeline feedback controllers.
"""

from gradmod.training._fields import ConfigError
from gradmod.training.checkpoint import load_checkpoint, save_checkpoint
from gradmod.training.config import (
    AdversarialConfig,
    DataConfig,
    ModelConfig,
    ModulationConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
)
from gradmod.training.evaluation import Evaluation, evaluate
from gradmod.training.interrupt import TrainingInterrupted
from gradmod.training.muon import MuonWithAdamW
from gradmod.training.optimizers import OPTIMIZERS, MissingExtraError, build_optimizer
from gradmod.training.recipes import RECIPES, Recipe, resolve_recipe
from gradmod.training.result import TrainResult
from gradmod.training.schedule import WarmupCosineSchedule, warmup_cosine_factor
from gradmod.training.trainer import Trainer

__all__ = [
    "AdversarialConfig",
    "ConfigError",
    "DataConfig",
    "Evaluation",
    "MissingExtraError",
    "ModelConfig",
    "ModulationConfig",
    "MuonWithAdamW",
    "OPTIMIZERS",
    "OptimizerConfig",
    "RECIPES",
    "Recipe",
    "RunConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingInterrupted",
    "WarmupCosineSchedule",
    "build_optimizer",
    "evaluate",
    "load_checkpoint",
    "resolve_recipe",
    "save_checkpoint",
    "warmup_cosine_factor",
]
