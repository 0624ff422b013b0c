"""``gradmod attack`` end to end: a tiny trained run on generated IDX files, attacked through the CLI."""

import json
import logging

import numpy as np
import pytest
import torch

from gradmod.cli import main
from gradmod.cli.attack import merge_reports, parse_eps
from gradmod.robustness import RobustnessReport, SanityCheck, evaluate_robustness
from gradmod.training import Trainer
from gradmod.training.checkpoint import CHECKPOINT_NAME
from idx_fixtures import encode_images, encode_labels, write_file
from test_trainer_support import bar_split, one_thread, tiny_config  # noqa: F401 (autouse fixture)

NUM_TEST = 48
ATTACK_IMAGES = 32
EPS = (0.05, 0.2)
EXACT = 1e-12  # accuracies are counts over the same images, so they match exactly


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    """Write learnable IDX files: 256 training and 48 test images of class-coded bars."""
    folder = tmp_path_factory.mktemp("data")
    for prefix, count, seed in (("train", 256, 1), ("t10k", NUM_TEST, 3)):
        split = bar_split(count, seed)
        images = split.images[:, 0].numpy().astype(np.uint8)
        write_file(folder / f"{prefix}-images-idx3-ubyte", encode_images(images), gzipped=True)
        write_file(folder / f"{prefix}-labels-idx1-ubyte", encode_labels(split.labels.numpy()), gzipped=True)
    return folder


@pytest.fixture(scope="module")
def trained(data_folder, tmp_path_factory):
    """Train a tiny CNN for 2 epochs into a run folder; return the folder and the trained Trainer."""
    out = tmp_path_factory.mktemp("run")
    config = tiny_config(**{"data.path": str(data_folder), "data.val_size": 64, "run.out": str(out)})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the autouse one_thread fixture
    try:
        trainer = Trainer(config)
        trainer.fit()
    finally:
        torch.set_num_threads(threads)
    return out, trainer


def attack(run, data_folder, *extra):
    arguments = ["attack", "--checkpoint", str(run), "--data", str(data_folder), "--images", str(ATTACK_IMAGES)]
    return main([*arguments, "--eps", ",".join(map(str, EPS)), "--steps", "3", "--batch-size", "16", *extra])


@pytest.fixture(scope="module")
def attacked(trained, data_folder):
    """Run gradmod attack once (without ART, which takes longer) and return the run folder and the JSON."""
    run, _ = trained
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exit_code = attack(run, data_folder, "--no-art")
    finally:
        torch.set_num_threads(threads)
    assert exit_code == 0
    return run, json.loads((run / "robustness.json").read_text())


