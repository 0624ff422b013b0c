"""Feedback measured on gradients other than the step's own (``set_feedback_gradients``)."""

import pytest
import torch
from torch import nn

from gradmod import LayerwiseGradientModulator
from test_modulator import make_batches, make_model, train_step


def layer_cosines(modulator, first, second):
    """cos(first_l, second_l) per layer, in float64, from whole-layer concatenations."""
    cosines = []
    for layer in modulator.layers:
        positions = [i for i, p in enumerate(modulator.parameters()) if any(p is q for q in layer.params)]
        a = torch.cat([first[i].flatten() for i in positions]).double()
        b = torch.cat([second[i].flatten() for i in positions]).double()
        cosines.append(float(a @ b / (a.norm() * b.norm())))
    return cosines


def test_feedback_on_given_gradients_matches_hand_computed_cosine():
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    modulator = LayerwiseGradientModulator(model).attach(optimizer)
    (x1, y1), (x2, y2), (x3, y3) = make_batches(3)
    train_step(model, optimizer, x1, y1)
    before = [p.detach().clone() for p in modulator.parameters()]
    train_step(model, optimizer, x2, y2)
    update = [p.detach() - b for p, b in zip(modulator.parameters(), before)]

    # Gradients of another batch stand in for the clean-loss gradients.
    loss = nn.functional.cross_entropy(model(x3), y3)
    other = torch.autograd.grad(loss, modulator.parameters())
    modulator.set_feedback_gradients(other)
    train_step(model, optimizer, x1, y1)

    expected = layer_cosines(modulator, other, update)
    assert list(modulator.feedback().values()) == pytest.approx(expected, abs=1e-5)


def test_given_gradients_equal_to_own_change_nothing():
    def run(give_own):
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        modulator = LayerwiseGradientModulator(model).attach(optimizer)
        for inputs, labels in make_batches(6):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs), labels).backward()
            if give_own:
                modulator.set_feedback_gradients([p.grad.clone() for p in modulator.parameters()])
            optimizer.step()
        return modulator.gain_tensor(), [p.detach().clone() for p in model.parameters()]

    gains, weights = run(give_own=False)
    given_gains, given_weights = run(give_own=True)
    torch.testing.assert_close(given_gains, gains, rtol=1e-6, atol=0)
    for a, b in zip(given_weights, weights):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_given_gradients_serve_one_step_only():
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    modulator = LayerwiseGradientModulator(model).attach(optimizer)
    batches = make_batches(3)
    train_step(model, optimizer, *batches[0])
    opposite = [-p.grad.clone() for p in modulator.parameters()]
    modulator.set_feedback_gradients(opposite)
    train_step(model, optimizer, *batches[0])
    assert modulator._feedback_grads is None
    # A missing gradient counts as zero: its layer's feedback is 0 when all are missing.
    modulator.set_feedback_gradients([None] * len(modulator.parameters()))
    train_step(model, optimizer, *batches[1])
    assert all(value == 0.0 for value in modulator.feedback().values())


def test_feedback_gradients_checked():
    model = make_model()
    modulator = LayerwiseGradientModulator(model)
    count = len(modulator.parameters())
    with pytest.raises(ValueError, match=f"one gradient per modulated parameter \\({count}"):
        modulator.set_feedback_gradients([None])
    wrong = [None] * count
    wrong[0] = torch.zeros(3)
    with pytest.raises(ValueError, match="feedback gradient 0 has shape \\(3,\\)"):
        modulator.set_feedback_gradients(wrong)
