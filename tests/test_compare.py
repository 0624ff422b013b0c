"""The comparison harness end to end on tiny generated data, through the CLI."""

import json

import numpy as np
import pytest
import torch

from gradmod.benchmark import runner
from gradmod.benchmark.presets import PRESETS, Preset, WorkloadSetting
from gradmod.cli import main
from idx_fixtures import encode_images, encode_labels, write_file
from test_trainer_support import bar_split, one_thread  # noqa: F401 (autouse fixture)

TINY_PRESET = Preset(
    name="tiny",
    description="a tiny CNN on generated bar images, for tests",
    workloads={
        "cnn": WorkloadSetting(
            "cnn",
            target_accuracy=0.5,
            epochs=2,
            train_subset=256,
            eval_every=4,
            changes={
                "model.options": {"width": 4, "hidden": 16},
                "data.batch_size": 32,
                "data.eval_batch_size": 64,
                "schedule.warmup_steps": 2,
            },
        )
    },
    default_workloads=("cnn",),
    arms=("baseline", "lgm"),
    seeds=(0, 1),
    robust_eps=(0.05, 0.2),
    robust_images=32,
    robust_steps=3,
    val_size=64,
)


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    """Write learnable IDX files: 400 training and 100 test images of class-coded bars."""
    folder = tmp_path_factory.mktemp("data")
    for prefix, count, seed in (("train", 400, 1), ("t10k", 100, 3)):
        split = bar_split(count, seed)
        images = split.images[:, 0].numpy().astype(np.uint8)
        write_file(folder / f"{prefix}-images-idx3-ubyte", encode_images(images), gzipped=True)
        write_file(folder / f"{prefix}-labels-idx1-ubyte", encode_labels(split.labels.numpy()), gzipped=True)
    return folder


@pytest.fixture(scope="module")
def tiny_preset():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "tiny", TINY_PRESET)
        yield TINY_PRESET


def compare(data_folder, out, *extra):
    return main(["compare", "--preset", "tiny", "--data", str(data_folder), "--out", str(out), "--quiet", *extra])


@pytest.fixture(scope="module")
def finished(tiny_preset, data_folder, tmp_path_factory):
    """Run the tiny preset once (two seeds) for the tests that read its output."""
    out = tmp_path_factory.mktemp("compare")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the autouse one_thread fixture
    try:
        exit_code = compare(data_folder, out)
    finally:
        torch.set_num_threads(threads)
    return exit_code, out


def test_compare_writes_results_report_and_plots(finished):
    exit_code, out = finished

    assert exit_code == 0
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert [(r["arm"], r["seed"]) for r in runs] == [("baseline", 0), ("lgm", 0), ("baseline", 1), ("lgm", 1)]
    for run in runs:
        assert run["status"] == "ok"
        assert set(run["robust_accuracy"]) == {"0.05", "0.2"}
        assert 0.0 <= run["test_accuracy"] <= 1.0
        assert run["steps_to_target"] is None or run["steps_to_target"] % 4 == 0
        assert (run["seconds_to_target"] is None) == (run["steps_to_target"] is None)
    assert runs[0]["initial_weights"] == runs[1]["initial_weights"]
    assert runs[0]["initial_weights"] != runs[2]["initial_weights"]
    assert results["fairness_problems"] == []
    assert runs[1]["gains_history"], "the lgm arm must record its gains"
    assert not runs[0]["gains_history"]

    rows = {row["arm"]: row for row in results["summary"]}
    assert set(rows) == {"baseline", "lgm"}
    assert rows["lgm"]["paired_seeds"] == [0, 1]
    assert rows["lgm"]["test_accuracy_difference"]["n"] == 2
    difference = [r["test_accuracy"] for r in runs if r["arm"] == "lgm"]
    base = [r["test_accuracy"] for r in runs if r["arm"] == "baseline"]
    expected = (difference[0] - base[0] + difference[1] - base[1]) / 2
    assert rows["lgm"]["test_accuracy_difference"]["mean"] == pytest.approx(expected)
    assert results["meta"]["versions"]["torch"]
    assert results["meta"]["settings"]["arms"] == ["baseline", "lgm"]

    report = (out / "report.md").read_text()
    assert "| cnn | standard | 1 | lgm |" in report
    for name in ("curves_cnn.png", "gains_cnn.png", "robust_cnn.png"):
        assert (out / name).stat().st_size > 1000


