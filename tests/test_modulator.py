import logging
import math

import pytest
import torch
from torch import nn

from gradmod import LayerwiseGradientModulator
from gradmod.modulation import Constant, Hypergradient
from modulation_reference import ReferenceHypergradient

GAIN_TOLERANCE = 1e-6  # hypergradient gains against the plain reference
FLOAT32_RTOL = 1e-5  # update-mode arithmetic against a scaled learning rate


def make_model(dtype=torch.float32):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
    return model.to(dtype)


def make_batches(count, dtype=torch.float32):
    generator = torch.Generator().manual_seed(1)
    return [
        (torch.randn(32, 8, generator=generator, dtype=dtype), torch.randint(0, 3, (32,), generator=generator))
        for _ in range(count)
    ]


def train_step(model, optimizer, inputs, labels):
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(inputs), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


OPTIMIZERS = {
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr),
    "sgd_momentum": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-3),
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=0.05),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_constant_gain_equals_scaled_learning_rate(name):
    batches = make_batches(15)
    scaled = make_model()
    scaled_optimizer = OPTIMIZERS[name](scaled.parameters(), 0.05 * 0.5)
    modulated = make_model()
    optimizer = OPTIMIZERS[name](modulated.parameters(), 0.05)
    LayerwiseGradientModulator(modulated, policy=Constant(0.5)).attach(optimizer)

    for inputs, labels in batches:
        train_step(scaled, scaled_optimizer, inputs, labels)
        train_step(modulated, optimizer, inputs, labels)

    for expected, actual in zip(scaled.parameters(), modulated.parameters()):
        torch.testing.assert_close(actual, expected, rtol=FLOAT32_RTOL, atol=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("apply", ["update", "gradient"])
def test_unit_gain_equals_plain_optimizer_exactly(name, apply):
    batches = make_batches(10)
    plain = make_model()
    plain_optimizer = OPTIMIZERS[name](plain.parameters(), 0.05)
    modulated = make_model()
    optimizer = OPTIMIZERS[name](modulated.parameters(), 0.05)
    LayerwiseGradientModulator(modulated, policy=Constant(1.0), apply=apply).attach(optimizer)

    for inputs, labels in batches:
        train_step(plain, plain_optimizer, inputs, labels)
        train_step(modulated, optimizer, inputs, labels)

    for expected, actual in zip(plain.parameters(), modulated.parameters()):
        assert torch.equal(actual, expected)


def test_gradient_mode_constant_gain_scales_sgd_step():
    batches = make_batches(10)
    scaled = make_model()
    scaled_optimizer = torch.optim.SGD(scaled.parameters(), lr=0.025, momentum=0.9)
    modulated = make_model()
    optimizer = torch.optim.SGD(modulated.parameters(), lr=0.05, momentum=0.9)
    LayerwiseGradientModulator(modulated, policy=Constant(0.5), apply="gradient").attach(optimizer)

    for inputs, labels in batches:
        train_step(scaled, scaled_optimizer, inputs, labels)
        train_step(modulated, optimizer, inputs, labels)

    for expected, actual in zip(scaled.parameters(), modulated.parameters()):
        torch.testing.assert_close(actual, expected, rtol=FLOAT32_RTOL, atol=1e-6)


# Options of the hypergradient policy, each run against the per-layer reference.
HYPERGRADIENT_OPTIONS = {
    "default": {},
    "raw": {"feedback": "raw"},
    "ema": {"feedback": "ema", "smoothing": 0.8},
    "relative": {"feedback": "relative", "smoothing": 0.8},
    "raw_geomean": {"feedback": "raw", "normalise": "geomean"},
    "ratio": {"normalise": "ratio", "max_ratio": 1.05},  # tight enough to bind
    "centred_geomean": {"feedback": "centred", "normalise": "geomean"},
}


@pytest.mark.parametrize(
    "name, option",
    [("sgd_momentum", "default"), ("adamw", "default"), *(("sgd_momentum", o) for o in list(HYPERGRADIENT_OPTIONS)[1:])],
)
def test_hypergradient_matches_reference(name, option):
    settings = {"beta": 0.05, "min_gain": 0.5, "max_gain": 2.0, "decay": 0.01, **HYPERGRADIENT_OPTIONS[option]}
    policy = Hypergradient(**settings)
    batches = make_batches(25, torch.float64)
    reference_model = make_model(torch.float64)
    reference_optimizer = OPTIMIZERS[name](reference_model.parameters(), 0.05)
    layers = [[m.weight, m.bias] for m in reference_model if isinstance(m, nn.Linear)]
    reference = ReferenceHypergradient(layers, reference_optimizer, **settings)
    model = make_model(torch.float64)
    optimizer = OPTIMIZERS[name](model.parameters(), 0.05)
    mod = LayerwiseGradientModulator(model, policy=policy).attach(optimizer)

    moved = spread = False
    widest = 1.0  # largest gain over the smallest
    for inputs, labels in batches:
        reference_optimizer.zero_grad()
        nn.functional.cross_entropy(reference_model(inputs), labels).backward()
        reference.step()
        train_step(model, optimizer, inputs, labels)

        gains = reference.gains()
        assert list(mod.gains().values()) == pytest.approx(gains, abs=GAIN_TOLERANCE)
        moved = moved or any(abs(g - 1.0) > 0.05 for g in gains)
        spread = spread or max(gains) / min(gains) > 1.01
        widest = max(widest, max(gains) / min(gains))
    for expected, actual in zip(reference_model.parameters(), model.parameters()):
        torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-10)
    assert moved or spread, "the gains never moved, so the comparison checked nothing"
    if settings.get("normalise") == "geomean":
        assert math.prod(gains) == pytest.approx(1.0, abs=1e-9)
    if settings.get("normalise") == "ratio":
        assert widest == pytest.approx(1.05, rel=1e-9)  # reached, never exceeded


