"""What every command shares: --help, one-line errors for bad model files; and `kerascnn export`
through the CLI (the exporter itself: test_export.py)."""
import numpy as np
import pytest

from tests.support import assert_one_line_error, cli

MODEL_COMMANDS = [["evaluate"], ["export", "--out", "exp"], ["filters"], ["activations", "--digit", "7"],
                  ["occlude", "--digit", "7"], ["attack", "nontargeted", "--steps", "1"]]


def test_every_command_has_help():
    result = cli("--help")
    assert result.exit_code == 0
    commands = [line.split()[0] for line in result.output.split("Commands:")[1].strip().splitlines()]
    assert {"train", "summary", "evaluate", "export", "attack", "filters", "activations", "occlude", "compare",
            "report"} <= set(commands)
    for command in commands:
        sub = cli(command, "--help")
        assert sub.exit_code == 0, command
        assert "Usage:" in sub.output
    attacks = cli("attack", "--help").output.split("Commands:")[1].split()
    for name in ("nontargeted", "targeted", "noise"):
        assert name in attacks
        assert "Usage:" in cli("attack", name, "--help").output


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04broken zip"])
def test_bad_model_files_get_one_line(tmp_path, monkeypatch, idx_dir, content):
    monkeypatch.chdir(tmp_path)  # the default --out folders land here, if anywhere
    bad = tmp_path / "bad.keras"
    bad.write_bytes(content)
    for command in MODEL_COMMANDS:
        result = cli(*command, "--model", bad, "--data-dir", idx_dir)
        assert_one_line_error(result, str(bad), exit_code=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.keras"]  # no --out folder was made


def test_missing_model_and_data_name_what_is_missing(tmp_path, monkeypatch, tiny_model_path):
    monkeypatch.chdir(tmp_path)
    result = cli("evaluate", "--model", tiny_model_path, "--data-dir", tmp_path / "nothing-here")
    assert_one_line_error(result, "--data-dir", exit_code=2)  # refused at parse time, naming the option
    result = cli("evaluate", "--model", "/nonexistent/model.keras")
    assert_one_line_error(result, "model file not found: /nonexistent/model.keras", exit_code=1)
    result = cli("evaluate", "--dataset", "Not A Name")
    assert_one_line_error(result, "--dataset", exit_code=2)
    assert list(tmp_path.iterdir()) == []


def test_export_checks_the_savedmodel(tmp_path, idx_dir, tiny_model_path):
    import tensorflow as tf

    from tests.support import load_model

    out = tmp_path / "exp"
    result = cli("export", "--model", tiny_model_path, "--data-dir", idx_dir, "--out", out)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and (out / "saved_model.pb").is_file()
    assert "on 200 test images" in result.output  # the task's test images, not random ones
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    spec = serve.structured_input_signature[1]["images"]
    assert spec.shape.as_list() == [None, 28, 28, 1] and spec.dtype == tf.float32
    images = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    served = serve(images=tf.constant(images))
    np.testing.assert_allclose(served["logits"].numpy(), load_model(tiny_model_path)(images).numpy(), atol=1e-5)
    np.testing.assert_allclose(served["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # no temporary folder left


def test_missing_out_for_export_is_refused(tiny_model_path):
    result = cli("export", "--model", tiny_model_path)
    assert result.exit_code == 2 and "--out" in result.output
