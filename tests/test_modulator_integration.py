"""The modulator inside real training setups: AMP, accumulation, compile, resume."""

import io

import pytest
import torch
from torch import nn

from gradmod import LayerwiseGradientModulator
from test_modulator import make_batches, make_model, train_step


def test_grad_scaler_modulates_unscaled_gradients():
    batches = make_batches(8)
    runs = []
    for scale in (None, 2.0**12):
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        mod = LayerwiseGradientModulator(model).attach(optimizer)
        scaler = torch.amp.GradScaler("cpu", init_scale=scale) if scale else None
        for inputs, labels in batches:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(inputs), labels)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
        runs.append((mod.gains(), [p.detach().clone() for p in model.parameters()]))

    # Power-of-two scaling is exact, so the modulator must see identical gradients.
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_grad_scaler_skipped_step_not_seen():
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mod = LayerwiseGradientModulator(model).attach(optimizer)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    inputs, labels = make_batches(1)[0]

    scaler.scale(nn.functional.cross_entropy(model(inputs), labels)).backward()
    model[0].weight.grad[0, 0] = float("inf")
    scaler.step(optimizer)
    scaler.update()

    assert mod.step_count == 0
    assert mod.skipped_steps == 0  # GradScaler skipped it before the modulator ran
    assert scaler.get_scale() < 2.0**8


def test_gradient_accumulation_signals_on_real_steps():
    batches = make_batches(6)
    whole = make_model()
    whole_optimizer = torch.optim.SGD(whole.parameters(), lr=0.2, momentum=0.9)
    whole_mod = LayerwiseGradientModulator(whole).attach(whole_optimizer)
    accumulated = make_model()
    optimizer = torch.optim.SGD(accumulated.parameters(), lr=0.2, momentum=0.9)
    mod = LayerwiseGradientModulator(accumulated).attach(optimizer)

    for inputs, labels in batches:
        train_step(whole, whole_optimizer, inputs, labels)
        optimizer.zero_grad()
        for part_inputs, part_labels in zip(inputs.chunk(4), labels.chunk(4)):
            (nn.functional.cross_entropy(accumulated(part_inputs), part_labels) / 4).backward()
        optimizer.step()

    assert mod.step_count == whole_mod.step_count == 6
    assert list(mod.gains().values()) == pytest.approx(list(whole_mod.gains().values()), abs=1e-5)


def test_compiled_model_same_layers_and_trajectory():
    batches = make_batches(5)
    eager = make_model()
    eager_optimizer = torch.optim.SGD(eager.parameters(), lr=0.1, momentum=0.9)
    eager_mod = LayerwiseGradientModulator(eager).attach(eager_optimizer)
    # aot_eager traces through dynamo and AOTAutograd without a C++ compile, to keep this fast.
    compiled = torch.compile(make_model(), backend="aot_eager")
    optimizer = torch.optim.SGD(compiled.parameters(), lr=0.1, momentum=0.9)
    mod = LayerwiseGradientModulator(compiled).attach(optimizer)

    for inputs, labels in batches:
        train_step(eager, eager_optimizer, inputs, labels)
        train_step(compiled, optimizer, inputs, labels)

    assert mod.layer_names == eager_mod.layer_names == ["0", "2", "4"]
    assert list(mod.gains().values()) == pytest.approx(list(eager_mod.gains().values()), abs=1e-5)


def run_with_checkpoint(steps, checkpoint=None):
    """Train ``steps`` steps of AdamW + LGM, optionally starting from serialized bytes."""
    batches = make_batches(40)
    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    mod = LayerwiseGradientModulator(model).attach(optimizer)
    start = 0
    if checkpoint is not None:
        state = torch.load(io.BytesIO(checkpoint), weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        mod.load_state_dict(state["modulator"])
        start = state["step"]
    losses = [train_step(model, optimizer, *batches[i]) for i in range(start, start + steps)]
    buffer = io.BytesIO()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "modulator": mod.state_dict()}
    torch.save({**state, "step": start + steps}, buffer)
    return losses, model, mod, buffer.getvalue()


def test_resume_is_bit_identical():
    full_losses, full_model, full_mod, _ = run_with_checkpoint(20)
    first_losses, _, _, checkpoint = run_with_checkpoint(10)
    second_losses, resumed_model, resumed_mod, _ = run_with_checkpoint(10, checkpoint)

    assert first_losses + second_losses == full_losses
    assert resumed_mod.gains() == full_mod.gains()
    assert resumed_mod.step_count == 20
    for expected, actual in zip(full_model.parameters(), resumed_model.parameters()):
        assert torch.equal(actual, expected)
