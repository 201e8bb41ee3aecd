"""The package says what it is: one version (kerascnn.__version__), the same in `kerascnn --version`, in
the metadata `pip install .` writes, in CHANGELOG.md, and in every result.json, metrics.json and report."""
from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

import kerascnn
from tests.support import cli

ROOT = Path(__file__).resolve().parent.parent
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
#: Keep a Changelog 1.1.0's kinds of change.
KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_the_version_is_semantic():
    assert SEMVER.match(kerascnn.__version__), kerascnn.__version__


def test_kerascnn_version_prints_the_packages_version():
    result = cli("--version")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"kerascnn, version {kerascnn.__version__}"


def test_pip_reads_the_same_version_without_importing_tensorflow():
    """pyproject.toml's dynamic version is setuptools' attr: of kerascnn.__version__, read statically
    (the literal in kerascnn/__init__.py): what `pip install .` writes into the metadata."""
    import tomllib

    from setuptools.config.expand import read_attr

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert read_attr(attr, root_dir=ROOT) == kerascnn.__version__


def test_the_installed_metadata_has_the_same_version():
    from importlib import metadata

    try:
        installed = metadata.distribution("kerascnn")
    except metadata.PackageNotFoundError:
        pytest.skip("kerascnn is not installed (pip install -e .)")
    assert installed.version == kerascnn.__version__, "stale metadata: run `pip install -e .` again"


def _entries(text: str) -> list[tuple[str, str | None, list[str]]]:
    """CHANGELOG.md's entries: (version or 'Unreleased', date or None, the kinds of change under it)."""
    entries = []
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        head = block.splitlines()[0]
        found = re.fullmatch(r"\[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?", head.strip())
        assert found, f"not a Keep a Changelog heading: ## {head}"
        kinds = re.findall(r"^### (.+)$", block, flags=re.M)
        entries.append((found.group(1), found.group(2), kinds))
    return entries


def test_the_changelog_has_an_entry_for_this_version_in_keep_a_changelog_form():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n") and "keepachangelog.com" in text and "semver.org" in text
    entries = _entries(text)
    assert entries[0][0] == "Unreleased"
    released = entries[1:]
    versions = [v for v, _, _ in released]
    assert kerascnn.__version__ in versions
    assert all(SEMVER.match(v) for v in versions)
    key = [tuple(int(p) for p in v.split("-")[0].split(".")) for v in versions]
    assert key == sorted(key, reverse=True) and len(set(key)) == len(key), "newest first, each once"
    dates = [date.fromisoformat(d) for _, d, _ in released]
    assert dates == sorted(dates, reverse=True)
    for version, _, kinds in released:
        assert kinds and set(kinds) <= KINDS, (version, kinds)


def test_result_json_records_the_version_that_wrote_it(tmp_path):
    from kerascnn.api.results import Result
    from kerascnn.outputs.document import Table

    experiment = SimpleNamespace(figures=lambda raw: {}, table=lambda raw: Table(["a"], [[1]]),
                                 summary=lambda raw: "one row")
    raw = SimpleNamespace(to_dict=lambda: {"model": "/abs/model.keras", "accuracy": 0.5})
    result = Result(experiment, raw, "evaluate")
    result.save(tmp_path / "out")
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    assert written["kerascnn_version"] == kerascnn.__version__
    assert written["model"] == "/abs/model.keras"  # result.json keeps what it had: the absolute path
    assert result.to_dict() == written


def test_training_metrics_record_the_version(tmp_path, idx_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("train", "--data-dir", idx_dir, "--subset", 100, "--epochs", 1, "--batch-size", 50,
                 "--precision", "fp32", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["kerascnn_version"] == kerascnn.__version__
