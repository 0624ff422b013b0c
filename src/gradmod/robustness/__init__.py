"""Adversarial attacks, robust evaluation and adversarial-training helpers.

Threat model: images in [0, 1] (normalisation inside the model), a model that
returns logits, perturbations bounded in L-inf or L2 norm in [0, 1] pixel units.
Attacks run the model in eval mode and restore its mode, and never touch
parameter ``.grad`` fields::

    from gradmod.robustness import fgsm, pgd

    x_adv = pgd(model, images, labels, eps=0.1, steps=20)

uint8 images are accepted and divided by 255. A model returning a tuple is
attacked through its first element.
"""

from gradmod.robustness.fgsm import fgsm
from gradmod.robustness.pgd import default_step_size, pgd

__all__ = ["default_step_size", "fgsm", "pgd"]
