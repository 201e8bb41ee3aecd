"""Output folders, the folder lock, strict JSON and OS errors, checked on the real file system."""
import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerascnn.errors import UserError
from kerascnn.outputs import folders as outputs, store
from kerascnn.outputs.locks import FolderLock
from kerascnn.outputs.folders import output_folder

REPO = Path(__file__).resolve().parent.parent


def tree(folder: Path) -> dict:
    """Every file below `folder` (hidden ones included) -> its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def fail(constant):
    raise AssertionError(f"not strict JSON: {constant}")


# ---------------------------------------------------------------------------- strict JSON
def test_json_turns_every_non_finite_number_into_null(tmp_path):
    obj = {"loss": math.nan, "xs": [math.inf, -math.inf, 1.5], "f32": np.float32("nan"),
           "arr": np.array([[1.0, np.nan], [np.inf, 2.0]]), "deep": {"t": (np.float64("-inf"),)},
           np.int64(3): np.int64(7), "path": Path("a/b")}
    expected = {"loss": None, "xs": [None, None, 1.5], "f32": None, "arr": [[1.0, None], [None, 2.0]],
                "deep": {"t": [None]}, "3": 7, "path": "a/b"}
    assert json.loads(store.dumps_json(obj), parse_constant=fail) == expected
    store.write_json(tmp_path / "m.json", obj)
    assert json.loads((tmp_path / "m.json").read_text(), parse_constant=fail) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    with pytest.raises(TypeError):
        store.dumps_json({"x": object()})


# ---------------------------------------------------------------------------- output folders
def test_new_folder_gets_the_files_a_marker_and_usual_modes(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with output_folder(out, "export") as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(f".out.partial-{os.getpid()}-")
        store.write_text(tmp / "result.json", "{}")
        store.ensure_dir(tmp / "sub")
        store.write_bytes(tmp / "sub" / "x.bin", b"x")
    marker = json.loads((out / outputs.MARKER).read_text())
    assert marker["command"] == "export" and marker["version"] == 1 and marker["created"]
    assert marker["files"] == ["result.json", "sub", "sub/x.bin"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # no temporary left
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (out / "result.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_foreign_folder_is_refused_and_kept_or_merged_into_with_force(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "sub" / "keep.txt").write_text("mine too")
    before = tree(out)
    ran = []
    with pytest.raises(UserError) as e:
        with output_folder(out, "export"):
            ran.append(1)
    assert one_line(e) == (f"output folder {out} exists and was not written by kerascnn export: "
                           "choose another or pass --force (files in it are kept)")
    assert not ran and tree(out) == before and sorted(os.listdir(tmp_path)) == ["out"]

    with pytest.raises(UserError) as e:  # force writes beside the user's files, never over them
        with output_folder(out, "export", force=True) as tmp:
            store.write_text(tmp / "result.json", "new")
            store.write_text(tmp / "notes.txt", "would replace the user's")
    assert "holds notes.txt, which kerascnn export would write and did not make" in one_line(e)
    assert tree(out) == before and sorted(os.listdir(tmp_path)) == ["out"]

    with output_folder(out, "export", force=True) as tmp:
        store.write_text(tmp / "result.json", "new")
        store.write_text(tmp / "sub" / "new.txt", "new")
    after = tree(out)
    assert after["sub/keep.txt"] == b"mine too" and after["sub/new.txt"] == b"new"
    assert after["result.json"] == b"new" and after["notes.txt"] == b"mine"
    assert sorted(os.listdir(tmp_path)) == ["out"]
    with output_folder(out, "export", force=True) as tmp:  # what kerascnn wrote there, it may replace
        store.write_text(tmp / "result.json", "newer")
    assert tree(out)["result.json"] == b"newer" and tree(out)["sub/new.txt"] == b"new"


def test_force_refuses_a_clash_before_any_work(tmp_path):
    from kerascnn.outputs.folders import check_output_folder

    out = tmp_path / "out"
    out.mkdir()
    for name in ("occlusion.png", "result.json", "thesis.txt"):
        (out / name).write_text("mine")
    with pytest.raises(UserError) as e:
        check_output_folder(out, "occlude", force=True)
    assert one_line(e) == (f"output folder {out} holds occlusion.png, result.json, which kerascnn occlude would "
                           "write and did not make: --force never replaces a file of yours; move it or choose "
                           "another --out")
    (out / "occlusion.png").unlink()
    (out / "result.json").rename(out / "my_result.json")
    check_output_folder(out, "occlude", force=True)  # no clash: thesis.txt and my_result.json stay beside


def test_earlier_output_of_the_same_command_is_replaced_whole(tmp_path):
    out = tmp_path / "out"
    with output_folder(out, "attack") as tmp:
        store.write_text(tmp / "result.json", "first")
        store.write_text(tmp / "universal.png", "stale")
    with output_folder(out, "attack") as tmp:
        store.write_text(tmp / "result.json", "second")
    assert set(tree(out)) == {"result.json", outputs.MARKER} and tree(out)["result.json"] == b"second"
    assert sorted(os.listdir(tmp_path)) == ["out"]  # the old folder was deleted
    with pytest.raises(UserError, match="was not written by kerascnn report"):  # another command's
        with output_folder(out, "report"):
            pass


def test_a_file_the_user_added_to_our_folder_stops_the_replacement(tmp_path):
    out = tmp_path / "out"
    with output_folder(out, "report") as tmp:
        store.write_text(tmp / "report.html", "r")
    (out / "my notes.txt").write_text("mine")
    with pytest.raises(UserError) as e:
        with output_folder(out, "report"):
            pass
    assert one_line(e).startswith(f"output folder {out} holds my notes.txt, which kerascnn report did not write")
    assert (out / "my notes.txt").read_text() == "mine"


def test_empty_folder_is_replaced_and_a_file_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with output_folder(out, "export") as tmp:
        store.write_text(tmp / "a.txt", "a")
    assert (out / "a.txt").read_text() == "a"
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    with pytest.raises(UserError, match="exists and is not a folder"):
        with output_folder(blocker, "export", force=True):
            pass
    assert blocker.read_text() == "keep"


@pytest.mark.parametrize("interrupt", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_in_the_block_leaves_out_as_it_was(tmp_path, interrupt):
    out = tmp_path / "out"
    with output_folder(out, "report") as tmp:
        store.write_text(tmp / "report.html", "old")
    before = tree(out)
    with pytest.raises(type(interrupt)):
        with output_folder(out, "report") as tmp:
            store.write_text(tmp / "report.html", "half")
            raise interrupt
    assert tree(out) == before and sorted(os.listdir(tmp_path)) == ["out"]
    with pytest.raises(type(interrupt)):  # a new folder: no empty parents are left behind
        with output_folder(tmp_path / "new" / "deeper" / "out", "report"):
            raise interrupt
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_dot_and_dotdot_are_resolved_and_refused_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "user.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    for given in [".", "a/sub/..", ""]:
        with pytest.raises(UserError) as e:
            with output_folder(given, "export"):
                pass
        assert one_line(e).startswith(f"output folder {given} exists and was not written by kerascnn export")
    assert sorted(os.listdir(tmp_path)) == ["a", "user.txt"] and os.listdir("a") == ["sub"]
    with pytest.raises(UserError, match="root of the file system"):
        with output_folder("/", "export", force=True):
            pass


def test_the_folder_of_the_model_being_read_is_refused_even_with_force(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "cnn"
    run.mkdir(parents=True)
    model = run / "model.keras"
    model.write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    for given in [run, tmp_path / "runs", "runs/cnn/../cnn", ".", model]:
        with pytest.raises(UserError) as e:
            with output_folder(given, "export", force=True, protect=[model]):
                pass
        assert "which this command reads: choose another" in one_line(e)
    with output_folder(run / "exported", "export", protect=["runs/cnn/model.keras"]) as tmp:
        store.write_text(tmp / "saved_model.pb", "x")  # a folder inside the run's folder is fine
    assert model.read_bytes() == b"weights" and sorted(os.listdir(run)) == ["exported", "model.keras"]


def test_leftovers_of_dead_runs_are_cleaned_and_others_kept(tmp_path):
    out = tmp_path / "out"
    with output_folder(out, "export") as tmp:  # with `out` in place a dead run's old folder is garbage
        store.write_text(tmp / "a", "earlier")
    dead = dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = [f".out.partial-{dead}-abc", f".out.old-{dead}-def", f".out.partial-{live.pid}-ghi",
                 f".out.old-{os.getpid()}-jkl", f".other.partial-{dead}-abc", f".out.partial-{dead}"]
        for name in names:
            (tmp_path / name).mkdir()
            (tmp_path / name / "f").write_text(name)
        with output_folder(out, "export") as tmp:
            store.write_text(tmp / "a", "a")
    finally:
        live.kill()
        live.wait()
    assert sorted(os.listdir(tmp_path)) == sorted(["out"] + names[2:])


def test_run_killed_between_its_two_renames_gets_its_old_folder_back(tmp_path):
    out = tmp_path / "out"
    with output_folder(out, "export") as tmp:
        store.write_text(tmp / "a", "earlier")
    before = tree(out)
    os.replace(out, tmp_path / f".out.old-{dead_pid()}-abc")
    with pytest.raises(RuntimeError):
        with output_folder(out, "export"):
            raise RuntimeError
    assert tree(out) == before and sorted(os.listdir(tmp_path)) == ["out"]


def test_sigkilled_run_leaves_a_partial_that_the_next_run_removes(tmp_path):
    out = tmp_path / "out"
    script = (f"import os, signal\nfrom kerascnn.outputs import folders as outputs, store\n"
              f"with outputs.output_folder({str(out)!r}, 'report') as tmp:\n"
              f"    store.write_text(tmp / 'fig.png', 'x')\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    child = subprocess.run([sys.executable, "-c", script], cwd=REPO)
    assert child.returncode == -signal.SIGKILL
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == [".out.partial"]
    with output_folder(out, "report") as tmp:
        store.write_text(tmp / "report.html", "r")
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_disk_full_in_the_block_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "new" / "out"

    def full(self, data):
        with open(self, "wb") as f:
            f.write(data[:3])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))
    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(UserError) as e:
        with output_folder(out, "report") as tmp:
            store.write_bytes(tmp / "fig.png", b"png data")
    assert one_line(e) == f"no space left on device while writing {out}/fig.png; nothing was written"
    with pytest.raises(UserError) as e:  # an OSError of the block's own writing
        with output_folder(out, "report"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert one_line(e) == f"no space left on device while writing into {out}; nothing was written"
    with pytest.raises(FileNotFoundError):  # one that is not about the output passes through
        with output_folder(out, "report"):
            open(tmp_path / "missing-input")
    assert os.listdir(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 200 KiB tmpfs (needs root and a mount-permitting sandbox; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)]
    if not shutil.which("mount") or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_real_full_disk_is_one_line_and_leaves_nothing(tiny_disk):
    from matplotlib.figure import Figure

    array = np.zeros(1_000_000 // 8)  # 1 MB
    with pytest.raises(UserError) as e:
        store.save_npy(tiny_disk / "a.npy", array)
    assert one_line(e) == f"no space left on device while writing {tiny_disk / 'a.npy'}"
    with pytest.raises(UserError) as e:
        with output_folder(tiny_disk / "out", "attack") as tmp:
            store.write_json(tmp / "result.json", {"ok": 1})
            store.save_npy(tmp / "images.npy", array)
    assert one_line(e) == f"no space left on device while writing {tiny_disk}/out/images.npy; nothing was written"
    figure = Figure(figsize=(10, 10))
    figure.add_subplot().imshow(np.random.default_rng(0).random((600, 600)))
    with pytest.raises(UserError, match="^no space left on device while writing"):
        store.save_figure(figure, tiny_disk / "fig.png", dpi=100)
    assert os.listdir(tiny_disk) == []


# ---------------------------------------------------------------------------- the folder lock
HOLD = "import sys, time\nfrom kerascnn.outputs.locks import FolderLock\nwith FolderLock(sys.argv[1]):\n" \
       "    print('locked', flush=True)\n    time.sleep(60)\n"


def test_lock_refuses_a_second_run_and_a_killed_holder_releases_it(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(UserError) as e:
            with FolderLock(folder):
                pass
        assert one_line(e) == (f"another kerascnn run is writing into {folder} (pid {holder.pid}); "
                               "wait for it or choose another --out")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (folder / ".lock").exists()  # a killed holder leaves the file, not the lock
    with FolderLock(folder):
        with pytest.raises(UserError, match=f"pid {os.getpid()}"):  # a second holder in this process
            with FolderLock(folder):
                pass
        (folder / "model.keras").write_text("x")
    assert os.listdir(folder) == ["model.keras"]


def test_lock_removes_the_folder_it_made_when_the_run_leaves_it_empty(tmp_path):
    with pytest.raises(RuntimeError):
        with FolderLock(tmp_path / "a" / "run"):
            raise RuntimeError
    assert os.listdir(tmp_path) == []
