"""Tests of robust evaluation: per-eps accuracy, the report, gradient-masking checks and the plot."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from torch import nn

import gradmod.robustness.evaluate as evaluate_module
from gradmod.robustness import (
    RobustnessReport,
    evaluate_robustness,
    fgsm,
    noise_tolerance,
    pgd,
    plot_robustness,
    robust_accuracy,
)
from gradmod.robustness.sanity import check_large_eps, check_more_steps, check_pgd_vs_fgsm
from test_robustness_toys import trained_classifier

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class SaturatedLogits(nn.Module):
    """Multiply logits by 1000: the softmax saturates, cross-entropy gradients vanish in float32."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, images):
        return 1000.0 * self.inner(images)


def plain_accuracy(model, images, labels) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


# --- robust_accuracy ---------------------------------------------------------


def test_robust_accuracy_matches_direct_attack():
    model, images, labels = trained_classifier()
    result = robust_accuracy(model, images, labels, [0.0, 0.08], steps=10, batch_size=64, seed=3)
    generator = torch.Generator().manual_seed(3)
    expected = [
        pgd(model, images[start : start + 64], labels[start : start + 64], eps=0.08, steps=10, generator=generator)
        for start in range(0, 200, 64)
    ]
    assert list(result) == [0.0, 0.08]
    assert result[0.0] == plain_accuracy(model, images, labels)
    assert result[0.08] == pytest.approx(plain_accuracy(model, torch.cat(expected), labels))


def test_robust_accuracy_fgsm_and_monotone_in_eps():
    model, images, labels = trained_classifier()
    result = robust_accuracy(model, images, labels, [0.04, 0.08, 0.12], attack="fgsm")
    assert result[0.08] == plain_accuracy(model, fgsm(model, images, labels, 0.08), labels)
    assert result[0.04] >= result[0.08] >= result[0.12]


def test_robust_accuracy_same_seed_same_result():
    model, images, labels = trained_classifier()
    first = robust_accuracy(model, images, labels, [0.075], steps=5, seed=7)
    second = robust_accuracy(model, images, labels, [0.075], steps=5, seed=7)
    assert first == second


def test_robust_accuracy_restores_train_mode():
    model, images, labels = trained_classifier()
    model.train()
    robust_accuracy(model, images, labels, [0.05], steps=2)
    assert all(module.training for module in model.modules())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps_list": []}, "eps_list must contain at least one eps"),
        ({"eps_list": [0.1, -0.1]}, r"each eps in eps_list must be a finite number >= 0.*-0\.1"),
        ({"eps_list": [0.1], "attack": "cw"}, r"attack must be one of \('fgsm', 'pgd'\), got 'cw'"),
        ({"eps_list": [0.1], "steps": 0}, "steps must be an integer >= 1, got 0"),
        ({"eps_list": [0.1], "norm": "l0"}, "norm must be one of"),
    ],
)
def test_robust_accuracy_rejects_bad_arguments(kwargs, message):
    model, images, labels = trained_classifier()
    with pytest.raises(ValueError, match=message):
        robust_accuracy(model, images, labels, **kwargs)


# --- sanity checks on hand-made numbers --------------------------------------


def test_noise_tolerance_formula():
    assert noise_tolerance(0.5, 100, z=2.0) == pytest.approx(2.0 * math.sqrt(0.25 / 100))
    assert noise_tolerance(0.0, 200) == pytest.approx(1.0 / 200)
    with pytest.raises(ValueError, match="num_images must be >= 1, got 0"):
        noise_tolerance(0.5, 0)


def test_check_pgd_vs_fgsm_verdicts():
    # With n = 100 and p = 0.5 the tolerance is 0.1.
    assert check_pgd_vs_fgsm({0.1: 0.55}, {0.1: 0.5}, 100).passed
    failed = check_pgd_vs_fgsm({0.1: 0.65}, {0.1: 0.5}, 100)
    assert not failed.passed
    assert "eps=0.1: pgd 0.6500 > fgsm 0.5000" in failed.message
    assert failed.details["per_eps"][0]["tolerance"] == pytest.approx(2.0 * math.sqrt(0.65 * 0.35 / 100))


def test_check_more_steps_and_large_eps_verdicts():
    assert check_more_steps({0.1: 0.30}, {0.1: 0.29}, 20, 40, 200).passed
    assert not check_more_steps({0.1: 0.30}, {0.1: 0.45}, 20, 40, 200).passed
    assert check_large_eps(0.05, 0.5, 0.10).passed
    assert not check_large_eps(0.15, 0.5, 0.10).passed


# --- evaluate_robustness -----------------------------------------------------


def test_evaluate_robustness_without_art():
    model, images, labels = trained_classifier()
    report = evaluate_robustness(model, images, labels, [0.0, 0.08], steps=10, use_art=False)
    assert report.attacks_used == ["fgsm", "pgd-10", "pgd-20"]
    assert not report.art_used
    assert "use_art=False" in report.art_note
    assert report.clean_accuracy == 1.0
    assert report.robust_accuracy[0.0] == 1.0
    for name in report.attacks_used:
        assert report.robust_accuracy[0.08] <= report.attack_accuracy[name][0.08]
    assert report.sanity_passed
    assert [check.name for check in report.checks] == [
        "accuracy_near_zero_at_large_eps",
        "pgd_not_weaker_than_fgsm",
        "more_steps_not_weaker",
    ]


