import base64
import json
import re
import shutil

import numpy as np
import pytest

import kerascnn
from kerascnn.errors import UserError
from kerascnn.outputs.document import Image, Paragraph, Section, Table, render_html, render_markdown
from kerascnn.reporting.build import ReportConfig, build_report
from kerascnn.training.config import TrainConfig
from tests.support import assert_one_line_error, cli

EXPERIMENTS = ["Test predictions", "Filters of conv1", "Filter 23 of conv2", "Activation maps",
               "Occlusion of the first 7", "Occlusion of the first 9", "Adversarial: images from noise",
               "Adversarial: look-alikes of a test image", "Adversarial: noise towards one class"]
SECTIONS = ["The network", "Training", *EXPERIMENTS, "Beside the reference reports"]
PNG = b"\x89PNG\r\n\x1a\n"
#: The attacks shrunk so that a report takes seconds (the figures and tables are the same kind).
SHRUNK = {"nontargeted": {"steps": 3}, "targeted": {"steps": 3}, "noise": {"steps": 3, "count": 2, "universal": 10}}
#: The experiments these tests check; those added to the report since have tests of their own.
CORE = ("evaluation", "filters", "activations", "occlusion", "nontargeted", "targeted", "noise")


@pytest.fixture(autouse=True)
def core_plan(monkeypatch):
    """The report's own plan less the experiments outside CORE, so that these tests stay seconds long
    and their counts fixed (test_the_plan_keeps_the_assignments_experiments checks the whole plan)."""
    import kerascnn.reporting.build as report_lib

    plan = report_lib.plan
    monkeypatch.setattr(report_lib, "plan", lambda task, subject: [s for s in plan(task, subject) if s[2] in CORE])


def quick(tmp_path, idx_dir, **kw) -> ReportConfig:
    values = dict(out_dir=str(tmp_path / "report"), data_dir=str(idx_dir), options=SHRUNK)
    values.update(kw)
    return ReportConfig(**values)


def check_documents(out, figures_expected: int, sections=SECTIONS, mnist=True):
    page = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    positions = [page.index(f"<h2>{title}</h2>") for title in sections]
    assert positions == sorted(positions), "sections out of order"
    for title in sections:
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
    # the folder holds exactly the documents and their figures (and its ownership marker)
    assert {p.name for p in out.iterdir() if p.is_file()} == {"report.html", "report.md", ".kerascnn.json", *linked}
    for word in ("98.92%", "99.05%", "99.20%"):  # the reference reports' numbers, on MNIST only
        assert (word in page and word in md) == mnist
    return page, md


def test_report_end_to_end_on_a_tiny_model(tmp_path, idx_dir, tiny_model_path):
    config = quick(tmp_path, idx_dir, model=str(tiny_model_path), bn_model=str(tiny_model_path))
    lines = []
    result = build_report(config, progress=lines.append)
    out = tmp_path / "report"
    assert result.sections == SECTIONS
    # predictions, confusion, 2 filters, activations, 2 occlusion grids + 2 maps, 4 attacks; no curves (no steps.csv)
    page, md = check_documents(out, 13)
    assert len(result.figures) == 13 and all(p.parent == out and p.is_file() for p in result.figures)
    assert result.html == out / "report.html" and result.markdown == out / "report.md"
    assert "799,078" in page and "799,078" in md
    assert "no steps.csv beside" in page
    assert [line for line in lines if re.match(r"\[\d/3\] ", line) and "experiment" not in line] == [
        "[1/3] the models and their training", "[3/3] writing report.html and report.md"]
    assert [line for line in lines if line.startswith("[2/3] experiment")] == [
        f"[2/3] experiment {i}/9: {title}" for i, title in enumerate(EXPERIMENTS, start=1)]
    assert set(result.seconds) == set(result.numbers) | {"total"} and min(result.seconds.values()) >= 0
    # the occlusion tables carry the reference report's numbers for the 7 and the 9
    assert "0.1734" in page and "0.0097" in page
    # the numbers are the experiments' own JSON: the report and the commands agree
    assert result.numbers["evaluation"]["count"] == 200
    assert len(result.numbers["occlusion_7"]["positions"]) == 9
    assert result.numbers["nontargeted"]["count"] == 10 and result.numbers["noise"]["count"] == 2


