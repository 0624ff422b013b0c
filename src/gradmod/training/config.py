"""``TrainConfig``: every setting of one training run, as nested dataclasses.

The TOML file that ``gradmod train --config`` reads has the same shape: the
top-level keys of ``TrainConfig``, then one table per section::

    seed = 0
    epochs = 5
    target_accuracy = 0.9

    [model]
    name = "vit"

    [optimizer]
    name = "adamw"
    lr = 1e-3

    [modulation]
    policy = "hypergradient"
    options = { beta = 0.02 }

Fields whose default is None and that are marked "(recipe)" take their value
from the model's recipe (``gradmod.training.recipes``) when left unset.
``from_dict`` rejects unknown keys (naming the nearest valid key), wrong types
and out-of-range values with a ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

import torch

from gradmod.training._fields import ConfigError, check_choice, check_value, reject_unknown_keys

__all__ = [
    "ConfigError",
    "TrainConfig",
    "ModelConfig",
    "DataConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "ModulationConfig",
    "AdversarialConfig",
    "RunConfig",
    "DistributedConfig",
]

ADVERSARIAL_METHODS = ("none", "fgsm_rs", "pgd")
MODULATION_APPLY = ("update", "gradient")
FEEDBACK_LOSSES = ("adversarial", "clean")
MODULATION_OFF = "off"
DISTRIBUTED_BACKENDS = ("auto", "gloo", "nccl")


def _meta(**constraints: Any) -> dict[str, Any]:
    return constraints


@dataclass
class ModelConfig:
    """The network to train.

    Attributes:
        name: a name in ``gradmod.models.MODELS`` ("cnn", "resnet", "vit"). Default "cnn".
        options: keyword overrides for ``build_model`` (for example ``{ depth = 4 }``). Default none.
    """

    name: str = "cnn"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Dataset location, splits and batching.

    Attributes:
        path: folder with the Fashion-MNIST IDX files; None searches $GRADMOD_DATA,
            the user cache and /usr/share/datasets/fashion-mnist. Default None.
        val_size: images held out of the training set for validation. Default 5000.
        split_seed: seed of the train/validation split (not of training). Default 0.
        batch_size: training images per step (recipe).
        eval_batch_size: images per batch when evaluating. Default 1000.
        augment: random training augmentation (recipe).
        train_subset: train on the first N images of the shuffled training split;
            None uses all of it. Default None.
    """

    path: str | None = None
    val_size: int = field(default=5000, metadata=_meta(min=1))
    split_seed: int = field(default=0, metadata=_meta(min=0))
    batch_size: int | None = field(default=None, metadata=_meta(min=1))
    eval_batch_size: int = field(default=1000, metadata=_meta(min=1))
    augment: bool | None = None
    train_subset: int | None = field(default=None, metadata=_meta(min=1))


@dataclass
class OptimizerConfig:
    """The optimizer and its hyperparameters (see ``gradmod.training.optimizers``).

    Attributes:
        name: "sgd", "adamw", "muon", "lamb" or "lars" (recipe).
        lr: peak learning rate, reached at the end of warmup (recipe).
        weight_decay: decoupled (AdamW, Muon, LAMB) or L2 (SGD, LARS) weight decay,
            applied to tensors with >= 2 dimensions only (recipe).
        momentum: momentum of sgd and lars. Default 0.9.
        nesterov: Nesterov momentum for sgd and lars (recipe).
        betas: Adam moment coefficients of adamw, lamb and muon's AdamW half. Default (0.9, 0.999).
        eps: Adam denominator term. Default 1e-8.
        options: extra keyword arguments for the optimizer's constructor. Default none.
    """

    name: str | None = None
    lr: float | None = field(default=None, metadata=_meta(gt=0.0))
    weight_decay: float | None = field(default=None, metadata=_meta(min=0.0))
    momentum: float = field(default=0.9, metadata=_meta(min=0.0, lt=1.0))
    nesterov: bool | None = None
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=_meta(min=0.0, lt=1.0))
    eps: float = field(default=1e-8, metadata=_meta(gt=0.0))
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScheduleConfig:
    """Linear warmup then cosine decay, by optimizer step (``gradmod.training.schedule``).

    Attributes:
        warmup_steps: optimizer steps of linear warmup (recipe).
        min_lr_ratio: final learning rate as a fraction of the peak. Default 0.0.
    """

    warmup_steps: int | None = field(default=None, metadata=_meta(min=0))
    min_lr_ratio: float = field(default=0.0, metadata=_meta(min=0.0, max=1.0))


