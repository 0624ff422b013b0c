"""Build the Trainer's parts from a resolved ``TrainConfig``.

Each function turns the ValueError or TypeError of a component's constructor
into a ``ConfigError`` that names the config key, so every invalid setting is
reported before training starts.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from gradmod.data import FashionMNIST, load_fashion_mnist
from gradmod.models import build_model
from gradmod.modulation import LayerwiseGradientModulator, build_policy
from gradmod.training._fields import ConfigError
from gradmod.training.config import MODULATION_OFF, TrainConfig
from gradmod.training.feedback import build_controllers
from gradmod.training.optimizers import MissingExtraError, build_optimizer

__all__ = [
    "build_seeded_model",
    "seed_training",
    "build_optimizer_from_config",
    "build_modulator",
    "check_tensorboard",
    "load_dataset",
    "build_adversarial",
    "build_overfitting_monitor",
    "build_pipeline_controllers",
]

logger = logging.getLogger(__name__)


def derived_seed(seed: int, purpose: str) -> int:
    """Return a 63-bit seed for ``purpose``, unrelated to the seeds of other purposes."""
    digest = hashlib.blake2b(f"{seed}:{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def build_seeded_model(config: TrainConfig, device: torch.device) -> nn.Module:
    """Build the model right after ``torch.manual_seed(config.seed)``.

    Seeding here, and nowhere else, makes the initial weights a function of
    the seed and the model settings alone, so every optimizer arm of one seed
    starts from identical weights.
    """
    torch.manual_seed(config.seed)
    try:
        model = build_model(config.model.name, **config.model.options)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"model: {error}") from None
    return model.to(device)


def seed_training(seed: int) -> None:
    """Seed the generators that training draws from (dropout, attacks' random starts)."""
    training_seed = derived_seed(seed, "training")
    torch.manual_seed(training_seed)
    random.seed(training_seed)
    np.random.seed(training_seed % 2**32)


def build_optimizer_from_config(model: nn.Module, config: TrainConfig) -> Any:
    options = config.optimizer
    try:
        return build_optimizer(
            model,
            options.name,
            lr=options.lr,
            weight_decay=options.weight_decay,
            momentum=options.momentum,
            nesterov=options.nesterov,
            betas=options.betas,
            eps=options.eps,
            **options.options,
        )
    except (ValueError, MissingExtraError) as error:
        raise ConfigError(f"optimizer: {error}") from None


def build_modulator(model: nn.Module, config: TrainConfig, optimizer: Any) -> LayerwiseGradientModulator | None:
    """Return a modulator attached to ``optimizer``, or None when modulation is off."""
    options = config.modulation
    if options.policy == MODULATION_OFF:
        if options.options:
            raise ConfigError(
                f"modulation.options = {options.options!r} but modulation.policy is 'off'; "
                "set a policy or remove the options"
            )
        return None
    try:
        policy = build_policy(options.policy, **options.options)
        modulator = LayerwiseGradientModulator(model, policy=policy, apply=options.apply)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"modulation: {error}") from None
    modulator.attach(optimizer)
    return modulator


def check_tensorboard(config: TrainConfig) -> None:
    """Raise ConfigError when ``run.tensorboard`` is on but the tensorboard package is missing."""
    if config.run.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "run.tensorboard = true needs the tensorboard package, which is not installed; "
            "install it with: pip install 'gradmod[tensorboard]'"
        )


def load_dataset(config: TrainConfig) -> FashionMNIST:
    """Load Fashion-MNIST from the config's data settings; DataError passes through unchanged."""
    data = config.data
    try:
        return load_fashion_mnist(data.path, val_size=data.val_size, split_seed=data.split_seed)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"data: {error}") from None


def build_adversarial(config: TrainConfig) -> Any:
    """Return an ``AdversarialTraining`` for ``config.adversarial``, or None for method 'none'."""
    options = config.adversarial
    if options.method == "none":
        return None
    from gradmod.robustness import AdversarialTraining

    try:
        return AdversarialTraining(
            options.method, eps=options.eps, steps=options.steps, step_size=options.step_size
        )
    except ValueError as error:
        raise ConfigError(f"adversarial: {error}") from None


def build_overfitting_monitor(config: TrainConfig, dataset: FashionMNIST) -> Any:
    """Return a monitor of PGD accuracy on the first validation images, or None when not needed."""
    options = config.adversarial
    if options.method == "none" or options.monitor_images == 0 or dataset.val is None:
        return None
    from gradmod.robustness import CatastrophicOverfittingMonitor

    count = min(options.monitor_images, len(dataset.val))
    return CatastrophicOverfittingMonitor(
        dataset.val.images[:count],
        dataset.val.labels[:count],
        eps=options.eps,
        seed=derived_seed(config.seed, "overfitting-monitor") % 2**31,
    )


def build_pipeline_controllers(config: TrainConfig, trainer: Any) -> list[Any]:
    """Return the pipeline feedback controllers that ``config.feedback`` and ``config.freezing`` request."""
    return list(build_controllers(config, trainer))