def test_report_with_retrain_has_the_curves(tmp_path, idx_dir):
    config = quick(tmp_path, idx_dir, retrain=True,
                   train=TrainConfig(epochs=1, batch_size=32, val_size=100, precision="fp32"))
    result = build_report(config)
    out = tmp_path / "report"
    page, _ = check_documents(out, 17)  # + loss and accuracy curves of both models
    assert (out / "models" / "cnn" / "model.keras").is_file() and (out / "models" / "cnn_bn" / "steps.csv").is_file()
    assert "no steps.csv" not in page
    assert json.loads((out / "models" / "cnn_bn" / "metrics.json").read_text())["batchnorm"] is True
    for name in ("cnn", "cnn_bn"):  # both models in the training table, with their own test accuracy
        accuracy = json.loads((out / "models" / name / "metrics.json").read_text())["test_accuracy"]
        assert re.search(rf"<td>{name}</td>.*?{100 * accuracy:.2f}%", page, re.S)
    # named by run folder and file (outside the working folder), never by this machine's absolute path
    assert "models: cnn = cnn/model.keras; cnn_bn = cnn_bn/model.keras" in page and str(tmp_path) not in page
    assert result.numbers["evaluation"]["accuracy"] == pytest.approx(
        json.loads((out / "models" / "cnn" / "metrics.json").read_text())["test_accuracy"])


def test_report_includes_a_compare_folder(tmp_path, idx_dir, tiny_model_path):
    from kerascnn.api.results import Result
    from kerascnn.experiments import compare
    from kerascnn.study.seeds import aggregate
    from tests.test_compare import fake_run

    runs = [fake_run(bn, s, 0.99 + 0.001 * s) for bn in (False, True) for s in range(2)]
    result = aggregate(runs, {"train": {"epochs": 2, "batch_size": 16, "lr_schedule": "cosine"}, "seeds": 2})
    Result(compare, result, "compare").save(tmp_path / "cmp")  # what `kerascnn compare` writes
    config = quick(tmp_path, idx_dir, model=str(tiny_model_path), bn_model=str(tiny_model_path),
                   compare_dir=str(tmp_path / "cmp"),
                   options={name: values | {"steps": 1} for name, values in SHRUNK.items()})
    build_report(config)
    page, md = check_documents(tmp_path / "report", 16)
    assert result.verdict.sentence in page and "compare_curves_accuracy.png" in md
    assert "kerascnn compare: 2 epochs, batch 16, lr schedule cosine" in page


def test_report_on_another_task_names_its_classes(tmp_path):
    import keras

    from kerascnn.data import folders

    names = ["zebra", "apple", "mango", "kiwi", "plum"]
    rng = np.random.default_rng(0)
    for split, count in (("train", 20), ("test", 15)):
        folders.write_image_folder(tmp_path / "fruit", rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
                                   np.arange(count) % 5, names, split)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="look"),
                              keras.layers.MaxPooling2D(name="shrink"), keras.layers.Conv2D(6, 3, name="again"),
                              keras.layers.Flatten(name="flat"), keras.layers.Dense(5, activation="softmax",
                                                                                    name="answer")])
    model.save(tmp_path / "fruit.keras")
    config = ReportConfig(out_dir=str(tmp_path / "report"), data_dir=str(tmp_path / "fruit"),
                          model=str(tmp_path / "fruit.keras"), options=SHRUNK)
    result = build_report(config)
    ordered = sorted(names)  # class folders in sorted order: apple is class 0, kiwi class 1
    experiments = ["Test predictions", "Filters of look", "Filter 0 of again", "Activation maps",
                   f"Occlusion of the first {ordered[0]}", f"Occlusion of the first {ordered[1]}", *EXPERIMENTS[-3:]]
    assert result.sections == ["The network", "Training", *experiments]  # no reference reports: not MNIST
    page, md = check_documents(tmp_path / "report", 13, result.sections, mnist=False)
    assert "(32, 32, 3) images to 5 classes (a final softmax, read through to its logits)" in page
    assert f"data: fruit, (32, 32, 3), 5 classes" in page
    for name in names:  # every class by name in the evaluation table
        assert f"<td>{name}</td>" in page
    assert result.numbers["evaluation"]["class_names"] == ordered
    assert result.numbers["evaluation"]["count"] == 15