@dataclass
class ModulationConfig:
    """Layerwise gradient modulation.

    Attributes:
        policy: "off" or a gain policy name ("hypergradient", "trust_ratio", "clip",
            "constant"). Default "off".
        apply: "update" or "gradient", passed to the modulator. Default "update".
        options: policy options such as ``beta``, ``min_gain``, ``max_gain``. Default none.
        feedback_loss: under adversarial training, the loss whose gradient the
            feedback cos(g(t), u(t-1)) is measured on: "adversarial" (the loss the
            step descends, at no extra cost) or "clean" (the loss of the unperturbed
            batch, one more forward and backward pass per step). Without adversarial
            training both are the same loss. Default "adversarial".
    """

    policy: str = MODULATION_OFF
    apply: str = field(default="update", metadata=_meta(choices=MODULATION_APPLY))
    options: dict[str, Any] = field(default_factory=dict)
    feedback_loss: str = field(default="adversarial", metadata=_meta(choices=FEEDBACK_LOSSES))


@dataclass
class AdversarialConfig:
    """Adversarial training (``gradmod.robustness.AdversarialTraining``).

    Attributes:
        method: "none", "fgsm_rs" (FGSM with random start) or "pgd". Default "none".
        eps: L-inf radius in input units, images being in [0, 1]. Default 0.1.
        steps: attack iterations; None uses the attack's default (1 for fgsm_rs, 10 for pgd).
            fgsm_rs takes only 1. Default None.
        step_size: attack step in input units; None uses the attack's default
            (1.25 * eps for fgsm_rs, 2.5 * eps / steps for pgd). Default None.
        monitor_images: validation images on which PGD accuracy is measured at each
            epoch end to detect catastrophic overfitting; 0 turns the check off. Default 256.
        restore_best: after catastrophic overfitting, end the run with the weights of
            the epoch whose PGD accuracy on those images was best (also written to
            ``best.pt`` in ``run.out`` whenever a new best is measured). Default true.
    """

    method: str = field(default="none", metadata=_meta(choices=ADVERSARIAL_METHODS))
    eps: float = field(default=0.1, metadata=_meta(gt=0.0, max=1.0))
    steps: int | None = field(default=None, metadata=_meta(min=1))
    step_size: float | None = field(default=None, metadata=_meta(gt=0.0))
    monitor_images: int = field(default=256, metadata=_meta(min=0))
    restore_best: bool = True


@dataclass
class RunConfig:
    """Output, evaluation, logging and checkpoint cadence.

    Attributes:
        out: run folder for metrics, checkpoints and the result; None writes no files. Default None.
        eval_every: evaluate on the validation split every N optimizer steps, besides
            each epoch end; None evaluates at epoch ends only. Default None.
        log_every: write a training record every N steps. Default 1.
        gains_every: add the per-layer gains to the record every N steps. Default 10.
        checkpoint_every: write a checkpoint every N steps, besides the end of the run;
            needs ``out``. Default None.
        csv: also write ``metrics.csv``. Default false.
        tensorboard: also write TensorBoard event files under ``out/tensorboard``. Default false.
        quiet: no progress bar. Default false.
        overwrite: start a fresh run in a folder that already contains a checkpoint. Default false.
        stop_at_target: stop training once ``target_accuracy`` is reached. Default false.
    """

    out: str | None = None
    eval_every: int | None = field(default=None, metadata=_meta(min=1))
    log_every: int = field(default=1, metadata=_meta(min=1))
    gains_every: int = field(default=10, metadata=_meta(min=1))
    checkpoint_every: int | None = field(default=None, metadata=_meta(min=1))
    csv: bool = False
    tensorboard: bool = False
    quiet: bool = False
    overwrite: bool = False
    stop_at_target: bool = False


@dataclass
class DistributedConfig:
    """Data-parallel training under torchrun (``gradmod.distributed``); unused in a single process.

    Attributes:
        backend: "auto" (nccl on CUDA, gloo on the CPU), "gloo" or "nccl". Default "auto".
        timeout_seconds: how long a collective waits for the other ranks before it
            raises, so a crashed or stuck rank stops the job with an error. Default 600.
    """

    backend: str = field(default="auto", metadata=_meta(choices=DISTRIBUTED_BACKENDS))
    timeout_seconds: float = field(default=600.0, metadata=_meta(gt=0.0))


