"""Adversarial attacks, robust evaluation and adversarial-training helpers.

Threat model: images in [0, 1] (normalisation inside the model), a model that
returns logits, perturbations bounded in L-inf or L2 norm in [0, 1] pixel units.
Attacks run the model in eval mode and restore its mode, and never touch
parameter ``.grad`` fields::

    from gradmod.robustness import fgsm, pgd, evaluate_robustness

    x_adv = pgd(model, images, labels, eps=0.1, steps=20)
    report = evaluate_robustness(model, images, labels, eps_list=[0.05, 0.1])
    report.save_json("robustness.json")

uint8 images are accepted and divided by 255. A model returning a tuple is
attacked through its first element.
"""

from gradmod.robustness.adversarial_training import TRAINING_METHODS, AdversarialTraining
from gradmod.robustness.evaluate import (
    EVALUATION_ATTACKS,
    correct_predictions,
    correct_under_attack,
    evaluate_robustness,
    robust_accuracy,
)
from gradmod.robustness.fgsm import fgsm
from gradmod.robustness.overfitting_monitor import CatastrophicOverfittingMonitor, MonitorResult
from gradmod.robustness.pgd import default_step_size, pgd
from gradmod.robustness.plot import plot_robustness
from gradmod.robustness.report import RobustnessReport
from gradmod.robustness.sanity import SanityCheck, noise_tolerance

__all__ = [
    "EVALUATION_ATTACKS",
    "TRAINING_METHODS",
    "AdversarialTraining",
    "CatastrophicOverfittingMonitor",
    "MonitorResult",
    "RobustnessReport",
    "SanityCheck",
    "correct_predictions",
    "correct_under_attack",
    "default_step_size",
    "evaluate_robustness",
    "fgsm",
    "noise_tolerance",
    "pgd",
    "plot_robustness",
    "robust_accuracy",
]
