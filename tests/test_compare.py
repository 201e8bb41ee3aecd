import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerascnn.errors import BadValue
from kerascnn.experiments import compare as study
from kerascnn.experiments.compare import Options
from kerascnn.study.engine import local_cores, threads_per_job
from kerascnn.study.seeds import Band, RunRecord, aggregate, band, block_means, first_iteration_reaching
from kerascnn.training.config import TrainConfig
from kerascnn.study.verdict import judge

FIGURES = ("curves_loss.png", "curves_accuracy.png", "test_accuracy.png")


# ---------------------------------------------------------------------------- synthetic runs
def fake_run(batchnorm: bool, seed: int, accuracy: float, reach: int | None = 40, seconds: float = 10.0,
             iterations: int = 100, val_every: int = 20) -> RunRecord:
    """A run of `iterations` steps whose validation accuracy first reaches 98% at `reach`."""
    rng = np.random.default_rng(seed + 100 * batchnorm)
    steps = []
    for i in range(1, iterations + 1):
        row = {"epoch": (i - 1) // 50, "step": i, "loss": float(2.0 / i + 0.01 * rng.random()),
               "accuracy": float(min(1.0, 0.5 + i / 150)), "val_loss": None, "val_accuracy": None}
        if i % val_every == 0:
            row["val_loss"] = 1.0 / i
            row["val_accuracy"] = 0.99 if reach is not None and i >= reach else 0.95
        steps.append(row)
    history = [{"epoch": 1, "seconds": seconds}, {"epoch": 2, "seconds": seconds}]
    metrics = {"test_accuracy": accuracy, "test_loss": 0.03, "epoch_seconds": [seconds, seconds],
               "steps_per_epoch": 50, "epochs": 2, "batchnorm": batchnorm, "seed": seed}
    return RunRecord("cnn_bn" if batchnorm else "cnn", batchnorm, seed, steps, history, metrics)


def runs(plain, bn, **kw):
    return ([fake_run(False, s, a, **kw) for s, a in enumerate(plain)]
            + [fake_run(True, s, a, **kw) for s, a in enumerate(bn)])


# ---------------------------------------------------------------------------- pure parts
def test_first_iteration_reaching_skips_rows_without_validation():
    rows = [{"step": 1, "val_accuracy": None}, {"step": 2, "val_accuracy": 0.97},
            {"step": 3, "val_accuracy": None}, {"step": 4, "val_accuracy": 0.981}, {"step": 5, "val_accuracy": 0.99}]
    assert first_iteration_reaching(rows, 0.98) == 4
    assert first_iteration_reaching(rows, 0.995) is None
    assert first_iteration_reaching([], 0.98) is None


def test_block_means_keep_every_batch_and_drop_the_partial_block():
    x, y = block_means(np.arange(1, 11), np.arange(10.0), points=3)
    np.testing.assert_allclose(x, [2, 5, 8])
    np.testing.assert_allclose(y, [1, 4, 7])
    x, y = block_means(np.arange(1, 3), np.array([1.0, 3.0]), points=100)
    np.testing.assert_allclose(y, [1.0, 3.0])


def test_band_aligns_on_shared_iterations_and_ignores_nan():
    b = band([(np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0])),
              (np.array([2, 3, 4]), np.array([4.0, np.nan, 0.0]))])
    assert isinstance(b, Band) and b.runs == 2
    np.testing.assert_allclose(b.iteration, [2])
    np.testing.assert_allclose([b.mean[0], b.low[0], b.high[0]], [3.0, 2.0, 4.0])


def test_aggregate_bands_and_summary_numbers():
    result = aggregate(runs([0.990, 0.991, 0.992], [0.993, 0.994, 0.995]), {"train": {"val_every": 20}})
    for variant in (result.plain, result.batchnorm):
        assert set(variant.curves) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        train, val = variant.curves["loss"], variant.curves["val_accuracy"]
        assert train.mean.shape == train.low.shape == train.high.shape == (100,)
        assert val.iteration.tolist() == [20, 40, 60, 80, 100]
        assert np.all(train.low <= train.mean + 1e-12) and np.all(train.mean <= train.high + 1e-12)
        assert variant.iterations_to_threshold == [40, 40, 40]
    assert result.plain.accuracy_mean == pytest.approx(0.991)
    assert result.plain.accuracy_std == pytest.approx(0.001)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["variants"]["cnn_bn"]["test_accuracy_mean"] == pytest.approx(0.994)
    assert len(d["variants"]["cnn"]["curves"]["accuracy"]["mean"]) == 100
    assert [r["first_iteration_reaching_threshold"] for r in d["runs"]] == [40] * 6
    assert d["verdict"]["helped"] in ("yes", "no", "no clear difference")


