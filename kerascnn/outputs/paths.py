"""Paths as a shared page names them: a report or a printed summary is read on other machines, so it
names a file relative to the working folder, or by its run folder and file name, never by the
absolute path of the machine that wrote it (unless the user asks: `--full-paths`).

    shown_path("/home/ann/study/runs/cnn/model.keras")   -> "runs/cnn/model.keras"  (working folder /home/ann/study)
    shown_path("/data/runs/cnn/model.keras")              -> "cnn/model.keras"        (outside it: run and file)
    shown_path(SAVED_MODELS / "cnn" / "model.keras")      -> "saved_models/cnn/model.keras"
    shown_text("model /data/runs/cnn/model.keras on mnist") -> "model cnn/model.keras on mnist"

result.json keeps absolute paths: it is the machine-readable record, read back on the same machine.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["shown_path", "shown_text"]

#: An absolute POSIX path inside text: a slash not preceded by a word character (so 8/255 and km/h are
#: not paths), then at least two components. Candidates are replaced only when they exist on disk
#: (or their folder does), so that a fraction or a URL-like word in a caption is left alone. A path
#: with a space in it is only partly matched, and then left as it is (its first part does not exist).
_ABSOLUTE = re.compile(r"(?<![\w.~:/-])/(?:[\w.@+~-]+/)+[\w.@+~-]*[\w@+~-]")


def shown_path(path, full: bool = False) -> str:
    """`path` as a report or a summary shows it: relative to the working folder when inside it, the
    shipped models as saved_models/..., else its run folder's name and its file name (a folder: its
    name). `full`: the absolute path. A relative path is shown as it is."""
    text = os.fspath(path)
    if full or not os.path.isabs(text):
        return text
    absolute = Path(os.path.normpath(text))
    for base, prefix in ((Path.cwd(), Path()), (_shipped(), Path("saved_models"))):
        try:
            inside = absolute.relative_to(base)
        except ValueError:
            continue
        return (prefix / inside).as_posix()
    if absolute.is_dir() or not absolute.suffix:
        return absolute.name or text
    return f"{absolute.parent.name}/{absolute.name}" if absolute.parent.name else absolute.name


def shown_text(text: str, full: bool = False) -> str:
    """Every absolute path in `text` that exists on this machine (or whose folder does) replaced by
    shown_path's form; `full`: the text unchanged."""
    if full or "/" not in text:
        return text

    def replace(match: re.Match) -> str:
        found = match.group(0)
        if os.path.exists(found) or os.path.isdir(os.path.dirname(found)):
            return shown_path(found)
        return found

    return _ABSOLUTE.sub(replace, text)


def _shipped() -> Path:
    from kerascnn import SAVED_MODELS

    return Path(os.path.normpath(os.path.abspath(SAVED_MODELS)))
