import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from kerascnn import store
from tests.support import needs_mnist, needs_pretrained


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_every_command_has_help():
    result = run("--help")
    assert result.exit_code == 0
    commands = [line.split()[0] for line in result.output.split("Commands:")[1].strip().splitlines()]
    assert {"train", "summary", "evaluate", "export", "attack"} <= set(commands)
    for command in commands:
        sub = run(command, "--help")
        assert sub.exit_code == 0, command
        assert "Usage:" in sub.output


def test_summary_json_agrees_with_the_assignment():
    result = run("summary", "--json")
    assert result.exit_code == 0
    table = json.loads(result.output)
    assert table["total_params"] == 799_078
    assert table["conv_params"] == 9_568 and table["dense_params"] == 789_510
    assert [layer["params"] for layer in table["layers"] if layer["params"]] == [320, 9_248, 784_500, 5_010]
    text = run("summary")
    assert "799,078" in text.output and "9,568 (320 + 9,248)" in text.output


def test_train_on_a_small_dataset_writes_every_file(tmp_path, idx_dir):
    out = tmp_path / "run"
    result = run("train", "--data-dir", idx_dir, "--epochs", 2, "--batch-size", 32, "--val-size", 100,
                 "--val-every", 8, "--precision", "fp32", "--tensorboard", "--out", out)
    assert result.exit_code == 0, result.output
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    for name in ("model.keras", "history.csv", "steps.csv", "metrics.json", "loss.png", "accuracy.png",
                 "predictions.png", "confusion.png"):
        assert (out / name).stat().st_size > 0, name
        assert (out / name).read_bytes()[:4] in (b"\x89PNG", b"PK\x03\x04", b"epoc", b"{\n  ") or name.endswith(".csv")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["batch_size"] == 32 and metrics["batchnorm"] is False
    assert "test accuracy" in result.output
    assert len(store.read_csv(out / "steps.csv")) == 2 * 16


def test_train_resumes_an_interrupted_run(tmp_path, idx_dir):
    from tests.test_training import StopAt
    from kerascnn.training import TrainConfig, TrainingInterrupted, train

    out = tmp_path / "run"
    cfg = TrainConfig(epochs=2, batch_size=32, val_size=100, out_dir=str(out), data_dir=str(idx_dir),
                      precision="fp32")
    with pytest.raises(TrainingInterrupted):
        train(cfg, verbose=0, callbacks=(StopAt(1),))
    result = run("train", "--data-dir", idx_dir, "--epochs", 2, "--batch-size", 32, "--val-size", 100,
                 "--precision", "fp32", "--out", out)
    assert result.exit_code == 0, result.output
    assert "resuming from epoch 1 of 2" in result.output
    assert json.loads((out / "metrics.json").read_text())["resumed_from_epoch"] == 1


@pytest.mark.parametrize("args,message", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "-1"], "--batch-size"),
    (["--lr", "0"], "--lr"),
])
def test_train_refuses_bad_numbers(tmp_path, args, message):
    result = run("train", "--out", tmp_path / "never", *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]
    assert not (tmp_path / "never").exists()


def test_train_refuses_an_unwritable_out(tmp_path, idx_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("train", "--data-dir", idx_dir, "--out", blocker / "run")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: cannot create folder {blocker / 'run'}: Not a directory"]


def test_missing_mnist_names_both_ways_to_give_it(tmp_path):
    result = run("evaluate", "--data-dir", tmp_path / "nothing-here")
    assert result.exit_code == 1 and "not a folder" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("evaluate", "--model", "/nonexistent/model.keras")
    assert result.exit_code == 1 and "model file not found" in result.output


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04broken zip"])
def test_bad_model_files_get_one_line(tmp_path, content):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(content)
    for command in (["evaluate"], ["export", "--out", tmp_path / "exp"]):
        result = run(*command, "--model", bad)
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in result.output
    assert not (tmp_path / "exp").exists()


def test_evaluate_json_and_figure(tmp_path, idx_dir, tiny_model_path):
    out = tmp_path / "confusion.png"
    result = run("evaluate", "--model", tiny_model_path, "--data-dir", idx_dir, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["count"] == 200 and 0 <= report["accuracy"] <= 1
    assert sum(map(sum, report["confusion"])) == 200
    assert set(report["per_class_accuracy"]) == {str(c) for c in range(10)}
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_export_checks_the_savedmodel(tmp_path, idx_dir, tiny_model_path):
    result = run("export", "--model", tiny_model_path, "--data-dir", idx_dir, "--out", tmp_path / "exp")
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and (tmp_path / "exp" / "saved_model.pb").is_file()


def test_missing_out_for_export_is_refused(tiny_model_path):
    result = run("export", "--model", tiny_model_path)
    assert result.exit_code == 2 and "--out" in result.output


@needs_mnist
@needs_pretrained
def test_pretrained_model_reaches_99_percent_on_the_real_test_split():
    result = run("evaluate", "--json", "--out", "/dev/null")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["count"] == 10_000
    assert report["accuracy"] >= 0.99


def test_an_interrupted_train_says_how_to_resume_and_exits_130(tmp_path, idx_dir, monkeypatch):
    from kerascnn import training

    def interrupted(config, *args, **kwargs):
        raise training.TrainingInterrupted(tmp_path / "run", 2)

    monkeypatch.setattr(training, "train", interrupted)
    result = run("train", "--data-dir", idx_dir, "--val-size", 100, "--out", tmp_path / "run")
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-1] == (
        f"Error: interrupted after 2 finished epoch(s); run the same command again to resume from {tmp_path / 'run'}")
