import errno
import os
from pathlib import Path

import numpy as np
import pytest

from kerascnn.errors import UserError
from kerascnn.outputs import store


def test_atomic_write_leaves_nothing_when_it_fails(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(TypeError):
        store.write_json(target, {"x": object()})
    assert list(tmp_path.iterdir()) == []
    store.write_json(target, {"x": np.float32(1.5), "a": np.arange(2)})
    assert target.read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_unwritable_folder_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match=f"^not a directory while creating folder {blocker / 'sub'}$"):
        store.ensure_dir(blocker / "sub")


@pytest.mark.parametrize("code, reason", [
    (errno.ENOSPC, "no space left on device"), (errno.EDQUOT, "disk quota exceeded"),
    (errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied"),
    (errno.EPERM, "permission denied"), (errno.ENOTDIR, "not a directory")])
def test_os_errors_are_told_in_one_line(code, reason):
    e = OSError(code, os.strerror(code), "/somewhere/.x.tmp")
    assert store.describe_os_error(e, "writing out/model.keras") == f"{reason} while writing out/model.keras"
    told = store.describe_os_error(e, "writing d", "nothing was changed")
    assert told == f"{reason} while writing d; nothing was changed"
    with pytest.raises(UserError, match=f"^{reason} while saving x$"):
        with store.os_errors("saving x"):
            raise e


def _partly_then_full(path):
    with open(path, "wb") as f:
        f.write(b"half")
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


def _write_then_full(f):
    f.write(b"half")
    raise OSError(errno.ENOSPC, "No space left on device")


def _write_figure(path):
    from matplotlib.figure import Figure

    return store.save_figure(Figure(), path)


@pytest.mark.parametrize("patch, write", [
    ((Path, "write_bytes", lambda self, data: _partly_then_full(self)), lambda p: store.write_bytes(p, b"new")),
    ((Path, "write_bytes", lambda self, data: _partly_then_full(self)), lambda p: store.write_json(p, {"a": 1})),
    ((np, "save", lambda f, a: _write_then_full(f)), lambda p: store.save_npy(p, np.zeros(3))),
    (("matplotlib.figure.Figure.savefig", lambda self, f, **k: _partly_then_full(f)), _write_figure),
    ((os, "replace", lambda *a: _partly_then_full(a[0])), lambda p: store.write_bytes(p, b"new")),
])
@pytest.mark.parametrize("existing", [False, True])
def test_a_full_disk_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch, patch, write, existing):
    target = tmp_path / "out.bin"
    if existing:
        target.write_bytes(b"old")
    monkeypatch.setattr(*patch)
    with pytest.raises(UserError) as e:
        write(target)
    kept = "; the earlier out.bin was kept" if existing else ""
    assert str(e.value) == f"no space left on device while writing {target}{kept}"
    assert os.listdir(tmp_path) == (["out.bin"] if existing else [])
    assert not existing or target.read_bytes() == b"old"


def test_a_figure_that_fails_to_draw_leaves_no_temporary(tmp_path, monkeypatch):
    def broken(self, f, **kwargs):
        Path(f).write_bytes(b"half")
        raise RuntimeError("cannot draw")
    monkeypatch.setattr("matplotlib.figure.Figure.savefig", broken)
    with pytest.raises(RuntimeError, match="cannot draw"):
        _write_figure(tmp_path / "fig.png")
    assert os.listdir(tmp_path) == []


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))
    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(UserError, match=f"^read-only file system while creating folder {tmp_path / 'a'}$"):
        store.ensure_dir(tmp_path / "a")