@pytest.mark.parametrize("plain,bn,accuracy,helped,words", [
    ([0.9900, 0.9905, 0.9910], [0.9930, 0.9935, 0.9940], "better", "yes", "Batch norm helped"),
    ([0.9930, 0.9935, 0.9940], [0.9900, 0.9905, 0.9910], "worse", "no", "Batch norm hurt"),
    ([0.9900, 0.9930, 0.9915], [0.9920, 0.9905, 0.9935], "no clear difference", "no clear difference",
     "No clear difference"),
])
def test_verdict_on_accuracy(plain, bn, accuracy, helped, words):
    result = aggregate(runs(plain, bn))
    v = result.verdict
    assert (v.accuracy, v.helped) == (accuracy, helped)
    assert v.sentence.startswith(words)
    assert f"{100 * (np.mean(bn) - np.mean(plain)):+.2f} points" in v.sentence
    assert v.speed == "no clear difference" and "about the same point" in v.sentence


def test_a_variant_at_chance_level_is_not_compared_and_every_parenthesis_closes():
    records = runs([0.9047], [0.1135])
    for record in records:
        record.metrics["classes"] = [str(k) for k in range(10)]
    v = aggregate(records).verdict
    assert v.accuracy == "unknown" and v.sentence.startswith("Not compared: the run with batch norm (11.35%)")
    assert "at chance level (10.00% for 10 classes)" in v.sentence and "train longer" in v.sentence
    for plain, bn in (([0.99], [0.98]), ([0.990, 0.991, 0.992], [0.993, 0.994, 0.995]), ([0.9047], [0.1135])):
        sentence = aggregate(runs(plain, bn)).verdict.sentence  # without class names: compared as before
        assert sentence.count("(") == sentence.count(")"), sentence


def test_a_difference_within_the_seed_spread_is_no_clear_difference():
    # +0.13 points, as one reference report found, but seeds spread over 0.3 points
    result = aggregate(runs([0.9880, 0.9910, 0.9895], [0.9893, 0.9923, 0.9908]))
    assert result.verdict.difference_points == pytest.approx(0.13)
    assert result.verdict.accuracy == "no clear difference"
    assert "seeds alone account for differences up to 0.30 points" in result.verdict.sentence


def test_verdict_on_speed_and_epoch_time():
    records = ([fake_run(False, s, 0.99, reach=60 + 20 * (s == 2), seconds=10 + s) for s in range(3)]
               + [fake_run(True, s, 0.99, reach=20 + 20 * (s == 1), seconds=14 + s) for s in range(3)])
    v = aggregate(records).verdict
    assert (v.accuracy, v.speed, v.epoch_time, v.helped) == ("no clear difference", "faster", "slower", "yes")
    assert "sooner for every seed (median iteration 20 against 60)" in v.sentence
    assert "1.36x as long (15.0 s against 11.0 s)" in v.sentence
    # a seed that never reaches the threshold counts as infinitely late
    records = ([fake_run(False, s, 0.99, reach=None) for s in range(2)]
               + [fake_run(True, s, 0.99, reach=40) for s in range(2)])
    v = aggregate(records).verdict
    assert v.speed == "faster" and "against never" in v.sentence


def test_one_seed_cannot_settle_it():
    v = aggregate(runs([0.990], [0.995])).verdict
    assert (v.accuracy, v.helped, v.margin_points) == ("unknown", "no clear difference", None)
    assert "cannot tell" in v.sentence


def test_judge_rejects_nothing_but_needs_both_variants():
    with pytest.raises(ValueError):
        aggregate([fake_run(False, 0, 0.99)])
    result = aggregate(runs([0.99, 0.99], [0.99, 0.99]))
    assert judge(result.plain, result.batchnorm).accuracy == "no clear difference"


