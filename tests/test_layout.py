"""The house keeps its shape: every import of the project's own modules (at the top of a file or
inside a function) points down the floors below, or sideways within a floor, and none closes a loop.

    cli -> reporting -> api -> experiments -> plots -> attributions, attacks, smoothing, corrupt, training, study,
        exporting
        -> model -> data
        -> outputs -> errors and the package itself
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Floors, top first: a module may import its own floor's modules and any floor below.
FLOORS = [("cli",), ("kerascnn.serve",), ("kerascnn.reporting",), ("kerascnn.api",), ("kerascnn.experiments",),
          ("kerascnn.plots",),
          ("kerascnn.attributions", "kerascnn.attacks", "kerascnn.smoothing", "kerascnn.corrupt", "kerascnn.training",
           "kerascnn.study", "kerascnn.exporting"),
          ("kerascnn.model",), ("kerascnn.data",), ("kerascnn.outputs",), ("kerascnn.errors", "kerascnn")]


def modules() -> dict[str, Path]:
    found = {}
    for top in ("kerascnn", "cli"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict) -> set[str]:
    """The project's modules that `path` imports (anywhere in it; not those under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("kerascnn", "cli"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] in ("kerascnn", "cli"))
    return {m for m in out if m in known}


def floor(module: str) -> int:
    for level, prefixes in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes if p != "kerascnn"):
            return level
    return len(FLOORS) - 1  # kerascnn itself: version, SAVED_MODELS


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_every_import_points_down_or_sideways():
    upward = sorted(f"{a} -> {b}" for a, deps in graph().items() for b in deps if floor(b) < floor(a))
    assert upward == []


def test_no_import_loops():
    edges = graph()
    index, low, stack, on, loops, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                loops.append(sorted(part))

    for v in edges:
        if v not in index:
            visit(v)
    assert loops == []


def test_the_walk_sees_a_loop_and_an_upward_import(tmp_path, monkeypatch):
    """The checks can fail: two modules that import each other, and data importing experiments."""
    (tmp_path / "kerascnn" / "data").mkdir(parents=True)
    (tmp_path / "kerascnn" / "experiments").mkdir()
    (tmp_path / "cli").mkdir()
    (tmp_path / "kerascnn" / "data" / "a.py").write_text("from kerascnn.data import b\nimport kerascnn.experiments.c\n")
    (tmp_path / "kerascnn" / "data" / "b.py").write_text("def f():\n    from kerascnn.data.a import x\n")
    (tmp_path / "kerascnn" / "experiments" / "c.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    edges = graph()
    assert edges["kerascnn.data.a"] == {"kerascnn.data.b", "kerascnn.experiments.c"}
    assert edges["kerascnn.data.b"] == {"kerascnn.data.a"}
    assert floor("kerascnn.experiments.c") < floor("kerascnn.data.a")


def test_no_library_or_command_file_is_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in modules().values() if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}
