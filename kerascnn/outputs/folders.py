"""Output folders that never lose anything (the lock for folders that training writes into:
kerascnn.outputs.locks).

    with outputs.output_folder(out, "export", force=force, protect=[model_path]) as tmp:
        ...  # write everything into tmp
    # `out` now holds exactly what the block wrote; after an exception it is as it was

Enter the block before the work: every refusal (a folder that is not ours, the folder of the model
being read) comes on entry. A folder is ours when it holds MARKER, naming the command and every
file that command wrote; only such a folder is ever deleted, and only after its replacement is in.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fnmatch
import json
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from kerascnn.errors import UserError
from kerascnn.outputs import store

MARKER = ".kerascnn.json"  # {"command", "version", "created", "files": [relative paths]}
VERSION = 1
#: The files each command may write (fnmatch patterns; every experiment also writes result.json).
#: With --force into a folder kerascnn did not make, a file of the user's that one of these would
#: replace is a clash, refused before any work; the write itself checks the exact names again.
WRITES = {
    "evaluate": ("confusion.png", "predictions.png"),
    "filters": ("filters_*.png", "maximize_*.png", "maximize.npy"),
    "activations": ("activations.png",),
    "occlude": ("occlusion.png", "occlusion_map.png"),
    "explain": ("explain.png", "explain_attack.png", "faithfulness.png", "randomisation*.png", "*.npy"),
    "robustness": ("robustness.png", "examples.png", "examples_*.png", "curves.png", "minimal_*.png"),
    "transfer": ("transfer_pgd.png", "transfer_universal.png", "*.npy"),
    "certify": ("certify.png",),
    "corruptions": ("corruptions.png",),
    "attack nontargeted": ("nontargeted.png", "images.npy"),
    "attack targeted": ("targeted.png", "images.npy"),
    "attack noise": ("noise.png", "universal.png", "*.npy"),
    "attack minimal": ("norms.png", "examples.png", "*.npy"),
    "attack universal": ("universal.png", "*.npy"),
    "compare": ("curves_*.png", "test_accuracy.png"),  # beside its runs/ and recipe.json (kerascnn.training.runs)
    "report": ("report.html", "report.md", "*.png", "models"),
}
ALWAYS = ("result.json",)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


@contextlib.contextmanager
def output_folder(out: str | os.PathLike, command: str, *, force: bool = False,
                  protect: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Yields a fresh temporary folder beside `out` (`.<name>.partial-<pid>-<random>`); when the
    block ends normally its contents become `out`, with MARKER added.

    - `out` missing or empty: the temporary is renamed to `out` (missing parents are made, and
      removed again if the block fails).
    - `out` an earlier output of the same `command` (MARKER, no files it does not list): replaced
      whole; the old folder is deleted only once the new one is in place.
    - `out` anything else: UserError, unless `force`: then each new file is moved into `out`
      (replacing a file of the same name) and nothing else in `out` is touched.
    - `out` is, or is a folder above, a path in `protect` (the inputs the command reads): UserError,
      even with `force`.
    An exception in the block (Ctrl-C included) removes the temporary and leaves `out` as it was;
    an OSError while writing becomes store.WriteError, one line. Leftovers of killed runs
    (`.<name>.partial-*`, `.<name>.old-*` of dead pids) are cleaned up on entry.
    """
    given, out = _resolve(out)
    existed = _refusals(given, out, command, force, protect) != "missing"
    outcome = f"{given} was left as it was" if existed else "nothing was written"
    with store.os_errors(f"creating folder {out.parent}", outcome):
        created = store.make_parents(out.parent)
    tmp = None
    try:
        with store.os_errors(f"creating a temporary folder in {out.parent}", outcome):
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{os.getpid()}-", dir=out.parent))
            os.chmod(tmp, 0o777 & ~store._umask())  # mkdtemp makes 0700
        try:
            yield tmp
        except OSError as e:
            if e.errno not in _WRITE_ERRNOS and not _inside(e.filename, tmp):
                raise
            raise store.WriteError(store.describe_os_error(e, f"writing into {given}", outcome)) from None
        with store.os_errors(f"writing {given}", outcome):
            files = sorted(_listing(tmp))
            _write_marker(tmp, command, files)
            _swap(tmp, out, command, given, force)
    except store.WriteError as e:  # its text may name the temporary, which the user never sees
        message = str(e).replace(str(tmp), given) if tmp else str(e)
        raise store.WriteError(message if "; " in message else f"{message}; {outcome}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if not out.exists():
            store.remove_made(created)


def check_output_folder(out: str | os.PathLike, command: str, *, force: bool = False,
                        protect: Iterable[str | os.PathLike] = ()) -> None:
    """The refusals of `output_folder`, before any work: a command calls it first so that a
    refused --out costs nothing (output_folder checks again when it writes)."""
    given, resolved = _resolve(out)
    _refusals(given, resolved, command, force, protect)


def _refusals(given: str, out: Path, command: str, force: bool, protect) -> str:
    if out == out.parent:
        raise UserError(f"output folder {given} is the root of the file system: choose another")
    _refuse_protected(out, given, protect)
    _clean_leftovers(out)
    return _inspect(out, command, given, force)


# ---------------------------------------------------------------------------- helpers
def _resolve(path: str | os.PathLike) -> tuple[str, Path]:
    """(the path as the user gave it, absolute with symlinks, `.` and `..` resolved)."""
    given = str(path)
    try:
        return given, Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
        raise UserError(f"cannot resolve {given}: {e}") from None


def _refuse_protected(out: Path, given: str, protect: Iterable[str | os.PathLike]) -> None:
    for item in protect:
        _, path = _resolve(item)
        if path == out:
            raise UserError(f"output folder {given} is {item}, which this command reads: choose another")
        if out in path.parents:
            raise UserError(f"output folder {given} holds {item}, which this command reads: choose another")


def _inspect(out: Path, command: str, given: str, force: bool) -> str:
    """"missing", "empty" or "ours" (replace it), "foreign" (only with force); else UserError."""
    if not out.exists():
        return "missing"
    if not out.is_dir():
        raise UserError(f"output folder {given} exists and is not a folder: choose another")
    with store.os_errors(f"reading folder {given}"):
        present = _listing(out)
    if not present:
        return "empty"
    try:
        marker = json.loads((out / MARKER).read_text())
        listed = set(marker["files"]) if marker["command"] == command else None
    except (OSError, ValueError, KeyError, TypeError):
        listed = None
    if listed is not None and present - {MARKER} <= listed:
        return "ours"
    if force:
        patterns = WRITES.get(command, ()) + ALWAYS
        _refuse_clashes(out, given, command, {f for f in present if "/" not in f
                                              and any(fnmatch.fnmatch(f, p) for p in patterns)})
        return "foreign"
    extra = None if listed is None else min(present - {MARKER} - listed)
    what = (f"exists and was not written by kerascnn {command}" if extra is None
            else f"holds {extra}, which kerascnn {command} did not write")
    raise UserError(f"output folder {given} {what}: choose another or pass --force (files in it are kept)")


def marked_files(out: Path) -> set[str]:
    """The files the folder's MARKER lists (written by any kerascnn command), or none."""
    try:
        files = json.loads((out / MARKER).read_text())["files"]
        return set(files) if isinstance(files, list) else set()
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _refuse_clashes(out: Path, given: str, command: str, clashing: set[str]) -> None:
    """UserError naming the paths of `clashing` (already in `out`, and about to be written) that
    kerascnn did not write: --force writes beside a user's files, never over them."""
    clashes = sorted(clashing - marked_files(out) - {MARKER})
    if clashes:
        shown = ", ".join(clashes[:4]) + (f" and {len(clashes) - 4} more" if len(clashes) > 4 else "")
        raise UserError(f"output folder {given} holds {shown}, which kerascnn {command} would write and did not "
                        f"make: --force never replaces a file of yours; move it or choose another --out")


def _swap(tmp: Path, out: Path, command: str, given: str, force: bool) -> None:
    state = _inspect(out, command, given, force)  # again: the folder may have changed meanwhile
    if state in ("missing", "empty"):
        os.replace(tmp, out)  # a rename replaces an empty folder
    elif state == "ours":
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        with store.os_errors(f"reading folder {given}"):
            present = _listing(out)
        new = _listing(tmp) - {MARKER}
        # the exact names, once more: a file about to be written over (a folder may be shared)
        _refuse_clashes(out, given, command, {f for f in new & present if not (out / f).is_dir()})
        kept = {f for f in marked_files(out) if f in present}   # what earlier --force runs wrote
        with store.os_errors(f"moving files into {given}", "the files moved before this are there"):
            _merge(tmp, out)
            _write_marker(out, command, sorted(kept | new))


def _merge(tmp: Path, out: Path) -> None:
    """Moves every file of `tmp` to the same place under `out`; deletes nothing in `out`."""
    for root, dirs, files in os.walk(tmp):
        dest = out / Path(root).relative_to(tmp)
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):
                files.append(name)
            else:
                (dest / name).mkdir(exist_ok=True)
        for name in files:
            os.replace(os.path.join(root, name), dest / name)