def test_attack_writes_json_and_plot(attacked):
    run, result = attacked
    assert [row["eps"] for row in result["per_eps"]] == [0.0, *EPS]
    assert result["num_images"] == ATTACK_IMAGES
    assert result["attacks_used"] == ["fgsm", "pgd-3", "pgd-6"]
    assert result["art"]["used"] is False
    assert result["data"] == {"source": str(result["data"]["source"]), "split": "test", "first_images": ATTACK_IMAGES}
    assert result["run"]["model"] == "cnn"
    assert result["config"]["steps"] == 3
    png = (run / "robustness.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_attack_records_every_sanity_check(attacked):
    _, result = attacked
    names = [check["name"] for check in result["sanity_checks"]]
    assert names == ["accuracy_near_zero_at_large_eps", "pgd_not_weaker_than_fgsm", "more_steps_not_weaker"]
    assert result["sanity_passed"] == all(check["passed"] for check in result["sanity_checks"])
    per_eps_rows = result["sanity_checks"][1]["details"]["per_eps"]
    assert [row["eps"] for row in per_eps_rows] == [0.0, *EPS]


def test_attack_worst_case_below_each_attack(attacked):
    _, result = attacked
    for row in result["per_eps"]:
        for name, accuracy in row["attacks"].items():
            assert row["robust_accuracy"] <= accuracy + EXACT, (row["eps"], name)


def test_attack_eps_zero_is_clean_accuracy(attacked, trained, data_folder):
    _, result = attacked
    _, trainer = trained
    split = bar_split(NUM_TEST, seed=3)
    images = split.images[:ATTACK_IMAGES].float() / 255
    trainer.model.eval()
    with torch.no_grad():
        predictions = trainer.model(images).argmax(dim=1)
    expected = (predictions == split.labels[:ATTACK_IMAGES]).float().mean().item()
    clean_row = result["per_eps"][0]
    assert clean_row["robust_accuracy"] == pytest.approx(expected, abs=EXACT)
    assert result["clean_accuracy"] == pytest.approx(expected, abs=EXACT)
    assert expected > 0.5  # the tiny run learned the bars, so attacks have something to break


def test_attack_prints_table(attacked, trained, data_folder, capsys):
    run, result = attacked
    assert attack(run, data_folder, "--no-art", "--out", str(run / "again.json")) == 0
    output = capsys.readouterr().out
    assert "PGD-3" in output
    assert "worst case" in output
    row = result["per_eps"][-1]
    assert f"{0.2:>8g}  {row['attacks']['pgd-3']:>9.4f}  {row['robust_accuracy']:>10.4f}" in output
    for check in result["sanity_checks"]:
        verdict = "PASS" if check["passed"] else "FAIL"
        assert f"{verdict}  {check['name']}" in output
    assert (run / "again.png").is_file()


def test_attack_with_art_adds_reference_attacks(trained, data_folder, tmp_path):
    pytest.importorskip("art")
    run, _ = trained
    out = tmp_path / "art.json"
    assert attack(run, data_folder, "--eps", "0.1", "--apgd-steps", "2", "--square-queries", "2", "--out", str(out)) == 0
    result = json.loads(out.read_text())
    assert result["attacks_used"] == ["fgsm", "pgd-3", "pgd-6", "apgd-ce", "apgd-dlr", "square"]
    assert result["config"]["apgd_steps"] == 2
    assert result["config"]["square_queries"] == 2


def test_attack_accepts_checkpoint_file(trained, data_folder, tmp_path):
    run, _ = trained
    out = tmp_path / "file.json"
    assert attack(run / CHECKPOINT_NAME, data_folder, "--no-art", "--out", str(out), "--eps", "0.1") == 0
    assert [row["eps"] for row in json.loads(out.read_text())["per_eps"]] == [0.0, 0.1]


def test_attack_warns_before_replacing_result(trained, data_folder, tmp_path, caplog):
    run, _ = trained
    out = tmp_path / "again.json"
    out.write_text("{}")
    with caplog.at_level(logging.WARNING, logger="gradmod"):
        assert attack(run, data_folder, "--no-art", "--out", str(out), "--eps", "0.1") == 0
    assert f"{out} exists and will be replaced" in caplog.text
    assert json.loads(out.read_text())["num_images"] == ATTACK_IMAGES


def test_failed_sanity_check_printed_and_exit_zero(trained, data_folder, tmp_path, capsys, monkeypatch):
    run, _ = trained
    failing = SanityCheck("accuracy_near_zero_at_large_eps", False, "PGD accuracy at eps=0.5 is 0.9", {})

    def evaluate_with_failure(*args, **kwargs):
        """Run the real evaluation, then mark the large-eps check failed, as a masked model would."""
        report = evaluate_robustness(*args, **kwargs)
        report.checks[0] = failing
        return report

    monkeypatch.setattr("gradmod.robustness.evaluate_robustness", evaluate_with_failure)
    out = tmp_path / "failed.json"
    assert attack(run, data_folder, "--no-art", "--out", str(out), "--eps", "0.1") == 0
    captured = capsys.readouterr()
    assert "FAIL  accuracy_near_zero_at_large_eps" in captured.out
    assert "1 of 3 sanity checks FAILED" in captured.err
    result = json.loads(out.read_text())
    assert result["sanity_passed"] is False
    assert result["sanity_checks"][0]["passed"] is False


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--eps": "0.1,abc"}, "--eps: 'abc' is not a number"),
        ({"--eps": "-0.1"}, "--eps: '-0.1' is invalid"),
        ({"--eps": "nan"}, "--eps: 'nan' is invalid"),
        ({"--eps": "1.5"}, "--eps: '1.5' is above 1"),
        ({"--eps": "0.1,0.1"}, "--eps: '0.1' appears twice"),
        ({"--steps": "0"}, "--steps must be an integer >= 1, got 0"),
        ({"--images": "1000"}, f"--images 1000 exceeds the {NUM_TEST} test images"),
        ({"--out": "plot.png"}, "--out plot.png: the JSON result needs another suffix than .png"),
        ({"--device": "gpu7"}, "--device 'gpu7' is not a torch device"),
    ],
)
def test_attack_rejects_bad_arguments(trained, data_folder, capsys, change, message):
    run, _ = trained
    arguments = {"--checkpoint": str(run), "--data": str(data_folder), "--images": "8", "--no-art": None, **change}
    argv = ["attack"]
    for flag, value in arguments.items():
        argv += [flag] if value is None else [flag, value]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error
    assert len(error.strip().splitlines()) == 1