def quadratic_gain(lr_fraction, steps=40, feedback="raw"):
    # f(w) = 0.5 * sum(c_i w_i^2) with curvatures 4 and 3; SGD diverges above lr = 2 / 4.
    # A wide spread of curvatures makes the gain cycle instead of settling. With a single
    # layer only raw feedback moves the gain, because centring removes all of it.
    curvature = torch.tensor([4.0, 3.0])
    weight = nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([weight], lr=lr_fraction * 2.0 / 4.0)
    mod = LayerwiseGradientModulator([("w", weight)], policy=Hypergradient(beta=0.05, feedback=feedback)).attach(optimizer)
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * curvature * weight * weight).sum().backward()
        optimizer.step()
    return mod.gains()["(root)"]


def test_centred_single_layer_keeps_gain(caplog):
    with caplog.at_level(logging.WARNING, logger="gradmod"):
        assert quadratic_gain(0.02, feedback="centred") == 1.0
    assert quadratic_gain(0.95, feedback="centred") == 1.0
    assert "keeps the gain of a single layer ((root)) at 1" in caplog.text


def test_raw_single_layer_no_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="gradmod"):
        quadratic_gain(0.02, feedback="raw")
    assert "single layer" not in caplog.text


def test_quadratic_gain_grows_when_lr_small():
    assert quadratic_gain(0.02) > 1.5


def test_quadratic_gain_shrinks_near_divergence():
    assert quadratic_gain(0.95) < 1.0