def test_the_plan_keeps_the_assignments_experiments(idx_dir, tiny_model_path, monkeypatch):
    import kerascnn.reporting.build as report_lib
    from kerascnn.model.subject import Subject
    from kerascnn.data.tasks import Task

    monkeypatch.undo()  # the whole plan
    task = Task(data_dir=str(idx_dir))
    steps = report_lib.plan(task, Subject.load(tiny_model_path, task))
    core = [(title, options) for _, title, name, options in steps if name in CORE]
    assert [title for title, _ in core] == EXPERIMENTS  # in this order, whatever else joins them
    options = dict(core)
    assert (options["Filter 23 of conv2"].layer, options["Filter 23 of conv2"].filter) == ("conv2", 23)
    for digit in (7, 9):  # the reference report's two images, with their sensitivity maps
        occlusion = options[f"Occlusion of the first {digit}"]
        assert occlusion.pick.class_name == str(digit) and occlusion.map
    assert len({section_id for section_id, *_ in steps}) == len(steps)  # one id (and figure prefix) each


def test_report_cli_refuses_a_missing_model_before_work(tmp_path):
    result = cli("report", "--out", tmp_path / "r", "--model", tmp_path / "none")
    assert result.exit_code == 2 and "--model" in result.output and "does not exist" in result.output
    assert not (tmp_path / "r").exists()
    with pytest.raises(UserError, match="result.json"):
        ReportConfig(compare_dir=str(tmp_path)).check()
    with pytest.raises(UserError, match="no experiment 'occlude'"):
        ReportConfig(options={"occlude": {"patch": 3}}).check()


def test_report_cli_runs(tmp_path, idx_dir, tiny_model_path, monkeypatch):
    import kerascnn.reporting.build as report_lib

    # the CLI builds the default config; shrink the attacks so that the test stays fast
    config = report_lib.ReportConfig
    monkeypatch.setattr(report_lib, "ReportConfig", lambda **kw: config(**kw, options=SHRUNK))
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(tiny_model_path, folder / "model.keras")
    result = cli("report", "--out", tmp_path / "r", "--model", folder, "--bn-model", tiny_model_path,
                 "--data-dir", idx_dir)
    assert result.exit_code == 0, result.output
    assert "[3/3]" in result.output and "report written" in result.output
    assert (tmp_path / "r" / "report.html").stat().st_size > 100_000
    page, md = ((tmp_path / "r" / name).read_text() for name in ("report.html", "report.md"))
    for text in (page, md):  # named by run folder and file, not by absolute path (--full-paths asks for them)
        assert f"models: run = run/model.keras; model = {tiny_model_path.parent.name}/model.keras" in text
        assert str(tmp_path) not in text and str(idx_dir) not in text
        assert f"kerascnn {kerascnn.__version__}, TensorFlow" in text
    assert "  run (run/model.keras): test accuracy" in result.output and str(folder) not in result.output


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


def test_sections_choose_the_experiments_and_a_wrong_name_is_one_line(tmp_path, idx_dir, tiny_model_path):
    result = cli("report", "--out", tmp_path / "r", "--model", tiny_model_path, "--data-dir", idx_dir,
                 "--sections", "evaluation,filters")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "report.html").read_text()
    assert "models: model = model" in page and str(tmp_path) not in page and str(idx_dir) not in page
    full = cli("report", "--out", tmp_path / "r", "--model", tiny_model_path, "--data-dir", idx_dir,
               "--sections", "evaluation", "--full-paths")
    assert full.exit_code == 0, full.output
    page = (tmp_path / "r" / "report.html").read_text()
    assert f"models: model = {tiny_model_path}" in page and str(idx_dir) in page
    assert f"({tiny_model_path})" in full.output
    lines = [line for line in result.output.splitlines() if line.startswith("[2/3]")]
    assert lines == ["[2/3] experiment 1/3: Test predictions", "[2/3] experiment 2/3: Filters of conv1",
                     "[2/3] experiment 3/3: Filter 23 of conv2"]  # MNIST-shaped IDX digits: the assignment's filter 23
    bad = cli("report", "--out", tmp_path / "r2", "--model", tiny_model_path, "--data-dir", idx_dir,
              "--sections", "evaluation,occlude")
    assert_one_line_error(bad, "--sections: unknown 'occlude': choose from evaluation", exit_code=2)
    assert not (tmp_path / "r2").exists()


@pytest.fixture
def one_class_test_split(tmp_path):
    """(folder, model file): classes a, b, c; the test split holds four images, all of class c."""
    from kerascnn.data.folders import write_image_folder
    from kerascnn.outputs import store
    from tests.test_robustness import tiny_model

    rng = np.random.default_rng(0)
    write_image_folder(tmp_path / "data", rng.integers(0, 256, (6, 16, 16, 1)), [0, 1, 2, 0, 1, 2], "abc", "train")
    write_image_folder(tmp_path / "data", rng.integers(0, 256, (4, 16, 16, 1)), [2, 2, 2, 2], "abc", "test")
    store.save_model(tiny_model((16, 16, 1), classes=3), tmp_path / "m.keras")
    return tmp_path / "data", tmp_path / "m.keras"


