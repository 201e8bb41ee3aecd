"""`kerascnn robustness` over several models, a study (kerascnn.experiments.robustness_models): its
columns run apart and merged give what one `robustness.run` gives; finished runs are reused while the
model file and the options are the same; parallel engines give the serial numbers; bad input is one line."""
import json
import os

import numpy as np
import pytest

from kerascnn.data.tasks import Task
from kerascnn.experiments import robustness
from kerascnn.experiments import robustness_models as study
from kerascnn.model.subject import Subject
from kerascnn.study.workers import local_cores
from tests.support import cli, load_model
from tests.test_robustness import tiny_model

ATTACK = robustness.Options(attacks=("fgsm", "pgd", "apgd-ce"), eps=(0.0, 0.1, 0.3), count=30, steps=5,
                            restarts=2, sanity=10)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two tiny classifiers of different weights, one a .keras file, one a run folder."""
    from kerascnn.outputs import store

    folder = tmp_path_factory.mktemp("models")
    first, second = folder / "alpha.keras", folder / "beta" / "model.keras"
    store.save_model(tiny_model(seed=0), first)
    store.save_model(tiny_model(seed=1), second)
    return [first, second.parent]


def test_columns_run_apart_equal_one_run(models, idx_dir, tmp_path):
    options = study.Options(models=tuple(map(str, models)), attack=ATTACK, data_dir=str(idx_dir),
                            out_dir=str(tmp_path / "study"))
    result = study.run(options)
    assert [r.model for r in result.results] == ["alpha", "beta"] and result.reused == 0
    task = Task("mnist", str(idx_dir))
    images, labels = task.test()
    for path, merged in zip(models, result.results):
        whole = robustness.run(Subject.load(path, task), ATTACK)
        assert list(merged.correct) == list(whole.correct) == ["fgsm", "pgd", "apgd-ce"]
        for column in whole.correct:  # the same process and threads: bit for bit
            np.testing.assert_array_equal(merged.correct[column], whole.correct[column])
            np.testing.assert_array_equal(merged.examples[column], whole.examples[column])
        assert merged.per_restart == whole.per_restart and merged.after.keys() == whole.after.keys()
        assert (merged.sanity_eps, merged.sanity_accuracy, merged.sanity_attack) == \
            (whole.sanity_eps, whole.sanity_accuracy, whole.sanity_attack) == (1.0, 0.0, "pgd")
        assert merged.checks() == whole.checks()
        # clean accuracy re-predicted by Keras itself
        keras_file = path if path.suffix == ".keras" else path / "model.keras"
        clean = np.mean(load_model(keras_file)(images[:30]).numpy().argmax(1) == labels[:30])
        assert merged.clean_accuracy == pytest.approx(clean) == merged.accuracy("pgd")[0]
    # the huge-eps check ran once per model, with the PGD column
    keys = {p.name: json.loads((p / "key.json").read_text())["options"] for p in (tmp_path / "study" / "runs").iterdir()}
    assert sorted(keys) == ["1_alpha_apgd-ce", "1_alpha_fgsm", "1_alpha_pgd", "2_beta_apgd-ce", "2_beta_fgsm",
                            "2_beta_pgd"]
    assert {name for name, o in keys.items() if o["sanity"]} == {"1_alpha_pgd", "2_beta_pgd"}


def test_finished_runs_are_reused_until_their_model_or_options_change(models, idx_dir, tmp_path):
    options = study.Options(models=tuple(map(str, models)), attack=robustness.Options(
        attacks=("fgsm", "pgd"), eps=(0.0, 0.2), count=20, steps=3, sanity=0), data_dir=str(idx_dir),
        out_dir=str(tmp_path / "study"))
    first = study.run(options)
    lines = []
    again = study.run(options, progress=lines.append)
    assert again.reused == 4 and all(line.endswith(", reused") for line in lines)
    assert again.to_dict()["robustness"]["beta"]["accuracy"] == first.to_dict()["robustness"]["beta"]["accuracy"]
    # a damaged saved result, and a model written again, are run again; nothing else is
    (tmp_path / "study" / "runs" / "1_alpha_fgsm" / "result.pkl").write_bytes(b"not a pickle")
    model = models[1] / "model.keras"
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**9))
    lines.clear()
    third = study.run(options, progress=lines.append)
    assert third.reused == 1 and [line for line in lines if line.endswith(", reused")] == \
        ["run 2/4: alpha, PGD-3: already done in " + str(tmp_path / "study" / "runs" / "1_alpha_pgd") + ", reused"]
    # more images: a new key for every run
    more = study.run(study.Options(**{**options.__dict__, "attack": robustness.Options(
        attacks=("fgsm", "pgd"), eps=(0.0, 0.2), count=25, steps=3, sanity=0)}))
    assert more.reused == 0 and len(more.results[0].labels) == 25


def test_command_writes_the_study_and_reuses_it(models, idx_dir, tmp_path):
    out = tmp_path / "r"
    args = ["robustness", "--model", models[0], "--model", models[1], "--data-dir", idx_dir, "--count", 20,
            "--steps", 3, "--attack", "fgsm,pgd", "--eps", "0,0.2", "--sanity", 5, "--out", out]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "Robustness of 2 model(s)" in result.stderr.splitlines()[0]
    assert "one run after another in this process" in result.stderr.splitlines()[0]
    files = {p.name for p in out.iterdir()} - {".kerascnn.json", ".lock"}
    assert files == {"robustness.png", "examples_1_alpha.png", "examples_2_beta.png", "result.json", "runs"}
    data = json.loads((out / "result.json").read_text())
    assert data["models"] == ["alpha", "beta"] and data["runs"] == {"total": 4, "reused": 0,
                                                                     "folder": os.path.join(str(out), "runs")}
    assert set(data["robustness"]["alpha"]["accuracy"]) == {"fgsm", "pgd"}
    assert data["input_domain"]["beta"]["range"] == [0.0, 1.0]
    for name in ("alpha", "beta"):
        assert name in result.stdout  # the table names both
    again = cli(*args, "--json")
    assert again.exit_code == 0, again.output
    assert "4 runs (4 reused)" in again.stderr
    assert json.loads(again.stdout)["robustness"] == data["robustness"]


@pytest.mark.parametrize("engine", ["processes", "ray"])
def test_jobs_give_the_serial_numbers(models, idx_dir, tmp_path, engine):
    base = ["robustness", "--model", models[0], "--model", models[1], "--data-dir", idx_dir, "--count", 20,
            "--steps", 3, "--attack", "fgsm,pgd", "--eps", "0,0.2", "--sanity", 5, "--engine", engine, "--json"]
    serial = cli(*base, "--out", tmp_path / "serial")
    parallel = cli(*base, "--jobs", 2, "--out", tmp_path / "parallel")
    assert serial.exit_code == 0 and parallel.exit_code == 0, serial.output + parallel.output
    first = parallel.stderr.splitlines()[0]
    assert ("on Ray (" if engine == "ray" else "in 2 local processes") in first, first
    for label in ("run 1/4: alpha, FGSM", "run 4/4: beta, PGD-3"):  # the workers' lines reach the user
        assert f"{label}: 2 eps x 20 images" in parallel.stderr, parallel.stderr
    one, two = json.loads(serial.stdout)["robustness"], json.loads(parallel.stdout)["robustness"]
    threads_differ = local_cores() > 1  # 2 workers of 1 thread against this process's cores: sums reordered
    for name in one:
        for column in ("fgsm", "pgd"):
            a, b = np.array(one[name]["accuracy"][column]), np.array(two[name]["accuracy"][column])
            assert np.abs(a - b).max() <= (0.05 if threads_differ else 0), (name, column)  # 1 of 20 images


def test_bad_input_is_one_line(models, idx_dir, tmp_path):
    twice = cli("robustness", "--model", models[0], "--model", models[0], "--data-dir", idx_dir, "--out", tmp_path / "o")
    assert twice.exit_code == 2 and twice.stderr.strip().splitlines() == [
        f"Error: --model: {models[0]} is given twice"], twice.output
    jobs = cli("robustness", "--jobs", 2, "--data-dir", idx_dir, "--out", tmp_path / "o")
    assert jobs.exit_code == 2 and "give them with --model" in jobs.stderr, jobs.output
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused = cli("robustness", "--model", models[0], "--model", models[1], "--data-dir", idx_dir, "--count", 20,
                  "--out", foreign)
    assert refused.exit_code == 1 and refused.stderr.strip().splitlines() == [
        f"Error: output folder {foreign} holds files that kerascnn did not write (notes.txt, ...): choose another "
        f"--out, or pass --force (its files are kept)"], refused.output
    inside = cli("robustness", "--model", models[0], "--model", models[1], "--data-dir", idx_dir, "--count", 20,
                 "--out", models[1], "--force")  # the folder of a model it reads: never, even with --force
    assert inside.exit_code == 1 and len(inside.stderr.strip().splitlines()) == 1, inside.output
    assert not (tmp_path / "o").exists() and {p.name for p in foreign.iterdir()} == {"notes.txt"}
    assert {p.name for p in models[1].iterdir()} == {"model.keras"}


def test_ctrl_c_keeps_the_finished_runs_and_the_same_call_goes_on(models, idx_dir, tmp_path, monkeypatch):
    from kerascnn.study.engine import Interrupted

    options = study.Options(models=(str(models[0]),), attack=robustness.Options(
        attacks=("fgsm", "pgd"), eps=(0.0, 0.2), count=20, steps=3, sanity=0), data_dir=str(idx_dir),
        out_dir=str(tmp_path / "study"))
    real = robustness.run

    def interrupted_second(subject, o, progress=None):
        if o.attacks == ("pgd",):
            raise KeyboardInterrupt
        return real(subject, o, progress)

    monkeypatch.setattr(robustness, "run", interrupted_second)
    with pytest.raises(Interrupted):
        study.run(options)
    runs = tmp_path / "study" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["1_alpha_fgsm"]  # the interrupted run left no folder
    assert sorted(p.name for p in (runs / "1_alpha_fgsm").iterdir()) == ["key.json", "result.pkl"]
    monkeypatch.setattr(robustness, "run", real)
    assert study.run(options).reused == 1