def test_nan_gradient_skips_step_entirely(caplog):
    batches = make_batches(4)
    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    mod = LayerwiseGradientModulator(model).attach(optimizer)
    for inputs, labels in batches[:3]:
        train_step(model, optimizer, inputs, labels)
    weights = [p.detach().clone() for p in model.parameters()]
    optimizer_state = {k: {n: v.clone() for n, v in s.items()} for k, s in optimizer.state_dict()["state"].items()}
    modulator_state = mod.state_dict()

    with caplog.at_level(logging.WARNING, logger="gradmod"):
        for bad in (float("nan"), float("inf")):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(batches[3][0]), batches[3][1]).backward()
            model[2].weight.grad[0, 0] = bad
            optimizer.step()

    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), weights))
    for key, entries in optimizer.state_dict()["state"].items():
        assert all(torch.equal(v, optimizer_state[key][n]) for n, v in entries.items())
    assert mod.gains() == dict(zip(mod.layer_names, modulator_state["gains"].tolist()))
    assert mod.skipped_steps == 2
    assert mod.step_count == 3
    assert "a gradient contains NaN or inf" in caplog.text


def test_skip_warning_rate_limited(caplog):
    weight = nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    mod = LayerwiseGradientModulator([("w", weight)]).attach(optimizer)

    with caplog.at_level(logging.WARNING, logger="gradmod"):
        for _ in range(10):
            weight.grad = torch.full((3,), float("nan"))
            optimizer.step()

    assert mod.skipped_steps == 10
    skips = [record for record in caplog.records if "skipped optimizer step" in record.getMessage()]
    assert len(skips) == 4  # at skips 1, 2, 4 and 8


def test_zero_weights_and_gradients_stay_finite():
    layer = nn.Linear(4, 4)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    for policy in ("hypergradient", "trust_ratio", "clip"):
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
        mod = LayerwiseGradientModulator(layer, policy=policy).attach(optimizer)
        for _ in range(3):
            layer.weight.grad = torch.zeros(4, 4)
            layer.bias.grad = torch.zeros(4)
            optimizer.step()

        assert all(math.isfinite(g) for g in mod.gains().values()), policy
        assert all(math.isfinite(h) for h in mod.feedback().values()), policy
        assert torch.isfinite(mod.update_ratio_tensor()).all(), policy
        mod.detach()


def test_missing_gradients_skipped():
    batches = make_batches(5)
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mod = LayerwiseGradientModulator(model).attach(optimizer)
    model[4].requires_grad_(False)  # frozen after the modulator was built: grads stay None
    frozen = model[4].weight.detach().clone()

    for inputs, labels in batches:
        train_step(model, optimizer, inputs, labels)

    assert torch.equal(model[4].weight, frozen)
    assert mod.gains()["4"] == 1.0
    assert mod.gains()["0"] != 1.0
    assert mod.step_count == 5


def test_closure_evaluated_once_before_reading():
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mod = LayerwiseGradientModulator(model, policy=Constant(1.0), apply="gradient").attach(optimizer)
    inputs, labels = make_batches(1)[0]
    calls = []

    def closure():
        calls.append(1)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        return loss

    expected_model = make_model()
    expected_optimizer = torch.optim.SGD(expected_model.parameters(), lr=0.1)
    train_step(expected_model, expected_optimizer, inputs, labels)

    loss = optimizer.step(closure)

    assert len(calls) == 1
    assert loss is not None and math.isfinite(loss.item())
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), expected_model.parameters()))
    assert mod.step_count == 1


def test_update_mode_leaves_gradients_untouched():
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    LayerwiseGradientModulator(model, policy=Constant(0.3)).attach(optimizer)
    inputs, labels = make_batches(1)[0]
    reference = make_model()
    nn.functional.cross_entropy(reference(inputs), labels).backward()

    nn.functional.cross_entropy(model(inputs), labels).backward()
    optimizer.step()

    for expected, actual in zip(reference.parameters(), model.parameters()):
        assert torch.equal(actual.grad, expected.grad)


def test_detach_restores_plain_step():
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mod = LayerwiseGradientModulator(model, policy=Constant(0.0001 + 0.5))
    mod.attach(optimizer)
    mod.detach()

    assert "step" not in vars(optimizer)
    train_step(model, optimizer, *make_batches(1)[0])
    assert mod.step_count == 0


