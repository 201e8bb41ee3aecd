"""Which folders `kerascnn train` (and `compare`) may write into, and the mark that says they did.

A training folder is written in place, epoch by epoch (that is what makes a run resumable), so it
cannot be swapped in whole like the other commands' outputs. Instead: it may be missing, empty, or
an earlier training folder (its MARKER, or the files a run leaves: model.keras with metrics.json, or
an unfinished .resume/); anything else is refused unless `force`, and even then nothing in it is
deleted, only the run's own files written over.
"""
from __future__ import annotations

import os
from pathlib import Path

from kerascnn import UserError, store
from kerascnn.outputs import MARKER

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
    if not folder.is_dir() or force or is_training_folder(folder):
        return folder
    try:
        contents = [p.name for p in folder.iterdir() if p.name != ".lock"]
    except OSError as e:
        raise UserError(store.describe_os_error(e, f"reading folder {out}")) from None
    if contents:
        raise UserError(f"output folder {out} holds files that kerascnn did not write ({sorted(contents)[0]}, ...): "
                        f"choose another --out, or pass --force (its files are kept)")
    return folder


def mark_training_folder(out: str | os.PathLike, command: str = "train") -> None:
    """Marks `out` as a training folder (so a later run may write into it again)."""
    store.write_json(Path(out) / MARKER, {"command": command, "version": 1, "files": None})
