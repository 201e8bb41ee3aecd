"""`kc.report`: the whole study written as one self-contained report.html (and report.md), as
`kerascnn report` writes it."""
from __future__ import annotations


def report(out="runs/report", *, data=None, model=None, bn_model=None, retrain: bool = False, compare_dir=None,
           sections=None, input_range=None, preprocess=None, force: bool = False, options=None, notify=None,
           full_paths: bool = False):
    """Runs every experiment with the commands' defaults on `model` (and `bn_model` beside it) and
    writes report.html, report.md and their figures into `out`.

    Arguments:
        out: the report's folder (an earlier report there is replaced whole; a foreign folder refused).
        data: None (MNIST), a dataset name or a folder. model, bn_model: .keras files or run folders.
        retrain: train both afresh into out/models/. compare_dir: a `compare` folder to include.
        sections: the experiments to run, e.g. ("evaluation", "occlusion") (None: all).
        options: per experiment, {field: value} over its defaults ({"nontargeted": {"steps": 50}}).
        notify: a function given each line of news (None: silent).
        full_paths: name models and data by absolute paths (default: relative to the working folder,
            or by run folder and file name, so that the report can be shared).

    Returns:
        ReportResult: `.html`, `.markdown`, `.figures`, `.seconds` per section, `.numbers` per section.
    """
    from kerascnn.api.inputs import as_task, domain_of
    from kerascnn.cpu import choose_kernels
    from kerascnn.reporting.build import ReportConfig, build_report

    choose_kernels()
    task = as_task(data)
    if isinstance(sections, str):
        from kerascnn.lists import split_list

        sections = split_list(sections, "sections")
    config = ReportConfig(out_dir=str(out), dataset=task.dataset, data_dir=task.data_dir,
                          model=None if model is None else str(model), bn_model=None if bn_model is None else str(bn_model),
                          retrain=retrain, compare_dir=compare_dir, force=force,
                          domain=domain_of(input_range, preprocess), options=dict(options or {}),
                          sections=None if sections is None else tuple(sections), full_paths=full_paths)
    config.check()
    return build_report(config, progress=notify or (lambda line: None))
