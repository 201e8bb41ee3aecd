"""Issue 13, tried as someone breaking it: foreign --out folders, --out on the model being read, a full
disk, Ctrl-C, reruns, the shipped models, a diverging run, concurrent runs and a killed report.

The fault tests are a table over the commands (COMMANDS): a new command is covered by adding one row.
Every command runs in Click's test runner on the tiny model and the synthetic IDX digits, from a
scratch working folder, writing into tmp_path/work/out; nothing else may appear beside that folder.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click
import pytest

from kerascnn import SAVED_MODELS
from kerascnn.outputs import store
from kerascnn.outputs.folders import MARKER
from tests.support import cli

REPO = Path(__file__).resolve().parent.parent
FOREIGN = "notes.txt"
QUICK_TRAIN = ["--subset", 100, "--epochs", 1, "--batch-size", 50, "--precision", "fp32"]


# ---------------------------------------------------------------------------- the table
@dataclass
class Command:
    """One command as the fault tests run it. `args(model, data)` gives its arguments without --out;
    `model` is a run folder holding model.keras."""
    name: str
    args: Callable[[Path, Path], list]
    reads_model: bool = True          # takes --model (so --out may not be the model's folder)
    force: bool = True                # has --force
    shrink: Callable | None = None    # (monkeypatch) -> None: makes a slow command quick
    inject: str = "store"             # where a full disk or Ctrl-C strikes: "store" (every file it
                                      # writes goes through kerascnn.outputs.store) or "export" (the exporter)
    wrote: set = field(default_factory=set)  # files a successful run leaves in --out (besides MARKER)
    stale: str = "stale.png"          # a file an earlier run left that a rerun must not leave as it was

    def __str__(self):
        return self.name


def _shrink_report(monkeypatch):
    import kerascnn.reporting.build as report_lib

    plan = report_lib.plan
    # two experiments instead of nine: the fault tests are about the folder, not the study
    monkeypatch.setattr(report_lib, "plan", lambda task, subject: plan(task, subject)[:2])


def _model(model, data):
    return ["--model", model, "--data-dir", data]


COMMANDS = [
    # a training folder is written in place (that is what makes it resumable): what an earlier run
    # leaves there is an unfinished run's state, gone once a run finishes
    Command("train", lambda m, d: ["train", "--data-dir", d, *QUICK_TRAIN], reads_model=False,
            stale=".resume/state.json",
            wrote={"model.keras", "history.csv", "steps.csv", "metrics.json", "loss.png", "accuracy.png",
                   "predictions.png", "confusion.png"}),
    Command("evaluate", lambda m, d: ["evaluate", *_model(m, d)],
            wrote={"confusion.png", "predictions.png", "result.json"}),
    # the synthetic digits show one demonstration concept (thick-stroke): enough for the folder's faults
    Command("concepts", lambda m, d: ["concepts", *_model(m, d), "--random-runs", 2, "--count", 5,
                                      "--demo-images", 10],
            wrote={"concepts.png", "concept_examples.png", "result.json"}),
    Command("filters", lambda m, d: ["filters", *_model(m, d)], wrote={"filters_conv1.png", "result.json"}),
    Command("activations", lambda m, d: ["activations", *_model(m, d), "--digit", 7],
            wrote={"activations.png", "result.json"}),
    Command("explain", lambda m, d: ["explain", *_model(m, d), "--digit", 7, "--method", "saliency,gradcam"],
            wrote={"explain.png", "maps.npy", "result.json"}),
    Command("occlude", lambda m, d: ["occlude", *_model(m, d), "--digit", 7], wrote={"occlusion.png", "result.json"}),
    Command("attack nontargeted", lambda m, d: ["attack", "nontargeted", *_model(m, d), "--steps", 2,
                                                "--classes", "0-2"],
            wrote={"nontargeted.png", "images.npy", "result.json"}),
    Command("attack targeted", lambda m, d: ["attack", "targeted", *_model(m, d), "--steps", 2, "--classes", "0-2"],
            wrote={"targeted.png", "images.npy", "result.json"}),
    Command("attack noise", lambda m, d: ["attack", "noise", *_model(m, d), "--steps", 2, "--count", 2,
                                          "--universal", 5],
            wrote={"noise.png", "universal.png", "images.npy", "originals.npy", "noise.npy", "result.json"}),
    Command("attack minimal", lambda m, d: ["attack", "minimal", *_model(m, d), "--count", 3, "--steps", 5],
            wrote={"norms.png", "examples.png", "images.npy", "originals.npy", "result.json"}),
    Command("attack universal", lambda m, d: ["attack", "universal", *_model(m, d), "--fit", 20, "--count", 20,
                                              "--epochs", 1],
            wrote={"universal.png", "universal_noise.npy", "one_image_noise.npy", "result.json"}),
    Command("robustness", lambda m, d: ["robustness", *_model(m, d), "--attack", "fgsm", "--eps", "0,0.1", "--count",
                                        20, "--sanity", 5], wrote={"robustness.png", "examples.png", "result.json"}),
    Command("certify", lambda m, d: ["certify", *_model(m, d), "--count", 3, "--n0", 10, "--n", 50],
            wrote={"certify.png", "result.json"}),
    Command("corruptions", lambda m, d: ["corruptions", *_model(m, d), "--count", 4, "--severity", "1,5",
                                         "--corruption", "fog,rotate", "--baseline", "none"],
            wrote={"corruptions.png", "result.json"}),
    Command("transfer", lambda m, d: ["transfer", "--source-model", m, "--eval-model", m, "--data-dir", d, "--steps", 2,
                                      "--count", 20, "--fit", 20],
            wrote={"transfer_pgd.png", "transfer_universal.png", "result.json"}),
    Command("export", lambda m, d: ["export", *_model(m, d)], force=False, inject="export",
            wrote={"saved_model.pb", "variables", "assets", "assets.extra", "fingerprint.pb"}),
    Command("report", lambda m, d: ["report", *_model(m, d)], shrink=_shrink_report,
            wrote={"report.html", "report.md", "evaluation_confusion.png", "evaluation_predictions.png",
                   "filters_filters_conv1.png"}),
    # a compare folder keeps its runs/ (a rerun reuses them); what a rerun must replace is its result
    Command("compare", lambda m, d: ["compare", "--seeds", 1, "--val-size", 20, "--data-dir", d, *QUICK_TRAIN],
            reads_model=False, stale="result.json",
            wrote={"runs", "result.json", "curves_loss.png", "curves_accuracy.png", "test_accuracy.png"}),
]
MODEL_COMMANDS = [c for c in COMMANDS if c.reads_model]
FORCE_COMMANDS = [c for c in COMMANDS if c.force]
WRITES_NOTHING = {"summary", "serve"}  # summary prints; serve answers requests


def test_every_command_has_a_row():
    import click

    from cli.main import cli as group

    names = set()
    for name, command in group.commands.items():
        subcommands = command.commands if isinstance(command, click.Group) else {}
        names |= {f"{name} {sub}" for sub in subcommands} if subcommands else {name}
    assert names - WRITES_NOTHING == {c.name for c in COMMANDS}


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def no_open_figures():
    """Each test starts with no matplotlib figure open (so that error_line's check is about its command)."""
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def place(tmp_path, monkeypatch, tiny_model_path):
    """(model run folder, tmp_path/work: the parent of every --out); the current folder is scratch."""
    model = tmp_path / "model_run"
    model.mkdir()
    shutil.copy(tiny_model_path, model / "model.keras")
    (model / FOREIGN).write_text("the user's notes")
    work = tmp_path / "work"
    work.mkdir()
    scratch = tmp_path / "cwd"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    return model, work


def run(command: Command, monkeypatch, model, data, out, *extra):
    if command.shrink:
        command.shrink(monkeypatch)
    return cli(*command.args(model, data), "--out", out, *extra)


def tree(folder: Path) -> dict:
    """Every file and folder below `folder` (hidden ones too) -> its bytes (None for a folder)."""
    return {p.relative_to(folder).as_posix(): (None if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


def error_line(result, exit_code: int | None = None) -> str:
    """The command failed with one `Error: ...` line, the last it wrote to stderr, and no traceback;
    and it left no figure open (a refused or failed command must not leak them)."""
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []
    assert result.exit_code != 0, result.output
    if exit_code is not None:
        assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.output
    assert "Aborted!" not in result.output
    return errors[0]


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def check_strict_json(folder: Path) -> None:
    for path in folder.rglob("*.json"):
        strict_json(path.read_text())


@contextlib.contextmanager
def struck(monkeypatch, where: str, fault: BaseException):
    """Makes the first file a command writes fail with `fault` (through the project's own atomic
    writer, so an OSError is reported as a real one would be), or the exporter's write."""
    if where == "store":
        real = store.atomic_path

        @contextlib.contextmanager
        def failing(path):
            with real(path) as tmp:
                Path(tmp).write_bytes(b"half")  # something half-written, to be cleaned up
                raise fault
                yield tmp  # noqa: unreachable: keeps this a generator

        monkeypatch.setattr(store, "atomic_path", failing)
    else:
        import kerascnn.exporting.formats as export_formats

        def failing_write(format, serving, tmp, info):
            Path(tmp).mkdir(parents=True, exist_ok=True)
            (Path(tmp) / "saved_model.pb").write_bytes(b"half")
            raise fault

        monkeypatch.setattr(export_formats, "write", failing_write)
    yield


def foreign_out(work: Path) -> Path:
    """work/out, holding a file of the user's (FOREIGN, "mine")."""
    out = work / "out"
    out.mkdir()
    (out / FOREIGN).write_text("mine")
    return out


def no_space(path="somewhere"):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


# ---------------------------------------------------------------------------- (a) foreign folders
@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_a_folder_holding_a_foreign_file_is_refused(command, place, idx_dir, monkeypatch):
    model, work = place
    out = foreign_out(work)
    result = run(command, monkeypatch, model, idx_dir, out)
    line = error_line(result, exit_code=1)
    assert str(out) in line or "out" in line, line
    assert tree(work) == {"out": None, f"out/{FOREIGN}": b"mine"}  # nothing else written, nothing left beside


@pytest.mark.parametrize("command", FORCE_COMMANDS, ids=str)
def test_force_writes_into_a_foreign_folder_and_keeps_its_files(command, place, idx_dir, monkeypatch):
    model, work = place
    out = foreign_out(work)
    result = run(command, monkeypatch, model, idx_dir, out, "--force")
    assert result.exit_code == 0, result.output
    assert (out / FOREIGN).read_text() == "mine"
    assert command.wrote <= {p.name for p in out.iterdir()}
    assert sorted(os.listdir(work)) == ["out"]


@pytest.mark.parametrize("command", FORCE_COMMANDS, ids=str)
def test_force_never_replaces_a_file_of_the_users_that_the_command_would_write(command, place, idx_dir, monkeypatch):
    """The user's own result.json (or the first file the command writes), beside thesis notes: refused
    in one line naming it, before any work, with every file as it was."""
    model, work = place
    out = foreign_out(work)
    clash = "result.json" if "result.json" in command.wrote else sorted(n for n in command.wrote if "." in n)[0]
    (out / clash).write_text("the user's own")
    before = tree(work)
    result = run(command, monkeypatch, model, idx_dir, out, "--force")
    line = error_line(result, exit_code=1)
    assert clash in line and "--force never replaces a file of yours" in line, line
    assert tree(work) == before


# ---------------------------------------------------------------------------- (b) the model's own folder
@pytest.mark.parametrize("command", MODEL_COMMANDS, ids=str)
@pytest.mark.parametrize("target", ["the model's folder", "a folder above it"])
def test_out_may_not_be_the_folder_of_the_model_it_reads(command, target, place, idx_dir, monkeypatch):
    model, work = place
    out = model if target == "the model's folder" else model.parent
    before = tree(model.parent)
    extra = ["--force"] if command.force else []  # not even with --force
    result = run(command, monkeypatch, model, idx_dir, out, *extra)
    error_line(result, exit_code=1)
    assert tree(model.parent) == before


# ---------------------------------------------------------------------------- (c) a full disk, Ctrl-C
@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_a_full_disk_is_one_line_and_leaves_nothing(command, place, idx_dir, monkeypatch):
    model, work = place
    out = work / "out"
    with struck(monkeypatch, command.inject, no_space(work / "out")):
        result = run(command, monkeypatch, model, idx_dir, out)
    line = error_line(result, exit_code=1)
    assert "no space left on device" in line, line
    assert tree(work) == {}  # no partial output, no temporary, no empty folder


def test_a_full_disk_at_the_first_checkpoint_leaves_no_half_run(place, idx_dir, monkeypatch):
    """The epoch's CSVs are written, then its checkpoint fails: nothing of the run is left."""
    _, work = place
    real = store.atomic_path
    written = []

    @contextlib.contextmanager
    def failing(path):
        written.append(Path(path).name)
        if Path(path).suffix == ".keras":
            raise no_space(path)
        with real(path) as tmp:
            yield tmp

    monkeypatch.setattr(store, "atomic_path", failing)
    result = run(COMMANDS[0], monkeypatch, work / "none", idx_dir, work / "out")
    assert "no space left on device" in error_line(result, exit_code=1)
    assert written[:2] == ["history.csv", "steps.csv"] and written[2].startswith("checkpoint-epoch1")
    assert tree(work) == {}


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_a_full_disk_leaves_an_earlier_output_as_it_was(command, place, idx_dir, monkeypatch):
    model, work = place
    out = work / "out"
    first = run(command, monkeypatch, model, idx_dir, out)
    assert first.exit_code == 0, first.output
    before = tree(work)
    with struck(monkeypatch, command.inject, no_space(out)):
        result = run(command, monkeypatch, model, idx_dir, out)
    assert "no space left on device" in error_line(result, exit_code=1)
    assert tree(work) == before


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_ctrl_c_exits_130_with_one_line_and_leaves_nothing(command, place, idx_dir, monkeypatch):
    model, work = place
    out = work / "out"
    with struck(monkeypatch, command.inject, KeyboardInterrupt()):
        result = run(command, monkeypatch, model, idx_dir, out)
    assert "interrupted" in error_line(result, exit_code=130)
    assert tree(work) == {}


# ---------------------------------------------------------------------------- (d) reruns
@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_a_rerun_replaces_its_own_earlier_output(command, place, idx_dir, monkeypatch):
    model, work = place
    out = work / "out"
    first = run(command, monkeypatch, model, idx_dir, out)
    assert first.exit_code == 0, first.output
    assert command.wrote <= {p.name for p in out.iterdir()}
    check_strict_json(out)
    # what an earlier run of the same command left and this run does not write (attack noise
    # --universal 0 after --universal 5: a universal.png beside a result.json that does not mention it)
    stale = out / command.stale
    stale.parent.mkdir(exist_ok=True)
    stale.write_text("from an earlier run")
    marker = json.loads((out / MARKER).read_text()) if (out / MARKER).is_file() else {}  # (export: its own)
    if marker.get("files") is not None and command.stale not in marker["files"]:  # listed: the command's own
        marker["files"] = sorted(marker["files"] + [command.stale])
        (out / MARKER).write_text(json.dumps(marker))
    again = run(command, monkeypatch, model, idx_dir, out)
    assert again.exit_code == 0, again.output
    assert not stale.exists() or stale.read_text() != "from an earlier run"
    assert command.wrote <= {p.name for p in out.iterdir()}
    check_strict_json(out)
    assert sorted(os.listdir(work)) == ["out"]  # no temporary or old folder left beside it


# ---------------------------------------------------------------------------- the shipped models
def fingerprint(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_train_by_default_writes_runs_cnn_and_leaves_the_shipped_models_alone(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from kerascnn.data import sources

    shipped = fingerprint(SAVED_MODELS)
    assert shipped  # the shipped models are there to be protected
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sources, "_can_reach", lambda *a, **k: True)  # the mock's prepare is a no-op
    sources.load.cache_clear()
    try:
        with tfds.testing.mock_data(num_examples=60, policy=tfds.testing.MockPolicy.USE_CODE):  # MNIST, mocked
            result = cli("train", "--epochs", 1, "--batch-size", 20, "--precision", "fp32")
    finally:
        sources.load.cache_clear()
    assert result.exit_code == 0, result.output
    assert "on mnist (28, 28, 1), 10 classes" in result.output and "-> runs/cnn/" in result.output
    assert "next: kerascnn evaluate --model runs/cnn" in result.output
    assert (tmp_path / "runs" / "cnn" / "model.keras").is_file()
    assert sorted(os.listdir(tmp_path)) == ["runs"] and sorted(os.listdir(tmp_path / "runs")) == ["cnn"]
    assert fingerprint(SAVED_MODELS) == shipped


# ---------------------------------------------------------------------------- divergence, JSON
def test_a_diverging_run_is_one_line_naming_epoch_and_step_and_saves_no_model(tmp_path, idx_dir, monkeypatch):
    from kerascnn.training import compiling

    # an infinite learning rate (the CLI refuses one): step 1 is computed with the initial weights,
    # its update makes them infinite, so step 2 is the first non-finite loss
    monkeypatch.setattr(compiling, "learning_rate", lambda config, steps_per_epoch: float("inf"))
    out = tmp_path / "run"
    result = cli("train", "--data-dir", idx_dir, *QUICK_TRAIN, "--out", out)
    line = error_line(result, exit_code=1)
    assert "training diverged" in line and "epoch 1, step 2" in line and "smaller lr" in line
    assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()
    assert not out.exists()  # a fresh --out is not left behind, empty or holding an empty .resume/


def test_an_infinite_loss_is_written_as_null_in_strict_json(tmp_path, idx_dir):
    import keras
    import numpy as np

    from kerascnn.data.sources import read_idx

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    weights, bias = model.layers[-1].get_weights()
    bias[3] = np.inf  # class 3's logit is infinite: its softmax is NaN, and so is the loss
    model.layers[-1].set_weights([weights, bias])
    model.save(tmp_path / "huge.keras")
    result = cli("evaluate", "--model", tmp_path / "huge.keras", "--data-dir", idx_dir, "--out", tmp_path / "e",
                 "--json")
    assert result.exit_code == 0, result.output
    printed = strict_json(result.stdout)
    assert printed["loss"] is None and printed == strict_json((tmp_path / "e" / "result.json").read_text())
    assert printed["accuracy"] == pytest.approx(np.mean(read_idx(idx_dir / "t10k-labels-idx1-ubyte") == 3))


# ---------------------------------------------------------------------------- concurrent runs
HOLD = ("import sys, time\nfrom kerascnn.outputs.locks import FolderLock\nwith FolderLock(sys.argv[1]):\n"
        "    print('locked', flush=True)\n    time.sleep(60)\n")


def test_a_second_training_into_the_same_folder_refuses(tmp_path, idx_dir):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        result = cli("train", "--data-dir", idx_dir, *QUICK_TRAIN, "--out", out)
        line = error_line(result, exit_code=1)
        assert line == (f"Error: another kerascnn run is writing into {out} (pid {holder.pid}); "
                        "wait for it or choose another --out")
        assert os.listdir(out) == [".lock"]  # the first run's lock, and nothing of the second
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    again = cli("train", "--data-dir", idx_dir, *QUICK_TRAIN, "--out", out)  # a killed holder leaves no lock
    assert again.exit_code == 0, again.output


# ---------------------------------------------------------------------------- a killed report
KILLED_REPORT = """
import os, signal, sys
import kerascnn.reporting.build as report_lib
from cli.main import cli

plan = report_lib.plan
report_lib.plan = lambda task, subject: plan(task, subject)[:2]
section = report_lib.experiment_section

def killed(*args, **kwargs):  # dies after the first experiment's figures are written
    made = section(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

report_lib.experiment_section = killed
cli(sys.argv[1:])
"""


def test_a_killed_report_leaves_the_previous_one_and_the_next_run_cleans_up(place, idx_dir, monkeypatch):
    model, work = place
    out = work / "out"
    report = next(c for c in COMMANDS if c.name == "report")
    first = run(report, monkeypatch, model, idx_dir, out)
    assert first.exit_code == 0, first.output
    before = tree(out)
    args = [str(a) for a in report.args(model, idx_dir)] + ["--out", str(out)]
    child = subprocess.run([sys.executable, "-c", KILLED_REPORT, *args], cwd=REPO, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert tree(out) == before  # the previous report, untouched
    leftovers = [name for name in os.listdir(work) if name != "out"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".out.partial-"), leftovers
    assert any(p.suffix == ".png" for p in (work / leftovers[0]).iterdir())  # it was killed mid-way
    again = run(report, monkeypatch, model, idx_dir, out)
    assert again.exit_code == 0, again.output
    assert sorted(os.listdir(work)) == ["out"]


EXPERIMENT_COMMANDS = [c for c in COMMANDS if c.reads_model and c.name not in ("export", "report", "transfer")]


@pytest.mark.parametrize("command", EXPERIMENT_COMMANDS, ids=str)
def test_a_refused_out_is_refused_before_any_work(command, place, idx_dir, monkeypatch):
    """The refusal comes when the model is loaded, before the experiment runs: emit (which writes
    after the run) is never reached, so a refused --out costs no attack steps."""
    import cli.output

    def reached(*args, **kwargs):
        raise AssertionError("the experiment ran before --out was refused")

    for module in ("cli.activations", "cli.attack", "cli.evaluation", "cli.explain", "cli.filters",
                   "cli.occlusion", "cli.robustness"):
        monkeypatch.setattr(f"{module}.emit", reached, raising=False)
    monkeypatch.setattr(cli.output, "emit", reached)
    model, work = place
    out = foreign_out(work)
    result = run(command, monkeypatch, model, idx_dir, out)
    line = error_line(result, exit_code=1)
    assert "was not written by kerascnn" in line and "ran before" not in result.output, line


# ---------------------------------------------------------------------------- (f) one-line errors at parse time
def _folders(tmp_path):
    """(an image folder of 2 RGB classes, not MNIST; a folder of one class; a missing folder)."""
    import numpy as np

    from kerascnn.data.folders import write_image_folder

    rng = np.random.default_rng(0)
    two, one = tmp_path / "pets", tmp_path / "single"
    images = rng.integers(0, 256, (6, 8, 8, 3)).astype(np.uint8)
    write_image_folder(two, images, np.arange(6) % 2, ("cat", "dog"), None)
    write_image_folder(one, images, np.zeros(6, int), ("cat",), None)
    return two, one, tmp_path / "missing"


PARSE_ERRORS = [
    # (arguments given the IDX folder, the image folder, the one-class folder, the missing one), fragment
    (lambda idx, two, one, missing: ["occlude", "--digit", 7, "--model", ""], "--model"),
    (lambda idx, two, one, missing: ["occlude", "--class", 7, "--dataset", "no_such_dataset"],
     "not a tensorflow-datasets image dataset"),
    (lambda idx, two, one, missing: ["occlude", "--digit", 7, "--data-dir", ""], "--data-dir"),
    (lambda idx, two, one, missing: ["occlude", "--digit", 7, "--data-dir", missing], "--data-dir"),
    (lambda idx, two, one, missing: ["occlude", "--digit", 7, "--data-dir", two], "--digit"),
    (lambda idx, two, one, missing: ["train", "--data-dir", idx, "--dataset", "mnist"], "not both"),
    (lambda idx, two, one, missing: ["robustness", "--data-dir", idx, "--count", 20000], "--count"),
    (lambda idx, two, one, missing: ["explain", "--digit", 7, "--data-dir", idx, "--method", "saliency,,gradcam"],
     "--method"),
    (lambda idx, two, one, missing: ["train", "--data-dir", one, "--epochs", 1], "at least 2 classes"),
    (lambda idx, two, one, missing: ["corruptions", "--data-dir", idx, "--severity", "1,6"], "1-5"),
    (lambda idx, two, one, missing: ["corruptions", "--data-dir", idx, "--corruption", "fog,smog"], "choose from"),
    (lambda idx, two, one, missing: ["corruptions", "--data-dir", idx, "--suite", "common", "--corruption",
                                     "zigzag"], "gaussian_noise"),
]


@pytest.mark.parametrize("args, fragment", PARSE_ERRORS, ids=[f"row{i}" for i in range(len(PARSE_ERRORS))])
def test_a_value_no_run_can_use_is_one_line_exit_2(args, fragment, tmp_path, idx_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    two, one, missing = _folders(tmp_path)
    before = tree(tmp_path)
    result = cli(*args(idx_dir, two, one, missing), "--out", tmp_path / "out")
    line = error_line(result, exit_code=2)
    assert fragment in line, line
    assert tree(tmp_path) == before


def test_an_mnist_shaped_idx_folder_is_served_by_the_shipped_model(tmp_path, idx_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/ here: no model trained for this task
    result = cli("evaluate", "--data-dir", idx_dir, "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    assert "the shipped MNIST cnn serves" in result.stderr
    d = json.loads((tmp_path / "out" / "result.json").read_text())
    assert d["model"] == str(SAVED_MODELS / "cnn" / "model.keras") and d["count"] == 200


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.name in ("robustness", "attack noise", "attack minimal")],
                         ids=str)
def test_no_bare_progress_label_when_stderr_is_not_a_terminal(command, place, idx_dir, monkeypatch):
    """A log or a pipe gets no progress label ('noise', 'robustness (linf)'): only what the command says."""
    model, work = place
    result = run(command, monkeypatch, model, idx_dir, work / "out")
    assert result.exit_code == 0, result.output
    label = {"robustness": "robustness (", "attack noise": "noise", "attack minimal": "minimal"}[command.name]
    assert not any(line.strip().startswith(label) for line in result.stderr.splitlines()), result.stderr


#: Every comma-separated option of the commands (kerascnn.lists.split_list's rule, through cli.lists.CommaList
#: or the library's parser): (the command's words, the option, two good items).
LIST_OPTIONS = [
    (["robustness"], "--attack", "fgsm", "pgd"),
    (["robustness"], "--eps", "0.1", "0.3"),
    (["explain"], "--method", "saliency", "gradcam"),
    (["explain"], "--metrics", "sparseness", "complexity"),
    (["corruptions"], "--corruption", "fog", "rotate"),
    (["corruptions"], "--severity", "3", "5"),
    (["report"], "--sections", "evaluation", "filters"),
    (["activations", "--digit", "7"], "--layers", "conv1", "conv2"),
    (["attack", "targeted"], "--classes", "3", "5"),
    (["evaluate"], "--input-range", "0", "255"),
]
#: Issue 37's sweep: a trailing comma, a leading comma, a lone comma, and an item left out.
SWEEP = {"trailing": "{a},", "leading": ",{a}", "lone": ",", "doubled": "{a},,{b}"}


def test_every_list_option_of_the_commands_is_in_the_sweep():
    """A new comma-separated option (one whose metavar lists items, A,B,...) needs a row above."""
    from cli.main import cli as group

    def options(command, words):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from options(sub, [*words, name])
            return
        for p in command.params:
            if isinstance(p, click.Option) and "," in (p.metavar or getattr(p.type, "name", "") or ""):
                yield words[0], p.opts[0]

    found = set(options(group, []))
    assert ("evaluate", "--input-range") in found and ("report", "--sections") in found
    listed = {(words[0], option) for words, option, _, _ in LIST_OPTIONS}
    shared = {"--input-range"}  # the same option on every command that reads a model: one row
    assert {(w, o) for w, o in found if o not in shared} <= listed


@pytest.mark.parametrize("case", list(SWEEP))
@pytest.mark.parametrize("words, option, a, b", LIST_OPTIONS, ids=[f"{w[0]} {o}" for w, o, _, _ in LIST_OPTIONS])
def test_an_empty_item_in_a_list_option_is_one_line_exit_2_and_writes_nothing(words, option, a, b, case, tmp_path,
                                                                                 idx_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    value = SWEEP[case].format(a=a, b=b)
    result = cli(*words, option, value, "--data-dir", idx_dir, "--out", tmp_path / "out")
    line = error_line(result, exit_code=2)
    assert option in line and "empty item" in line, line
    assert tree(tmp_path) == before


def test_a_printed_table_names_files_relative_and_full_paths_gives_them_whole(tmp_path, idx_dir, tiny_model_path,
                                                                            monkeypatch):
    """The table a command prints may be pasted anywhere: the model and data by run folder and file
    name (outside the working folder) unless --full-paths; result.json keeps the absolute path."""
    monkeypatch.chdir(tmp_path)
    short = cli("evaluate", "--model", tiny_model_path, "--data-dir", idx_dir, "--out", tmp_path / "a")
    assert short.exit_code == 0, short.output
    assert f"{tiny_model_path.parent.name}/model.keras" in short.stdout
    assert str(tiny_model_path) not in short.stdout and str(idx_dir) not in short.stdout
    full = cli("evaluate", "--model", tiny_model_path, "--data-dir", idx_dir, "--out", tmp_path / "b", "--full-paths")
    assert full.exit_code == 0, full.output
    assert str(tiny_model_path) in full.stdout and str(idx_dir) in full.stdout
    for folder in ("a", "b"):
        assert json.loads((tmp_path / folder / "result.json").read_text())["model"] == str(tiny_model_path)
    inside = tmp_path / "runs" / "mine" / "model.keras"  # inside the working folder: relative to it
    inside.parent.mkdir(parents=True)
    shutil.copy(tiny_model_path, inside)
    here = cli("evaluate", "--model", inside, "--data-dir", idx_dir, "--out", tmp_path / "c")
    assert here.exit_code == 0, here.output
    assert "runs/mine/model.keras" in here.stdout and str(inside) not in here.stdout
