"""The report's robustness section (experiments.robustness_study): several models' curves, minimal
norms, the universal comparison and the transfer matrix, in a report of its own."""
import json

import numpy as np
import pytest

from kerascnn.experiments import robustness_study
from tests.test_robustness import tiny_model


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    from kerascnn.outputs import store

    folder = tmp_path_factory.mktemp("study")
    paths = []
    for name, seed in (("a", 6), ("b", 7)):
        store.save_model(tiny_model(seed=seed), folder / f"{name}.keras")
        paths.append(folder / f"{name}.keras")
    return paths


SMALL = {"count": 20, "minimal_count": 4, "fit": 40, "universal_count": 30, "autoattack_count": 5}


def test_the_study_in_a_report(two_models, idx_dir, tmp_path, monkeypatch):
    import kerascnn.reporting.build as report_lib
    from kerascnn.reporting.build import ReportConfig, build_report

    plan = report_lib.plan
    monkeypatch.setattr(report_lib, "plan", lambda task, subject: [s for s in plan(task, subject)
                                                                    if s[2] == "robustness_study"])
    config = ReportConfig(out_dir=str(tmp_path / "r"), data_dir=str(idx_dir), model=str(two_models[0]),
                          options={"robustness_study": SMALL | {"others": (str(two_models[1]),)}})
    result = build_report(config)
    numbers = result.numbers["robustness"]
    assert numbers["models"] == ["a", "b"] and numbers["counts"] == {"curves": 20, "minimal": 4, "autoattack": 5}
    for name in ("a", "b"):
        curve = numbers["robustness"][name]
        assert curve["count"] == 20 and set(curve["checks"]) >= {"apgd-ce_never_above_fgsm", "zero_at_huge_eps"}
        assert set(numbers["minimal_median"]) == {"l2", "linf"}
    # the report runs AutoAttack on its first model only (REPORT_OPTIONS), and says so
    assert list(numbers["autoattack"]) == ["a"]
    for name in ("a",):
        strongest = numbers["autoattack"][name]
        assert strongest["count"] == 5 and strongest["ensemble"]["components"] == ["apgd-ce", "apgd-t", "fab-t",
                                                                                     "square"]
        assert strongest["accuracy"]["autoattack"][-1] <= strongest["clean_accuracy"]
    assert "the first model only" in (tmp_path / "r" / "report.md").read_text()
    assert numbers["transfer"]["sources"] == ["a", "b"]
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<h2>Robustness: eps-bounded attacks, minimal perturbations, universal noise, transfer</h2>" in page
    names = {p.name for p in result.figures}
    assert {"robustness_curves.png", "robustness_minimal_l2.png", "robustness_universal.png",
            "robustness_transfer_pgd.png"} <= names


def test_other_shipped_models_join_only_the_shipped_cnn(two_models, idx_dir):
    from kerascnn.model.subject import Subject
    from kerascnn.data.tasks import Task

    assert robustness_study.shipped_others(Subject.load(two_models[0], Task(data_dir=str(idx_dir)))) == ()


def test_one_model_has_no_transfer_matrix(two_models, idx_dir, monkeypatch):
    from kerascnn.model.subject import Subject
    from kerascnn.data.tasks import Task

    subject = Subject.load(two_models[0], Task(data_dir=str(idx_dir)))
    result = robustness_study.run(subject, robustness_study.Options(**SMALL))
    assert result.transfer is None and set(robustness_study.figures(result)) == {
        "curves.png", "minimal_l2.png", "minimal_linf.png", "universal.png"}
    data = json.loads(json.dumps(result.to_dict()))
    assert data["transfer"] is None and np.isfinite(data["minimal_median"]["l2"]["a"])
    assert len(robustness_study.table(result).rows) == 1
    median = data["minimal_median"]["l2"]["a"]   # three significant digits, however small (0.0043 read "0.00")
    assert f"(median minimal L2 {median:.3g})" in robustness_study.summary(result)
    monkeypatch.setattr(type(result.minimal["l2"][0].attack), "median", lambda self: 0.0043)
    assert "(median minimal L2 0.0043)" in robustness_study.summary(result)


def test_the_certified_section_takes_the_robustness_sections_smallest_l2_changes(two_models, idx_dir, monkeypatch):
    """Where the certified section smooths the subject itself (any dataset but MNIST), it asks for the
    smallest L2 changes of the same first test images with the same options as the robustness section:
    minimal.shared runs FMN once per subject and options, and gives what a fresh run gives."""
    from kerascnn.data.tasks import Task
    from kerascnn.experiments import certify_study, minimal
    from kerascnn.model.subject import Subject

    task = Task(data_dir=str(idx_dir))
    subject = Subject.load(two_models[0], task)
    runs = []
    real = minimal.run
    monkeypatch.setattr(minimal, "run", lambda s, o, progress=None: runs.append(o) or real(s, o, progress))
    monkeypatch.setattr(certify_study, "smoothed_path", lambda s: None)  # as off MNIST
    study = robustness_study.run(subject, robustness_study.Options(**SMALL, minimal_fab=False, minimal_steps=20))
    assert [o.norm for o in runs] == ["l2", "linf"]
    certified = certify_study.run(subject, certify_study.Options(count=4, n=100, minimal_fab=False, minimal_steps=20,
                                                                 attack_steps=2, attack_samples=2))
    assert len(runs) == 2 and certified.minimal is study.minimal["l2"][0]  # no third FMN run
    fresh = real(Subject.load(two_models[0], task), runs[0])
    np.testing.assert_array_equal(certified.minimal.attack.distance, fresh.attack.distance)
    certify_study.run(subject, certify_study.Options(count=3, n=100, minimal_fab=False, minimal_steps=20,
                                                     attack_steps=2, attack_samples=2))
    assert len(runs) == 3  # other options: run anew
