"""Arms, LGM variants named on the command line, and the targets each run gets."""

import pytest

from gradmod.benchmark.arms import resolve_arms
from gradmod.benchmark.matrix import build_matrix
from gradmod.benchmark.presets import get_preset


def test_lgm_variant_sets_policy_options_and_config_keys():
    arms = resolve_arms(["lgm:feedback=centred:beta=0.05:schedule.min_lr_ratio=1"])
    assert [arm.name for arm in arms] == ["baseline", "lgm:feedback=centred:beta=0.05:schedule.min_lr_ratio=1"]
    changes = arms[1].changes
    assert changes["modulation.policy"] == "hypergradient"
    assert changes["modulation.options"] == {"feedback": "centred", "beta": 0.05}
    assert changes["schedule.min_lr_ratio"] == 1
    assert arms[1].summary == "lgm with feedback=centred, beta=0.05, schedule.min_lr_ratio=1"


@pytest.mark.parametrize(
    "name, message",
    [
        ("lgm:feedback", "'feedback' is not KEY=VALUE"),
        ("lgm:feedbak=raw", "invalid option 'feedbak'.*did you mean 'feedback'"),
        ("lgm:normalise=mean", "normalise must be one of"),
        ("lgm:beta=-1", "beta must be >= 0"),
        ("lgm", None),
        ("baseline:beta=0.1", "'baseline' has no gain policy"),
        ("lgn:beta=0.1", "unknown arm 'lgn'; did you mean 'lgm'"),
    ],
)
def test_lgm_variant_rejected_before_any_run(name, message):
    if message is None:  # a plain arm name stays valid
        assert resolve_arms([name])[1].name == name
        return
    with pytest.raises(ValueError, match=message):
        resolve_arms([name])


def test_variants_of_other_arms():
    baseline, constant = resolve_arms(["baseline:schedule.min_lr_ratio=1"])
    assert constant.changes == {"schedule.min_lr_ratio": 1}
    assert constant.summary == "baseline with schedule.min_lr_ratio=1"
    agc = resolve_arms(["agc:clipping=0.01"])[1]
    assert agc.changes["modulation.options"] == {"clipping": 0.01}
    assert agc.changes["modulation.apply"] == "gradient"


def test_matrix_applies_variant_and_per_training_targets():
    preset = get_preset("full")
    arms = resolve_arms(["lgm:feedback=relative:smoothing=0.8"])
    specs = build_matrix(preset, ["cnn", "vit"], arms, [0], [1.0], ["standard", "fgsm_rs"])
    targets = {(spec.workload, spec.training): spec.config["target_accuracy"] for spec in specs}
    assert targets == {("cnn", "standard"): 0.88, ("vit", "standard"): 0.76, ("cnn", "fgsm_rs"): 0.82, ("vit", "fgsm_rs"): 0.58}
    variant = next(spec for spec in specs if spec.arm != "baseline")
    assert variant.config["modulation"]["options"] == {"feedback": "relative", "smoothing": 0.8}
    baseline = next(spec for spec in specs if spec.arm == "baseline" and spec.workload == variant.workload)
    assert variant.key != baseline.key