def test_variant_arm_gets_its_gains_plot(finished, tmp_path):
    from gradmod.benchmark.plots import write_plots

    records = json.loads((finished[1] / "results.json").read_text())["runs"]
    for record in records:
        if record["arm"] == "lgm":
            record["arm"] = "lgm:feedback=centred"
    names = {path.name for path in write_plots(records, tmp_path)}
    assert "gains_cnn_feedback=centred.png" in names
    assert "gains_cnn.png" not in names  # no plain lgm arm in these records


def test_compare_again_reuses_finished_runs(finished, data_folder, monkeypatch):
    _, out = finished
    first = json.loads((out / "results.json").read_text())["runs"]
    executed = []
    original = runner.execute_run

    def counting(spec, *args, **kwargs):
        executed.append(spec.label)
        return original(spec, *args, **kwargs)

    monkeypatch.setattr(runner, "execute_run", counting)

    assert compare(data_folder, out, "--seeds", "1,0") == 0

    assert executed == []
    again = json.loads((out / "results.json").read_text())["runs"]
    assert again == first[2:] + first[:2]


def test_failed_run_recorded_and_others_continue(tiny_preset, data_folder, tmp_path, monkeypatch):
    original = runner.execute_run

    def failing(spec, *args, **kwargs):
        if spec.arm == "lgm":
            raise RuntimeError("injected failure")
        return original(spec, *args, **kwargs)

    monkeypatch.setattr(runner, "execute_run", failing)
    out = tmp_path / "out"

    assert compare(data_folder, out, "--seeds", "0") == 1

    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["ok", "failed"]
    assert runs[1]["error"] == "RuntimeError: injected failure"
    assert "FAILED: cnn/lgm/seed 0: RuntimeError: injected failure" in (out / "report.md").read_text()


def test_report_rerenders_from_results(finished):
    _, out = finished
    (out / "report.md").unlink()

    assert main(["report", str(out)]) == 0

    assert "## Summary" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--arms", "lgn"], "unknown arm 'lgn'; did you mean 'lgm'"),
        (["--workloads", "mlp"], "unknown workload 'mlp'"),
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--lr-scale", "0,1"], "learning-rate scales must be > 0"),
    ],
)
def test_compare_rejects_bad_arguments(tiny_preset, data_folder, tmp_path, capsys, arguments, message):
    assert compare(data_folder, tmp_path / "out", *arguments) == 2
    assert message in capsys.readouterr().err


def test_report_missing_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "results.json not found" in capsys.readouterr().err


def test_interrupted_run_resumes_from_checkpoint(finished, tiny_preset, data_folder, tmp_path):
    from gradmod.benchmark.arms import resolve_arms
    from gradmod.benchmark.matrix import build_matrix
    from gradmod.data import load_fashion_mnist
    from gradmod.training import TrainConfig, Trainer

    _, uninterrupted_out = finished
    runs = json.loads((uninterrupted_out / "results.json").read_text())["runs"]
    uninterrupted = next(r for r in runs if r["arm"] == "lgm" and r["seed"] == 0)
    spec = build_matrix(tiny_preset, ["cnn"], resolve_arms(["lgm"]), [0], [1.0], ["standard"])[1]
    dataset = load_fashion_mnist(data_folder, val_size=tiny_preset.val_size)
    folder = tmp_path / "out" / "runs" / spec.key
    config = TrainConfig.from_dict(spec.config).replace(**{"run.out": str(folder)})
    Trainer(config, dataset).fit(max_steps=5)  # stops early and leaves a checkpoint at step 5

    records = runner.run_matrix([spec], dataset, tmp_path / "out", progress=False)

    resumed = records[0]
    assert resumed["status"] == "ok"
    assert resumed["steps"] == uninterrupted["steps"]
    assert resumed["test_accuracy"] == uninterrupted["test_accuracy"]
    assert [p["val_accuracy"] for p in resumed["curve"]] == [p["val_accuracy"] for p in uninterrupted["curve"]]
    assert resumed["gains_history"] == uninterrupted["gains_history"]