def test_figures_draw_from_synthetic_results(tmp_path):
    from kerascnn import plots
    from kerascnn.outputs import store

    result = aggregate(runs([0.990, 0.991], [0.992, 0.993]), {"epochs": 2, "batch_size": 16, "val_every": 20})
    for name, fig in {"loss": plots.band_curves(result, "loss"), "acc": plots.band_curves(result, "accuracy"),
                      "seeds": plots.seed_accuracies(result)}.items():
        path = store.save_figure(fig, tmp_path / f"{name}.png")
        assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError):
        plots.band_curves(result, "val_loss")


# ---------------------------------------------------------------------------- real (tiny) training
def test_compare_trains_both_variants_then_reuses_finished_runs(tmp_path, idx_dir):
    out = tmp_path / "cmp"
    args = ["compare", "--seeds", 2, "--epochs", 2, "--batch-size", 32, "--subset", 200, "--val-size", 50,
            "--val-every", 2, "--precision", "fp32", "--data-dir", idx_dir, "--out", out]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    for i, what in enumerate(["cnn seed 0", "cnn_bn seed 0", "cnn seed 1", "cnn_bn seed 1"], start=1):
        assert f"run {i}/4: {what}: training" in result.output
    assert "epoch 2/2:" in result.output
    for name in ("result.json", *FIGURES):
        assert (out / name).stat().st_size > 0, name
    assert set(study.figures(aggregate(runs([0.99], [0.99])))) == set(FIGURES)
    d = json.loads((out / "result.json").read_text())
    assert [(r["name"], r["seed"]) for r in d["runs"]] == [("cnn", 0), ("cnn_bn", 0), ("cnn", 1), ("cnn_bn", 1)]
    assert all(r["iterations"] == 10 and 0 <= r["test_accuracy"] <= 1 for r in d["runs"])  # 2 x 150 images / 32
    for name in ("cnn", "cnn_bn"):
        variant = d["variants"][name]
        assert variant["seeds"] == [0, 1] and len(variant["test_accuracies"]) == 2
        val = variant["curves"]["val_accuracy"]
        # callbacks see every 64th step (steps_per_execution), so with 5 steps an epoch: its end only
        assert val["iteration"] == [5, 10] and len(val["mean"]) == len(val["min"]) == len(val["max"]) == 2
        assert all(lo <= m <= hi for lo, m, hi in zip(val["min"], val["mean"], val["max"]))
    assert d["verdict"]["sentence"] in result.output
    assert d["recipe"]["seeds"] == 2 and d["recipe"]["train"]["subset"] == 200
    # run again: every run is reused, nothing retrained, same numbers
    again = CliRunner().invoke(cli, [str(a) for a in args])
    assert again.exit_code == 0, again.output
    assert again.output.count(": already done in ") == 4 and "training" not in again.output
    assert "4 runs (4 reused)" in again.output
    assert json.loads((out / "result.json").read_text())["variants"] == d["variants"]
    # a changed recipe is not reused
    changed = CliRunner().invoke(cli, [str(a) for a in args[:-2] + ["--seeds", 1, "--lr-schedule", "constant",
                                                                    "--out", out]])
    assert changed.exit_code == 0, changed.output
    assert "run 1/2: cnn seed 0: training" in changed.output and "cannot tell" in changed.output


@pytest.mark.parametrize("args, flag", [(["--seeds", "0"], "--seeds"), (["--epochs", "0"], "--epochs"),
                                        (["--val-every", "-1"], "--val-every"), (["--lr", "inf"], "--lr")])
def test_compare_refuses_bad_options_before_training(tmp_path, args, flag):
    result = CliRunner().invoke(cli, ["compare", *args, "--out", str(tmp_path / "never")])
    assert result.exit_code == 2 and flag in result.output
    assert not (tmp_path / "never").exists()


def test_compare_options_make_one_folder_per_run(tmp_path):
    config = Options(train=TrainConfig(epochs=2, lr=5e-4), seeds=2, first_seed=3, out_dir=str(tmp_path))
    assert config.seed_list == [3, 4]
    tc = config.train_config(True, 4)
    assert tc.batchnorm and tc.seed == 4 and tc.out_dir.endswith("runs/cnn_bn_seed4")
    assert (tc.epochs, tc.lr) == (2, 5e-4)  # the recipe is held, not copied field by field
    assert study.load_finished(tc) is None
    assert math.isclose(config.threshold, 0.98)
    with pytest.raises(BadValue, match="^seeds: "):
        Options(seeds=0).check()
    with pytest.raises(BadValue, match="^epochs: "):
        Options(train=TrainConfig(epochs=0)).check()