def test_default_picks_use_classes_that_have_test_images(one_class_test_split):
    """Their defaults (the assignment's 7, its last class, the first image of each other class) named
    classes without test images, and the commands stopped with "no test image of class"."""
    import kerascnn as kc

    data, model = one_class_test_split
    assert kc.attack.targeted(model, data, steps=2, progress=False).to_dict()["guide_name"] == "c"
    assert kc.explain(model, data, method="saliency", progress=False).to_dict()["class_name"] == "c"
    noisy = kc.attack.noise(model, data, target="a", steps=2, progress=False).to_dict()
    assert noisy["sources"] == "the first test image of each of c" and noisy["count"] == 1
    with pytest.raises(kerascnn.errors.BadValue, match="count"):  # c is the target: no other class to start from
        kc.attack.noise(model, data, target="c", steps=2, progress=False)
    assert kc.attack.universal(model, data, target="a", fit=4, count=4, epochs=1, progress=False).to_dict()["target_name"] == "a"


def test_the_plan_picks_classes_that_have_test_images(one_class_test_split, monkeypatch):
    """A folder whose test split holds only class "c": every pick of the plan names "c" (the report
    stopped with "no test image of class 'a'" before), and there is one occlusion section, not two."""
    import kerascnn.reporting.build as report_lib
    from kerascnn.data.tasks import Task
    from kerascnn.model.subject import Subject

    monkeypatch.undo()  # the whole plan
    data, model = one_class_test_split
    task = Task(data_dir=str(data))
    steps = report_lib.plan(task, Subject.load(model, task))
    picks = {getattr(options, "pick").class_name for *_, options in steps if getattr(options, "pick", None)}
    assert picks == {"c"}
    assert [title for _, title, name, _ in steps if name == "occlusion"] == ["Occlusion of the first c"]
    assert len({section_id for section_id, *_ in steps}) == len(steps)


def test_a_model_of_real_size_gets_the_heavy_budgets_and_the_others_the_commands(idx_dir, tiny_model_path,
                                                                                   monkeypatch):
    """is_heavy (over 2 million activations an image: a MobileNetV2 at 224 px) switches the plan to
    HEAVY_OPTIONS, section by section, and only then: the report on bench_realsize's network took 984 s
    before these budgets (2026-12-06) and about 4 minutes with them."""
    import kerascnn.reporting.build as report_lib
    from kerascnn.data.tasks import Task
    from kerascnn.model.subject import Subject
    from kerascnn.reporting import plan as plan_module

    monkeypatch.undo()  # the whole plan
    task = Task(data_dir=str(idx_dir))
    subject = Subject.load(tiny_model_path, task)
    light = {sid: options for sid, _, _, options in report_lib.plan(task, subject)}
    monkeypatch.setattr(plan_module, "HEAVY", 10)  # the tiny model is "of real size" now
    assert plan_module.is_heavy(subject)
    heavy = {sid: options for sid, _, _, options in report_lib.plan(task, subject)}
    budgets = plan_module.HEAVY_OPTIONS
    seen = set()
    for sid, options in heavy.items():
        name = sid.split("_")[0] if sid.startswith(("maximize", "occlusion")) else sid
        name = {"robustness": "robustness_study", "certified": "certify_study"}.get(name, name)
        seen.add(name)
        for field, value in budgets.get(name, {}).items():
            if name == "occlusion" and not options.map:
                continue
            assert getattr(options, field) == value, (sid, field)
            if sid in light:  # (a model of real size maximises its first layer, the others their last)
                assert getattr(light[sid], field) != value, (sid, field)  # the commands' (or the report's) own
        settings = getattr(options, "settings", None)
        if settings is not None:
            assert settings.occlusion_stride == budgets["attributions"]["occlusion_stride"]
            assert light[sid].settings.occlusion_stride is None
            seen.add("attributions")
    assert set(budgets) <= seen  # every budget reaches its section
    certified, robust = heavy["certified"], heavy["robustness"]
    assert (certified.attack_steps, certified.attack_samples) == (20, 8)
    # the same smallest L2 changes in both sections, so that one FMN run serves both (minimal.shared)
    assert ((certified.count, certified.minimal_steps, certified.minimal_fab)
            == (robust.minimal_count, robust.minimal_steps, robust.minimal_fab))