def test_evaluate_robustness_flags_gradient_masking(caplog):
    model, images, labels = trained_classifier()
    masked = SaturatedLogits(model)
    with caplog.at_level(logging.WARNING, logger="gradmod.robustness.evaluate"):
        report = evaluate_robustness(masked, images, labels, [0.08], steps=10, use_art=False)
    as_dict = report.to_dict()
    large_eps = as_dict["sanity_checks"][0]
    assert report.robust_accuracy[0.08] == 1.0
    assert not as_dict["sanity_passed"]
    assert large_eps["name"] == "accuracy_near_zero_at_large_eps"
    assert not large_eps["passed"]
    assert large_eps["details"]["accuracy"] == 1.0
    assert "accuracy_near_zero_at_large_eps failed" in caplog.text


def test_report_json_round_trip(tmp_path):
    model, images, labels = trained_classifier()
    report = evaluate_robustness(model, images[:50], labels[:50], [0.05], steps=5, use_art=False)
    path = report.save_json(tmp_path / "report.json")
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(report.to_json())
    assert loaded["per_eps"][0]["eps"] == 0.05
    assert loaded["per_eps"][0]["robust_accuracy"] == report.robust_accuracy[0.05]
    assert loaded["config"]["steps"] == 5
    assert loaded["num_images"] == 50


def test_evaluate_robustness_requires_art_when_asked(monkeypatch):
    monkeypatch.setattr(evaluate_module, "art_installed", lambda: False)
    model, images, labels = trained_classifier()
    with pytest.raises(ImportError, match="use_art=True needs the adversarial-robustness-toolbox"):
        evaluate_robustness(model, images, labels, [0.05], use_art=True)


def test_evaluate_robustness_falls_back_without_art(monkeypatch):
    monkeypatch.setattr(evaluate_module, "art_installed", lambda: False)
    model, images, labels = trained_classifier()
    report = evaluate_robustness(model, images[:40], labels[:40], [0.05], steps=3)
    assert not report.art_used
    assert "not installed" in report.art_note
    assert report.attacks_used == ["fgsm", "pgd-3", "pgd-6"]


def test_evaluate_robustness_with_art_worst_case():
    pytest.importorskip("art")
    model, images, labels = trained_classifier()
    masked = SaturatedLogits(model)
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter)
    model.train()
    report = evaluate_robustness(masked, images, labels, [0.08], steps=10, apgd_steps=10, square_queries=20)
    accuracy = report.attack_accuracy
    assert report.art_used
    assert report.attacks_used == ["fgsm", "pgd-10", "pgd-20", "apgd-ce", "apgd-dlr", "square"]
    # The difference-of-logits-ratio loss ignores the logit scale, so it breaks the saturated model.
    assert accuracy["pgd-10"][0.08] == 1.0
    assert accuracy["apgd-dlr"][0.08] <= 0.5
    assert report.robust_accuracy[0.08] == min(accuracy[name][0.08] for name in report.attacks_used)
    assert all(module.training for module in model.modules())
    assert all(torch.equal(parameter.grad, torch.ones_like(parameter)) for parameter in model.parameters())
    assert all(parameter.requires_grad for parameter in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"more_steps_factor": 1}, "more_steps_factor must be an integer >= 2, got 1"),
        ({"max_accuracy_at_large_eps": 1.5}, r"max_accuracy_at_large_eps must be in \[0, 1\], got 1\.5"),
        ({"noise_z": -1.0}, r"noise_z must be a finite number >= 0, got -1\.0"),
        ({"large_eps": -0.5}, r"large_eps must be a finite number >= 0"),
        ({"apgd_steps": 0}, "apgd_steps must be an integer >= 1, got 0"),
    ],
)
def test_evaluate_robustness_rejects_bad_arguments(kwargs, message):
    model, images, labels = trained_classifier()
    with pytest.raises(ValueError, match=message):
        evaluate_robustness(model, images, labels, [0.05], use_art=False, **kwargs)


# --- plot ----------------------------------------------------------------------


def _report() -> RobustnessReport:
    return RobustnessReport(
        norm="linf",
        eps=[0.0, 0.05, 0.1],
        num_images=10,
        clean_accuracy=0.9,
        robust_accuracy={0.0: 0.9, 0.05: 0.5, 0.1: 0.1},
        attack_accuracy={"pgd-20": {0.0: 0.9, 0.05: 0.5, 0.1: 0.1}},
        attacks_used=["pgd-20"],
        art_used=False,
        art_note="test",
    )


@pytest.mark.parametrize(
    "curves",
    [
        _report(),
        _report().to_dict(),
        {0.0: 0.9, 0.1: 0.2},
        {"baseline": _report(), "lgm": {0.0: 0.95, 0.1: 0.3}},
        [_report(), _report().to_dict()],
    ],
    ids=["report", "report-dict", "eps-mapping", "labelled", "list"],
)
def test_plot_robustness_writes_png(tmp_path, curves):
    path = plot_robustness(curves, tmp_path / "robustness.png", title="toy")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1000


def test_plot_robustness_rejects_unknown_input(tmp_path):
    with pytest.raises(TypeError, match="each curve must be a RobustnessReport"):
        plot_robustness({"arm": [1, 2, 3]}, tmp_path / "bad.png")