def test_attack_missing_checkpoint(tmp_path, capsys):
    assert main(["attack", "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert f"--checkpoint {tmp_path / 'nothing'}: no such file or folder" in capsys.readouterr().err


def test_attack_folder_without_checkpoint(tmp_path, capsys):
    assert main(["attack", "--checkpoint", str(tmp_path)]) == 2
    assert f"--checkpoint {tmp_path}: the folder has no checkpoint.pt" in capsys.readouterr().err


def test_attack_unreadable_checkpoint(tmp_path, capsys):
    broken = tmp_path / CHECKPOINT_NAME
    broken.write_bytes(b"not a checkpoint")
    assert main(["attack", "--checkpoint", str(broken)]) == 2
    assert f"--checkpoint {broken}: cannot read the checkpoint" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["attack", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--checkpoint", "--eps", "--norm", "--steps", "--images", "--data", "--no-art", "--apgd-steps",
                 "--square-queries", "--batch-size", "--seed", "--out", "--device", "--threads"):
        assert flag in text, flag
    assert "[0, 1] pixel units" in text
    assert "Exit code 0" in text


def test_parse_eps_adds_zero_first():
    assert parse_eps("0.2, 0.05", "linf") == [0.0, 0.2, 0.05]
    assert parse_eps("0,0.1", "linf") == [0.0, 0.1]
    assert parse_eps("2.5", "l2") == [0.0, 2.5]


def test_merge_matches_single_evaluation(trained):
    """Per-eps evaluation merged equals one evaluate_robustness call over every eps."""
    _, trainer = trained
    split = bar_split(NUM_TEST, seed=3)
    images, labels = split.images[:16], split.labels[:16]
    settings = {"steps": 2, "use_art": False, "batch_size": 8}
    eps_values = [0.0, 0.05, 0.2]
    whole = evaluate_robustness(trainer.model, images, labels, eps_values, **settings)
    merged = merge_reports([evaluate_robustness(trainer.model, images, labels, [eps], **settings) for eps in eps_values])
    assert isinstance(merged, RobustnessReport)
    assert merged.to_dict() == whole.to_dict()


def single_eps_report(eps, pgd_accuracy, fgsm_accuracy, num_images=10):
    """Return a hand-made one-eps report with FGSM, PGD-3 and PGD-6 accuracies."""
    return RobustnessReport(
        norm="linf",
        eps=[eps],
        num_images=num_images,
        clean_accuracy=0.9,
        robust_accuracy={eps: min(pgd_accuracy, fgsm_accuracy)},
        attack_accuracy={"fgsm": {eps: fgsm_accuracy}, "pgd-3": {eps: pgd_accuracy}, "pgd-6": {eps: pgd_accuracy}},
        attacks_used=["fgsm", "pgd-3", "pgd-6"],
        art_used=False,
        art_note="ART disabled",
        checks=[SanityCheck("accuracy_near_zero_at_large_eps", True, "within the limit", {})],
        config={"steps": 3, "more_steps": 6, "noise_z": 2.0},
    )


def test_merge_recomputes_checks_over_every_eps():
    # At eps 0.2 PGD (0.9) exceeds FGSM (0.1) by 0.8, above the noise
    # max(2 * sqrt(0.9 * 0.1 / 10), 1 / 10) = 0.19, so the merged check fails there.
    merged = merge_reports([single_eps_report(0.1, 0.2, 0.3), single_eps_report(0.2, 0.9, 0.1)])
    assert merged.eps == [0.1, 0.2]
    assert merged.attack_accuracy["fgsm"] == {0.1: 0.3, 0.2: 0.1}
    assert merged.robust_accuracy == {0.1: 0.2, 0.2: 0.1}
    assert [check.name for check in merged.checks] == [
        "accuracy_near_zero_at_large_eps",
        "pgd_not_weaker_than_fgsm",
        "more_steps_not_weaker",
    ]
    assert merged.checks[1].passed is False
    assert "eps=0.2" in merged.checks[1].message
    assert "eps=0.1" not in merged.checks[1].message
    assert merged.checks[2].passed is True


def test_merge_rejects_mismatched_reports():
    with pytest.raises(ValueError, match="at least one RobustnessReport"):
        merge_reports([])
    with pytest.raises(ValueError, match="reports must share num_images"):
        merge_reports([single_eps_report(0.1, 0.2, 0.3), single_eps_report(0.2, 0.2, 0.3, num_images=20)])
    with pytest.raises(ValueError, match=r"each eps once, got eps \[0.1, 0.1\]"):
        merge_reports([single_eps_report(0.1, 0.2, 0.3), single_eps_report(0.1, 0.2, 0.3)])


def test_attack_l2_norm(trained, data_folder, tmp_path):
    run, _ = trained
    out = tmp_path / "l2.json"
    assert attack(run, data_folder, "--no-art", "--norm", "l2", "--eps", "0.5,2", "--out", str(out)) == 0
    result = json.loads(out.read_text())
    assert result["norm"] == "l2"
    assert [row["eps"] for row in result["per_eps"]] == [0.0, 0.5, 2.0]
    # The large-eps check for L2 reaches the grey image from any 28x28 image: 0.5 * sqrt(784) = 14.
    assert result["config"]["large_eps"] == 14.0


def test_attack_rejects_foreign_checkpoint(tmp_path, capsys):
    foreign = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    assert main(["attack", "--checkpoint", str(foreign)]) == 2
    assert f"--checkpoint {foreign}: not a gradmod train checkpoint" in capsys.readouterr().err
