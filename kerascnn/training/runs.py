"""Which folders `kerascnn train` (and `compare`) may write into, and the mark that says they did.

A training folder is written in place, epoch by epoch (that is what makes a run resumable), so it
cannot be swapped in whole like the other commands' outputs. Instead: it may be missing, empty, or
an earlier training folder (its MARKER, or the files a run leaves: model.keras with metrics.json, or
an unfinished .resume/); anything else is refused unless `force`, and even then nothing in it is
deleted, only the run's own files written over.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from kerascnn.errors import UserError
from kerascnn.outputs import store
from kerascnn.outputs.folders import MARKER

#: The files a run (or a compare study) writes at the top of its folder: a file of the user's with one
#: of these names is never replaced, --force or not (its folders, runs/ and .resume/, are written into).
RUN_FILES = ("model.keras", "history.csv", "steps.csv", "metrics.json", "loss.png", "accuracy.png", "predictions.png",
             "confusion.png", "recipe.json", "result.json", "curves_loss.png", "curves_accuracy.png",
             "test_accuracy.png")
#: The columns of a run's history.csv (per epoch) and steps.csv (per iteration).
HISTORY_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
STEP_FIELDS = ["epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy"]


def is_training_folder(folder: Path) -> bool:
    if (folder / MARKER).is_file():
        return True
    return ((folder / "model.keras").is_file() and (folder / "metrics.json").is_file()) \
        or (folder / ".resume").is_dir() or (folder / "runs").is_dir() and (folder / "result.json").is_file()


def check_training_folder(out: str | os.PathLike, force: bool = False) -> Path:
    """Raises UserError unless `out` may receive a training run (see the module docstring)."""
    folder = Path(os.path.abspath(out))
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output folder {out} exists and is not a folder")
    if not folder.is_dir() or is_training_folder(folder):
        return folder
    try:
        contents = [p.name for p in folder.iterdir() if p.name != ".lock"]
    except OSError as e:
        raise UserError(store.describe_os_error(e, f"reading folder {out}")) from None
    clashes = sorted(name for name in set(contents) & set(RUN_FILES) if not (folder / name).is_dir())
    if force and clashes:
        raise UserError(f"output folder {out} holds {', '.join(clashes)}, which a run would write and kerascnn did "
                        f"not make: --force never replaces a file of yours; move it or choose another --out")
    if contents and not force:
        raise UserError(f"output folder {out} holds files that kerascnn did not write ({sorted(contents)[0]}, ...): "
                        f"choose another --out, or pass --force (its files are kept)")
    return folder


def mark_training_folder(out: str | os.PathLike, command: str = "train") -> None:
    """Marks `out` as a training folder (so a later run may write into it again)."""
    store.write_json(Path(out) / MARKER, {"command": command, "version": 1, "files": None})


# ---------------------------------------------------------------------------- resuming an unfinished run
def resume_state(out_dir: Path, key: dict, epochs: int) -> tuple[int, Path | None]:
    """(epochs already done, their checkpoint) of an unfinished run with the same recipe in out_dir;
    (0, None): start afresh. state.json names its checkpoint, so the two are always one epoch's."""
    state_path = out_dir / ".resume" / "state.json"
    try:
        state = json.loads(state_path.read_text())
        checkpoint = out_dir / ".resume" / str(state["checkpoint"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, None
    done = int(state.get("epochs_done", 0))
    if state.get("key") != json.loads(json.dumps(key)) or not checkpoint.is_file() or not 0 < done < epochs:
        return 0, None
    return done, checkpoint


def previous_rows(out_dir: Path, epochs_done: int) -> tuple[list[dict], list[dict]]:
    """(history, steps) of an unfinished run's committed epochs, read back from its .resume/ folder."""
    def rows(name, fields, keep):
        path = out_dir / ".resume" / name
        if not path.is_file():
            return []
        out = []
        for row in store.read_csv(path):
            row = {k: row.get(k) for k in fields}
            row["epoch"] = int(row["epoch"])
            if "step" in row:
                row["step"] = int(row["step"])
            if keep(row):
                out.append(row)
        return out
    history = rows("history.csv", HISTORY_FIELDS, lambda r: r["epoch"] <= epochs_done)
    steps = rows("steps.csv", STEP_FIELDS, lambda r: r["epoch"] < epochs_done)
    return history, steps