@dataclass
class TrainConfig:
    """One training run. See the section classes for each table's keys.

    Attributes:
        seed: seeds model initialisation, data order, augmentation and dropout. Default 0.
        epochs: passes over the training split (recipe).
        max_steps: stop after this many optimizer steps; the schedule ends there too. Default None.
        device: torch device, such as "cpu" or "cuda:0". Default "cpu".
        threads: torch intra-op threads; None leaves torch's setting. Default None.
        target_accuracy: validation accuracy, as a fraction in (0, 1], whose first
            reach is recorded (step and training seconds). Default None.
        feedback: options of the pipeline feedback controllers. Default none.
        freezing: options of layer freezing. Default none.

    Under torchrun, ``data.batch_size`` stays the global batch: each of the W
    ranks takes ``batch_size / W`` images per step.
    """

    seed: int = field(default=0, metadata=_meta(min=0))
    epochs: int | None = field(default=None, metadata=_meta(min=1))
    max_steps: int | None = field(default=None, metadata=_meta(min=1))
    device: str = "cpu"
    threads: int | None = field(default=None, metadata=_meta(min=1))
    target_accuracy: float | None = field(default=None, metadata=_meta(gt=0.0, max=1.0))
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    modulation: ModulationConfig = field(default_factory=ModulationConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    run: RunConfig = field(default_factory=RunConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    feedback: dict[str, Any] = field(default_factory=dict)
    freezing: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build and validate a config from nested dicts (as read from TOML or ``to_dict``)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a table (dict), got {type(data).__name__}")
        config = _from_dict(cls, data, where="")
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Return the config as nested dicts (tuples as lists), ready for JSON or TOML."""
        return _to_plain(dataclasses.asdict(self))

    def replace(self, **changes: Any) -> TrainConfig:
        """Return a validated copy with dotted keys changed, e.g. ``replace(**{"optimizer.lr": 0.1})``."""
        data = self.to_dict()
        for dotted, value in changes.items():
            *sections, key = dotted.split(".")
            target = data
            for section in sections:
                target = target.setdefault(section, {})
            target[key] = value
        return TrainConfig.from_dict(data)

    def validate(self) -> None:
        """Raise ConfigError for the first invalid value, naming its key."""
        _validate_fields(self, where="")
        _check_names(self)
        if self.run.checkpoint_every is not None and self.run.out is None:
            raise ConfigError(
                f"run.checkpoint_every = {self.run.checkpoint_every} needs run.out, the folder to write checkpoints to"
            )
        adversarial = self.adversarial
        if adversarial.method == "fgsm_rs" and adversarial.steps not in (None, 1):
            raise ConfigError(
                f"adversarial.steps = {adversarial.steps} but method 'fgsm_rs' takes one step; "
                "leave steps unset or use method 'pgd'"
            )
        try:
            device = torch.device(self.device)
        except RuntimeError as error:
            raise ConfigError(f"device = {self.device!r} is not a torch device: {error}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device = {self.device!r} but CUDA is not available here; use device = 'cpu'")


def _is_section(annotation: Any) -> bool:
    return dataclasses.is_dataclass(annotation)


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    reject_unknown_keys(data, fields, where)
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        annotation = hints[name]
        if _is_section(annotation):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a table (dict), got {value!r} ({type(value).__name__})")
            values[name] = _from_dict(annotation, value, where=key)
        else:
            values[name] = check_value(key, value, fields[name], annotation)
    return cls(**values)


def _validate_fields(section: Any, where: str) -> None:
    hints = typing.get_type_hints(type(section))
    for f in dataclasses.fields(section):
        key = f"{where}.{f.name}" if where else f.name
        value = getattr(section, f.name)
        if _is_section(hints[f.name]):
            if not isinstance(value, hints[f.name]):
                raise ConfigError(f"{key}: expected a {hints[f.name].__name__}, got {type(value).__name__}")
            _validate_fields(value, where=key)
        else:
            setattr(section, f.name, check_value(key, value, f, hints[f.name]))


def _check_names(config: TrainConfig) -> None:
    """Check registry names: model, optimizer and policy, each with its nearest valid name."""
    from gradmod.training.optimizers import OPTIMIZERS

    if config.optimizer.name is not None:
        check_choice("optimizer.name", config.optimizer.name, OPTIMIZERS)
    model_names = _registry_names("gradmod.models", "MODELS")
    if model_names is not None:
        check_choice("model.name", config.model.name, model_names)
    policy_names = _registry_names("gradmod.modulation.policies", "POLICIES")
    if policy_names is not None:
        check_choice("modulation.policy", config.modulation.policy, [MODULATION_OFF, *policy_names])


def _registry_names(module_name: str, attribute: str) -> list[str] | None:
    """Return the keys of a registry in another package, or None when it cannot be imported."""
    import importlib

    try:
        registry = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        # NOTE: the name is then checked only when the Trainer builds the object.
        return None
    return list(registry)


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(item) for item in value]
    return value
