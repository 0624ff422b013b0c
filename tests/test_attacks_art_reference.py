"""Reference check: gradmod's PGD against ART's ProjectedGradientDescent on the same model and images.

Both attacks start from the clean image (no random start), so they follow the
same path up to float rounding and the order of clipping and projection, which
ART applies the other way round for L2. With random starts the two draws
differ and the accuracies differ by a few images of noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradmod.robustness import pgd
from gradmod.robustness._art import make_art_classifier
from test_robustness_toys import IMAGE_SHAPE, NUM_CLASSES, trained_classifier

art_evasion = pytest.importorskip("art.attacks.evasion")

# Largest allowed gap in robust accuracy between the two implementations (1 point).
ACCURACY_TOLERANCE = 0.01

# Budgets where the toy MLP's PGD accuracy lies between 20% and 80%, so that a
# weaker or stronger attack would show.
CASES = [("linf", 0.075), ("l2", 1.7)]


@pytest.mark.parametrize(("norm", "eps"), CASES)
def test_pgd_matches_art_robust_accuracy(norm, eps):
    model, images, labels = trained_classifier()
    steps = 20
    step_size = 2.5 * eps / steps

    ours = pgd(model, images, labels, eps=eps, steps=steps, step_size=step_size, norm=norm, random_start=False)

    classifier = make_art_classifier(model, IMAGE_SHAPE, NUM_CLASSES)
    reference = art_evasion.ProjectedGradientDescent(
        classifier,
        norm=np.inf if norm == "linf" else 2,
        eps=eps,
        eps_step=step_size,
        max_iter=steps,
        num_random_init=0,
        batch_size=images.shape[0],
        verbose=False,
    )
    theirs = torch.from_numpy(reference.generate(x=images.numpy(), y=labels.numpy()))

    model.eval()
    with torch.no_grad():
        our_accuracy = float((model(ours).argmax(1) == labels).float().mean())
        art_accuracy = float((model(theirs).argmax(1) == labels).float().mean())
    assert 0.2 <= art_accuracy <= 0.8
    assert abs(our_accuracy - art_accuracy) <= ACCURACY_TOLERANCE