def test_attach_before_or_after_scheduler():
    batches = make_batches(6)
    results = []
    for order in ("modulator_first", "scheduler_first"):
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        mod = LayerwiseGradientModulator(model)
        if order == "modulator_first":
            mod.attach(optimizer)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        if order == "scheduler_first":
            mod.attach(optimizer)
        for inputs, labels in batches:
            train_step(model, optimizer, inputs, labels)
            scheduler.step()
        results.append((mod.step_count, mod.gains(), [p.detach().clone() for p in model.parameters()]))

    assert results[0][0] == results[1][0] == 6
    assert results[0][1] == results[1][1]
    assert all(torch.equal(a, b) for a, b in zip(results[0][2], results[1][2]))


def test_constructor_arguments_checked():
    model = make_model()
    with pytest.raises(ValueError, match="apply must be one of \\('update', 'gradient'\\), got 'weights'"):
        LayerwiseGradientModulator(model, apply="weights")
    with pytest.raises(ValueError, match="options \\['beta'\\] apply only when the policy is given by name"):
        from gradmod.modulation import build_policy

        build_policy(Constant(1.0), beta=1.0)


def test_attach_errors():
    model = make_model()
    other = nn.Linear(2, 2)
    mod = LayerwiseGradientModulator(model)
    with pytest.raises(ValueError, match="updates none of the modulated parameters"):
        mod.attach(torch.optim.SGD(other.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="LBFGS"):
        mod.attach(torch.optim.LBFGS(model.parameters()))
    mod.attach(torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(RuntimeError, match="already attached"):
        mod.attach(torch.optim.SGD(model.parameters(), lr=0.1))


def test_load_state_dict_rejects_other_layers():
    mod = LayerwiseGradientModulator(make_model())
    other = LayerwiseGradientModulator(nn.Linear(2, 2))

    with pytest.raises(ValueError, match="the saved modulator has other layers"):
        other.load_state_dict(mod.state_dict())


def test_back_off_and_relax():
    batches = make_batches(8)
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    mod = LayerwiseGradientModulator(model, policy=Hypergradient(beta=0.1)).attach(optimizer)
    for inputs, labels in batches:
        train_step(model, optimizer, inputs, labels)
    before = mod._policy_state["log_gain"].clone()
    positive = [name for name, h in mod.feedback().items() if h > 0]

    changed = mod.back_off(0.5)
    after_back_off = mod._policy_state["log_gain"].clone()
    mod.relax(0.5)

    assert changed == positive
    for i, name in enumerate(mod.layer_names):
        expected = before[i] + math.log(0.5) if name in positive else before[i]
        assert after_back_off[i].item() == pytest.approx(max(expected.item(), math.log(0.1)))
    torch.testing.assert_close(mod._policy_state["log_gain"], after_back_off * 0.5)
    assert mod._policy_state["beta_scale"].item() == pytest.approx(0.5)
    assert LayerwiseGradientModulator(model, policy="clip").back_off(0.5) == []


def test_geomean_raw_equals_centred_within_bounds():
    # Raw feedback with the log-gains' mean removed after each step gives the gains of
    # centred feedback, as long as no gain reaches a bound and there is no decay.
    gains = {}
    for name, options in {"geomean": {"normalise": "geomean"}, "centred": {"feedback": "centred"}}.items():
        policy_options = {"beta": 0.05, "min_gain": 0.01, "max_gain": 100.0, "feedback": "raw", **options}
        model = make_model(torch.float64)
        optimizer = OPTIMIZERS["sgd_momentum"](model.parameters(), 0.05)
        mod = LayerwiseGradientModulator(model, policy=Hypergradient(**policy_options)).attach(optimizer)
        for inputs, labels in make_batches(25, torch.float64):
            train_step(model, optimizer, inputs, labels)
        gains[name] = list(mod.gains().values())
    assert max(abs(math.log(g)) for g in gains["centred"]) > 0.01  # the gains moved
    assert gains["geomean"] == pytest.approx(gains["centred"], abs=1e-9)
