"""Results that show themselves: what every public function returns.

    result.figures()          {file name: matplotlib Figure}, drawn anew on each call
    result.table()            the text the command prints (its table, then its summary)
    result.to_dict()          exactly the command's result.json (strict JSON: no NaN)
    result.save(out)          exactly the files the command writes, under the same rules: a folder
                              kerascnn did not make is refused (force=True writes beside its files,
                              never replacing one of the user's inputs), and nothing is half-written
    result._repr_html_()      the table and every figure inline: a bare `result` in a notebook cell

The experiment's own result stays reachable: `result.raw`, and its fields read through
(`kc.evaluate(...).accuracy`).
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path


class Result:
    """One experiment's result with the ways to show it (see the module docstring)."""

    def __init__(self, experiment, raw, command: str, subjects=(), extra_json: dict | None = None, protect=()):
        self._experiment = experiment
        self.raw = raw
        self.command = command          # the command that writes the same files: "occlude", "attack noise"
        self._subjects = list(subjects)
        self._extra = dict(extra_json or {})
        self._protect = list(protect)

    def __getattr__(self, name):
        """The experiment's fields read through: the result's own (`.occlusion`), those of the
        results it holds (`kc.evaluate(...).accuracy` is `.raw.evaluation.accuracy`), else its JSON's
        (`kc.attack.minimal(...).median`)."""
        if name.startswith("_") or name in ("raw", "command", "files"):
            raise AttributeError(name)
        raw = self.__dict__.get("raw")
        if hasattr(raw, name):
            return getattr(raw, name)
        for value in getattr(raw, "__dict__", {}).values():
            if hasattr(type(value), "__dataclass_fields__") and hasattr(value, name):
                return getattr(value, name)
        data = self.to_dict()
        if name in data:
            return data[name]
        raise AttributeError(f"this {self.command} result has no {name!r}: see .raw, .to_dict() or dir()")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(dir(self.raw)))

    def __repr__(self) -> str:
        return f"<kerascnn {self.command} result: {self.summary()[:120]}>"

    # ------------------------------------------------------------------ the numbers
    def _json_data(self) -> dict:
        from kerascnn import __version__

        # the version that wrote it first, so that a reader knows which code the numbers came from
        data = {"kerascnn_version": __version__} | self.raw.to_dict() | self._extra
        if len(self._subjects) == 1:
            data["input_domain"] = self._subjects[0].domain_dict()
        elif self._subjects:
            data["input_domain"] = {s.name: s.domain_dict() for s in self._subjects}
        return data

    def to_dict(self) -> dict:
        """The command's result.json as a dict (strict JSON: non-finite numbers are None)."""
        from kerascnn.outputs.store import dumps_json

        return json.loads(dumps_json(self._json_data()))

    def table(self) -> str:
        """The command's printed text: its table, a blank line, its summary in words."""
        from kerascnn.outputs.document import render_text

        return f"{render_text(self._experiment.table(self.raw))}\n\n{self.summary()}"

    def summary(self) -> str:
        return self._experiment.summary(self.raw)

    def arrays(self) -> dict:
        """{file name: array} the command keeps as .npy (may be empty)."""
        return self._experiment.arrays(self.raw) if hasattr(self._experiment, "arrays") else {}

    def figures(self) -> dict:
        """{file name: matplotlib Figure}; the caller owns them (close them, or let them be shown)."""
        return self._experiment.figures(self.raw)

    # ------------------------------------------------------------------ files
    def save(self, out, force: bool = False) -> Path:
        """Writes the command's files into folder `out` (whole or not at all) and returns its path.
        A folder kerascnn did not make is refused unless `force`; a model's own folder always is."""
        import matplotlib.pyplot as plt

        from kerascnn.outputs import folders, store

        protect = [*self._protect, *(s.path for s in self._subjects if s.path is not None)]
        data, arrays = self._json_data(), self.arrays()
        with folders.output_folder(out, self.command, force=force, protect=protect) as tmp:
            figures = self.figures()  # drawn once the folder is accepted; closed whatever happens
            try:
                for name, fig in figures.items():
                    store.save_figure(fig, tmp / name)
            finally:
                for fig in figures.values():
                    plt.close(fig)
            for name, array in arrays.items():
                store.save_npy(tmp / name, array)
            store.write_json(tmp / "result.json", data)
        self.files = [*figures, *arrays, "result.json"]
        return Path(out)

    # ------------------------------------------------------------------ a notebook
    def _repr_html_(self) -> str:
        from kerascnn.outputs.document import render_text

        parts = [f"<div class='kerascnn-result'><p><b>kerascnn {html.escape(self.command)}</b></p>",
                 f"<pre style='white-space: pre-wrap'>{html.escape(render_text(self._experiment.table(self.raw)))}</pre>",
                 f"<p>{html.escape(self.summary())}</p>"]
        parts.append(figures_html(self.figures()))
        return "\n".join(parts + ["</div>"])


def figures_html(figures: dict) -> str:
    """Figures as inline PNG images (closed once drawn)."""
    import matplotlib.pyplot as plt

    parts = []
    try:
        for name, fig in figures.items():
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
            data = base64.b64encode(buffer.getvalue()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'/>"
                         f"<figcaption>{html.escape(name)}</figcaption></figure>")
    finally:
        for fig in figures.values():
            plt.close(fig)
    return "\n".join(parts)