def _listing(folder: Path) -> set[str]:
    """Relative paths (posix) of every file and folder below `folder`."""
    found = set()
    for root, dirs, files in os.walk(folder, onerror=_raise):
        rel = Path(root).relative_to(folder)
        found.update((rel / name).as_posix() for name in dirs + files)
    return found


def _raise(error: OSError) -> None:
    raise error


def _write_marker(folder: Path, command: str, files: list[str]) -> None:
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    store.write_json(folder / MARKER, {"command": command, "version": VERSION, "created": created,
                                       "files": files})


def _inside(filename, folder: Path) -> bool:
    if not isinstance(filename, (str, os.PathLike)):
        return False
    path = Path(os.path.abspath(filename))
    return path == folder or folder in path.parents


def _clean_leftovers(out: Path) -> None:
    """Removes `.<name>.partial-<pid>-*` and `.<name>.old-<pid>-*` folders of dead pids beside `out`;
    if `out` is missing, a dead run was killed between its two renames: its old folder goes back."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(partial|old)-(\d+)-[A-Za-z0-9_]+")
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return
    olds = []
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if not found or entry.is_symlink() or not entry.is_dir() or pid_alive(int(found[2])):
            continue
        if found[1] == "old":
            olds.append(entry)
        else:
            shutil.rmtree(entry, ignore_errors=True)
    for old in sorted(olds, key=lambda p: p.stat().st_mtime, reverse=True):
        if out.exists() or out.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # if it cannot go back, it stays where it is
                os.replace(old, out)


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:  # another user's
        pass
    return True
