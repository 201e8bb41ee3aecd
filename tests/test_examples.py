"""The example notebooks are kept in git without their outputs: no outputs, no execution counts.

Outputs in git bloat every diff with base64 images and go stale the moment the library changes; CI
runs the notebooks instead (`KERASCNN_EXAMPLES_SMALL=1 pytest --nbmake examples/` in .ci/run).
Strip them before a commit with `jupyter nbconvert --clear-output --inplace examples/*.ipynb`.
These checks read the JSON only: no TensorFlow, no kernel.
"""
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_the_examples_are_there():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "your_model.ipynb", "robustness.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_no_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code, f"{path.name} has no code cells"
    with_outputs = [i for i, cell in enumerate(notebook["cells"]) if cell.get("outputs")]
    counted = [i for i, cell in enumerate(notebook["cells"]) if cell.get("execution_count") is not None]
    assert not with_outputs, f"{path.name}: cells {with_outputs} have outputs: clear them before committing"
    assert not counted, f"{path.name}: cells {counted} have an execution_count: clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_reads_the_small_switch(path):
    """CI runs every notebook with KERASCNN_EXAMPLES_SMALL=1: each must shrink its work when it is set."""
    source = "".join("".join(cell["source"]) for cell in json.loads(path.read_text(encoding="utf-8"))["cells"])
    assert 'os.environ.get("KERASCNN_EXAMPLES_SMALL") == "1"' in source, f"{path.name} ignores the small switch"
