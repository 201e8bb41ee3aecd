import base64
import json
import re
import shutil

import pytest
from click.testing import CliRunner

from cli.main import cli
from kerascnn import UserError
from kerascnn.report import (Image, Paragraph, ReportConfig, Section, Table, build_report, render_html,
                             render_markdown)

SECTIONS = ["The network", "Training, with and without batch norm", "Filters", "Activation maps", "Occlusion",
            "Adversarial examples", "Beside the reference reports"]
PNG = b"\x89PNG\r\n\x1a\n"


def quick(tmp_path, idx_dir, **kw) -> ReportConfig:
    values = dict(out_dir=str(tmp_path / "report"), data_dir=str(idx_dir), nontargeted_steps=3, targeted_steps=3,
                  noise_steps=3, noise_count=2, universal_count=10, universal_digit=0)
    values.update(kw)
    return ReportConfig(**values)


def check_documents(out, figures_expected: int):
    page = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    positions = [page.index(f"<h2>{title}</h2>") for title in SECTIONS]
    assert positions == sorted(positions), "sections out of order"
    for title in SECTIONS:
        assert f"## {title}" in md
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == figures_expected
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True)[:8] == PNG
    # self-contained: nothing fetched, nothing run
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "http://" not in page and "https://" not in page
    # report.md links the PNG files beside it, all present
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(linked) == figures_expected
    for name in linked:
        assert (out / name).read_bytes()[:8] == PNG
    for word in ("799,078", "98.92%", "99.05%", "99.20%"):
        assert word in page and word in md
    return page, md


def test_report_end_to_end_on_a_tiny_model(tmp_path, idx_dir, tiny_model_path):
    config = quick(tmp_path, idx_dir, model_dir=str(tiny_model_path), bn_model_dir=str(tiny_model_path))
    lines = []
    result = build_report(config, progress=lines.append)
    out = tmp_path / "report"
    assert result.sections == SECTIONS
    # 2 occlusion grids + 2 maps, predictions, confusion, 2 filters, activations, 4 attacks; no curves (no steps.csv)
    page, md = check_documents(out, 13)
    assert len(result.figures) == 13
    assert "no steps.csv beside" in page
    assert sum(bool(re.match(r"\[\d/7\] ", line)) for line in lines) == 7
    for section in ("network", "training", "attacks", "total"):
        assert result.seconds[section] >= 0
    # the occlusion tables carry the reference report's numbers for the 7 and the 9
    assert "0.1734" in page and "0.0097" in page
    assert result.numbers["network"]["params"] == 799_078


def test_report_with_retrain_has_the_curves(tmp_path, idx_dir):
    config = quick(tmp_path, idx_dir, retrain=True, epochs=1, batch_size=32, val_size=100, precision="fp32")
    result = build_report(config)
    out = tmp_path / "report"
    page, _ = check_documents(out, 17)  # + loss and accuracy curves of both models
    assert (out / "models" / "cnn" / "model.keras").is_file() and (out / "models" / "cnn_bn" / "steps.csv").is_file()
    assert "no steps.csv" not in page
    assert json.loads((out / "models" / "cnn_bn" / "metrics.json").read_text())["batchnorm"] is True
    assert set(result.numbers["test_accuracy"]) == {"cnn", "cnn_bn"}


def test_report_includes_a_compare_folder(tmp_path, idx_dir, tiny_model_path):
    from kerascnn import compare as study
    from tests.test_compare import fake_run

    runs = [fake_run(bn, s, 0.99 + 0.001 * s) for bn in (False, True) for s in range(2)]
    result = study.aggregate(runs, {"epochs": 2, "batch_size": 16, "lr_schedule": "cosine", "val_every": 20})
    study.save(result, tmp_path / "cmp")
    config = quick(tmp_path, idx_dir, model_dir=str(tiny_model_path), bn_model_dir=str(tiny_model_path),
                   compare_dir=str(tmp_path / "cmp"), nontargeted_steps=1, targeted_steps=1, noise_steps=1)
    build_report(config)
    page, md = check_documents(tmp_path / "report", 16)
    assert result.verdict.sentence in page and "compare_curves_accuracy.png" in md


def test_report_cli_refuses_a_missing_model_before_work(tmp_path):
    result = CliRunner().invoke(cli, ["report", "--out", str(tmp_path / "r"), "--model", str(tmp_path / "none")])
    assert result.exit_code != 0 and "model not found" in result.output
    with pytest.raises(UserError, match="compare.json"):
        ReportConfig(compare_dir=str(tmp_path)).check()


def test_report_cli_runs(tmp_path, idx_dir, tiny_model_path, monkeypatch):
    import kerascnn.report as report_lib

    # the CLI builds the default config; shrink the attacks so that the test stays fast
    config = report_lib.ReportConfig
    monkeypatch.setattr(report_lib, "ReportConfig", lambda **kw: config(
        **kw, nontargeted_steps=2, targeted_steps=2, noise_steps=2, universal_count=10))
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(tiny_model_path, folder / "model.keras")
    result = CliRunner().invoke(cli, ["report", "--out", str(tmp_path / "r"), "--model", str(folder),
                                      "--bn-model", str(tiny_model_path), "--data-dir", str(idx_dir)])
    assert result.exit_code == 0, result.output
    assert "[7/7]" in result.output and "report written" in result.output
    assert (tmp_path / "r" / "report.html").stat().st_size > 100_000


def test_rendering_escapes_text_and_aligns_numbers():
    sections = [Section("a", "A <b>", [Paragraph("x < y & z", note=True),
                                       Table(["name", "n"], [["total", "1,234"], ["p|q", None]], "cap", numeric=(1,)),
                                       Image("f.png", PNG + b"rest", "a \"figure\"")])]
    page = render_html("T", ["meta"], sections)
    assert "A &lt;b&gt;" in page and "x &lt; y &amp; z" in page and 'class="note"' in page
    assert '<td class="num">1,234</td>' in page and '<tr class="total">' in page and "<td>—</td>" not in page
    assert 'alt="a &quot;figure&quot;"' in page
    md = render_markdown("T", ["meta"], sections)
    assert "| p\\|q | — |" in md and "|---|---:|" in md and "![a \"figure\"](f.png)" in md
