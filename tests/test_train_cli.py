import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from gradmod.cli import main
from gradmod.cli.train import OVERRIDES, SWITCHES
from gradmod.models import MODELS
from gradmod.training import TrainConfig, load_checkpoint
from idx_fixtures import write_fashion_mnist
from test_trainer_support import one_thread  # noqa: F401 (fixture)

TINY_TOML = """\
[model]
name = "cnn"
options = { width = 4, hidden = 16 }

[data]
val_size = 40
batch_size = 32
eval_batch_size = 64

[schedule]
warmup_steps = 2
"""
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SIGNAL_WAIT_SECONDS = 120  # generous: the machine running the tests may be busy


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fashion-mnist")
    write_fashion_mnist(folder, num_train=200, num_test=40)
    return folder


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


def run_cli(*arguments):
    return main(["train", *map(str, arguments)])


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in [flag for flag, _, _ in OVERRIDES] + [flag for flag, _, _ in SWITCHES]:
        assert flag in text, flag
    for flag in ("--config FILE", "--resume DIR", "--time-budget SECONDS"):
        assert flag in text, flag
    for unit in ("--eval-every STEPS", "--batch-size IMAGES", "--target-accuracy FRACTION", "--train-subset IMAGES"):
        assert unit in text, unit


def test_train_writes_run_folder(data_folder, config_file, tmp_path, capsys):
    out = tmp_path / "run"
    code = run_cli("--config", config_file, "--data", data_folder, "--epochs", 1, "--out", out, "--quiet", "--csv",
                   "--target-accuracy", 0.05, "--seed", 3)
    assert code == 0
    printed = capsys.readouterr().out
    assert "test accuracy:" in printed
    assert "target 0.0500: " in printed  # random labels: reached or not, the line is printed
    for name in ("metrics.jsonl", "events.jsonl", "metrics.csv", "config.json", "checkpoint.pt", "result.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 3
    assert config["model"]["options"] == {"width": 4, "hidden": 16}
    assert json.loads((out / "result.json").read_text())["steps"] == 160 // 32


def test_flags_override_config_file(data_folder, config_file, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--config", config_file, "--data", data_folder, "--max-steps", 2, "--batch-size", 16,
                   "--lr", 0.01, "--optimizer", "adamw", "--out", out, "--quiet") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["batch_size"] == 16
    assert config["optimizer"] == {**config["optimizer"], "name": "adamw", "lr": 0.01}
    assert config["max_steps"] == 2


def test_adversarial_flags_set_config(data_folder, config_file, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--config", config_file, "--data", data_folder, "--max-steps", 2, "--adversarial", "fgsm_rs",
                   "--adversarial-eps", 0.05, "--out", out, "--quiet") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["adversarial"]["method"] == "fgsm_rs"
    assert config["adversarial"]["eps"] == 0.05


@pytest.mark.parametrize(
    "toml, flags, message",
    [
        ("[optimizer]\nlearnin_rate = 0.1\n", [], "unknown key 'optimizer.learnin_rate'"),
        ("[optimiser]\n", [], "did you mean 'optimizer'?"),
        ('[optimizer]\nlr = "fast"\n', [], "optimizer.lr: expected a number, got 'fast' (str)"),
        ('model = "cnn"\n', [], "model: expected a table (dict), got 'cnn'"),
        ('run = 3\n', [], "run in the config file must be a table, got 3"),
        ("epochs = 0\n", [], "epochs must be >= 1, got 0"),
        ("", ["--lr", "-1"], "optimizer.lr must be > 0.0, got -1.0"),
        ("", ["--model", "vitt"], "did you mean 'vit'?"),
        ("", ["--modulation", "hypergradent"], "did you mean 'hypergradient'?"),
        ("", ["--target-accuracy", "90"], "target_accuracy must be <= 1.0, got 90.0"),
        ("epochs = [\n", [], "is not valid TOML"),
        ("", ["--data", "/nonexistent/fashion"], "Fashion-MNIST not found"),
        ("", ["--time-budget", "0"], "--time-budget must be > 0 seconds"),
    ],
)
def test_invalid_input_exits_2_with_one_line(toml, flags, message, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    code = run_cli("--config", config, "--out", tmp_path / "run", "--quiet", *flags)
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert error[0].startswith("gradmod train: error: ")
    assert message in error[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda path: path.name)
def test_example_configs_are_valid(path):
    with path.open("rb") as file:
        config = TrainConfig.from_dict(tomllib.load(file))
    assert config.model.name in MODELS


def test_missing_config_file_exits_2(tmp_path, capsys):
    assert run_cli("--config", tmp_path / "absent.toml") == 2
    assert f"config file not found: {tmp_path / 'absent.toml'}" in capsys.readouterr().err


def test_wrong_flag_type_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("--epochs", "many")
    assert exit_info.value.code == 2
    assert "argument --epochs: invalid int value: 'many'" in capsys.readouterr().err


def test_config_error_in_subprocess_has_no_traceback(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[run]\neval_evry = 5\n")
    completed = subprocess.run(
        [sys.executable, "-m", "gradmod", "train", "--config", str(config)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip() == (
        "gradmod train: error: unknown key 'run.eval_evry'; did you mean 'eval_every'? (valid keys in [run]: "
        "out, eval_every, log_every, gains_every, checkpoint_every, csv, tensorboard, quiet, overwrite, stop_at_target)"
    )


def test_resume_rejects_training_flags(data_folder, config_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("--config", config_file, "--data", data_folder, "--max-steps", 2, "--out", out, "--quiet") == 0
    assert run_cli("--resume", out, "--lr", 0.3) == 2
    assert "--lr cannot change when resuming" in capsys.readouterr().err
    assert run_cli("--resume", out, "--config", config_file) == 2
    assert "--config cannot be combined with --resume" in capsys.readouterr().err
    assert run_cli("--resume", tmp_path / "absent") == 2
    assert "no such run folder" in capsys.readouterr().err


def test_resume_finished_run_succeeds(data_folder, config_file, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--config", config_file, "--data", data_folder, "--max-steps", 3, "--out", out, "--quiet") == 0
    first = json.loads((out / "result.json").read_text())
    assert run_cli("--resume", out, "--quiet", "--data", data_folder) == 0
    again = json.loads((out / "result.json").read_text())
    assert again["steps"] == first["steps"] == 3
    assert again["test_accuracy"] == first["test_accuracy"]


def test_existing_run_folder_needs_resume(data_folder, config_file, tmp_path, capsys):
    out = tmp_path / "run"
    arguments = ("--config", config_file, "--data", data_folder, "--max-steps", 2, "--out", out, "--quiet")
    assert run_cli(*arguments) == 0
    assert run_cli(*arguments) == 2
    assert f"resume it (gradmod train --resume {out})" in capsys.readouterr().err


def wait_for_lines(path: Path, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + SIGNAL_WAIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"training exited early with code {process.returncode}: {process.stderr.read()}")
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} did not reach {count} lines within {SIGNAL_WAIT_SECONDS} s")


def test_sigterm_exits_143_with_checkpoint(data_folder, config_file, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "gradmod", "train", "--config", str(config_file), "--data", str(data_folder),
               "--epochs", "500", "--out", str(out), "--quiet", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for_lines(out / "metrics.jsonl", 3, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=SIGNAL_WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143
    assert "Traceback" not in stderr
    assert f"resume with: gradmod train --resume {out}" in stderr
    state = load_checkpoint(out)
    assert state["step"] >= 3
    assert state["step"] < 500 * 5
    assert not (out / "result.json").exists()


@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery to a child needs POSIX")
def test_sigint_exits_130(data_folder, config_file, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "gradmod", "train", "--config", str(config_file), "--data", str(data_folder),
               "--epochs", "500", "--out", str(out), "--quiet", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for_lines(out / "metrics.jsonl", 3, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=SIGNAL_WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "training stopped by SIGINT" in stderr
    assert load_checkpoint(out)["step"] >= 3