# ---------------------------------------------------------------------------- --jobs and several machines
def _metrics(out):
    return {run.name: json.loads((run / "metrics.json").read_text()) for run in sorted((out / "runs").iterdir())}


@pytest.mark.parametrize("engine", ["processes", "ray"])
def test_jobs_give_a_serial_runs_numbers_and_split_seeds_are_reused(tmp_path, idx_dir, engine):
    cores = local_cores()
    each = threads_per_job(2, cores)
    named = {"processes": f"in 2 local processes ({each} thread{'s' * (each > 1)} each",
             "ray": f"on Ray ({cores} CPUs, a local instance; 2 runs at a time, {each} CPU{'s' * (each > 1)} each)"}[engine]
    base = ["compare", "--seeds", 1, "--epochs", 1, "--batch-size", 20, "--subset", 100, "--val-size", 20,
            "--precision", "fp32", "--data-dir", idx_dir, "--engine", engine]
    serial = CliRunner().invoke(cli, [str(a) for a in base + ["--out", tmp_path / "serial"]])
    parallel = CliRunner().invoke(cli, [str(a) for a in base + ["--jobs", 2, "--out", tmp_path / "parallel"]])
    assert serial.exit_code == 0 and parallel.exit_code == 0, serial.output + parallel.output
    assert "one run after another in this process" in serial.output.splitlines()[0]
    assert named in parallel.output.splitlines()[0]  # the study's first line names what runs it
    for label in ("run 1/2: cnn seed 0", "run 2/2: cnn_bn seed 0"):  # workers' lines reach the user, labelled
        assert f"{label}: training 1 epoch(s)" in parallel.output and f"{label}: epoch 1/1: loss" in parallel.output
    one, two = _metrics(tmp_path / "serial"), _metrics(tmp_path / "parallel")
    assert set(one) == set(two) == {"cnn_seed0", "cnn_bn_seed0"}
    # 2 intra-op threads against 1 (two cores shared out): the order of sums only (kerascnn.study.engine)
    for name in one:
        assert abs(two[name]["test_accuracy"] - one[name]["test_accuracy"]) <= 0.01, name  # 2 of 200 images
        assert two[name]["test_loss"] == pytest.approx(one[name]["test_loss"], rel=1e-3)
    assert two["cnn_seed0"]["test_accuracy"] == one["cnn_seed0"]["test_accuracy"]

    # another machine trains seed 1 into the same (shared) --out; then the whole study reuses both
    other = CliRunner().invoke(cli, [str(a) for a in base + ["--first-seed", 1, "--out", tmp_path / "serial"]])
    assert other.exit_code == 0 and "run 1/2: cnn seed 1: training" in other.output, other.output
    whole = CliRunner().invoke(cli, [str(a) for a in base[:2] + [2] + base[3:] + ["--jobs", 2, "--out", tmp_path / "serial"]])
    assert whole.exit_code == 0 and "4 runs (4 reused)" in whole.output and "training" not in whole.output, whole.output


def _error(result, exit_code: int) -> str:
    """The command's one error line: stderr is that line alone, and there is no traceback."""
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_a_failing_worker_is_one_line_and_ctrl_c_exits_130(tmp_path, idx_dir, monkeypatch):
    import multiprocessing.context

    base = ["compare", "--seeds", 1, "--epochs", 1, "--batch-size", 20, "--subset", 100, "--val-size", 20,
            "--precision", "fp32", "--data-dir", idx_dir, "--jobs", 2, "--force", "--engine", "processes"]
    out = tmp_path / "broken"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "cnn_seed0").write_text("a file where the run's folder goes")
    assert _error(CliRunner().invoke(cli, [str(a) for a in base + ["--out", out]]), 1).startswith(
        "Error: run 1/2: cnn seed 0: ")

    def interrupted(self):
        raise KeyboardInterrupt
    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", interrupted)
    line = _error(CliRunner().invoke(cli, [str(a) for a in base + ["--out", tmp_path / "stopped"]]), 130)
    assert "run the same command again" in line
