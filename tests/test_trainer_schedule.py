import math
from types import SimpleNamespace

import pytest

from gradmod.training.schedule import WarmupCosineSchedule, warmup_cosine_factor

TOLERANCE = 1e-12


def test_warmup_is_linear_from_one_step():
    factors = [warmup_cosine_factor(t, warmup_steps=4, total_steps=10) for t in range(4)]
    assert factors == [0.25, 0.5, 0.75, 1.0]


def test_cosine_hits_peak_middle_and_floor():
    warmup, total, floor = 4, 14, 0.1
    assert warmup_cosine_factor(4, warmup, total, floor) == pytest.approx(1.0, abs=TOLERANCE)
    # Halfway through the decay the cosine term is 1/2, so f = floor + (1 - floor) / 2.
    assert warmup_cosine_factor(9, warmup, total, floor) == pytest.approx(0.55, abs=TOLERANCE)
    assert warmup_cosine_factor(14, warmup, total, floor) == pytest.approx(floor, abs=TOLERANCE)
    assert warmup_cosine_factor(50, warmup, total, floor) == pytest.approx(floor, abs=TOLERANCE)


def test_cosine_matches_formula_at_each_step():
    warmup, total, floor = 3, 23, 0.0
    for step in range(warmup, total + 1):
        progress = (step - warmup) / (total - warmup)
        expected = 0.5 * (1 + math.cos(math.pi * progress))
        assert warmup_cosine_factor(step, warmup, total, floor) == pytest.approx(expected, abs=TOLERANCE)


def test_decay_is_monotone_after_warmup():
    factors = [warmup_cosine_factor(t, 5, 40, 0.05) for t in range(5, 41)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))


def test_no_warmup_starts_at_peak():
    assert warmup_cosine_factor(0, 0, 10) == 1.0


def test_warmup_longer_than_run_stays_linear():
    assert warmup_cosine_factor(5, warmup_steps=20, total_steps=10) == pytest.approx(0.3, abs=TOLERANCE)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((-1, 2, 10, 0.0), "step must be >= 0"),
        ((0, -2, 10, 0.0), "warmup_steps must be >= 0"),
        ((0, 2, 0, 0.0), "total_steps must be >= 1"),
        ((0, 2, 10, 1.5), r"min_lr_ratio must be in \[0, 1\], got 1.5"),
    ],
)
def test_factor_rejects_invalid_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        warmup_cosine_factor(*arguments)


def fake_optimizer(*lrs):
    return SimpleNamespace(param_groups=[{"lr": lr} for lr in lrs])


def test_schedule_scales_every_group_by_step():
    optimizer = fake_optimizer(0.1, 0.02)
    schedule = WarmupCosineSchedule(optimizer, warmup_steps=2, total_steps=6, min_lr_ratio=0.0)
    assert schedule.get_last_lr() == pytest.approx([0.05, 0.01], abs=TOLERANCE)
    seen = []
    for _ in range(6):
        schedule.step()
        seen.append(schedule.get_last_lr()[0])
    expected = [0.1 * warmup_cosine_factor(t, 2, 6) for t in range(1, 7)]
    assert seen == pytest.approx(expected, abs=TOLERANCE)
    assert seen[-1] == pytest.approx(0.0, abs=TOLERANCE)


def test_schedule_state_round_trip_restores_rates():
    optimizer = fake_optimizer(0.1)
    schedule = WarmupCosineSchedule(optimizer, warmup_steps=3, total_steps=20)
    for _ in range(7):
        schedule.step()
    state = schedule.state_dict()

    other_optimizer = fake_optimizer(0.1)
    other = WarmupCosineSchedule(other_optimizer, warmup_steps=3, total_steps=20)
    other.load_state_dict(state)
    assert other.last_step == 7
    assert other_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_schedule_rejects_state_of_other_optimizer():
    schedule = WarmupCosineSchedule(fake_optimizer(0.1, 0.1), warmup_steps=0, total_steps=5)
    state = WarmupCosineSchedule(fake_optimizer(0.1), warmup_steps=0, total_steps=5).state_dict()
    with pytest.raises(ValueError, match="1 peak rates but the optimizer has 2 parameter groups"):
        schedule.load_state_dict(state)


def test_schedule_rejects_object_without_groups():
    with pytest.raises(TypeError, match="optimizer must have param_groups"):
        WarmupCosineSchedule(object(), warmup_steps=0, total_steps=5)
