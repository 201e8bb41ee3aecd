"""One rule for every comma-separated value (kerascnn.lists.split_list): no empty item anywhere.

The rule is tested once (split_list), then each option's parser is shown to go through it: the
library's checks (a BadValue naming the argument), the Click type (exit 2, one line, before any
work), and the Python API given the same text (kc.explain(method="saliency,,gradcam")).
The commands' own sweep (every list option x `a,`, `,a`, `,`, `a,,b`) is in tests/test_faults.py.
"""
from __future__ import annotations

import click
import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.lists import split_list

SWEEP = ["{a},", ",{a}", ",", "{a},,{b}", "", "  ", "{a}, ,{b}"]


# ---------------------------------------------------------------------------- the rule, once
@pytest.mark.parametrize("text, items", [("a", ("a",)), ("a,b", ("a", "b")), (" a , b ", ("a", "b")),
                                         ("b,a,b", ("b", "a", "b")), ("0.1,0.3", ("0.1", "0.3"))])
def test_split_list_keeps_the_items_in_order_stripped(text, items):
    assert split_list(text, "x") == items


@pytest.mark.parametrize("pattern", SWEEP)
def test_split_list_refuses_an_empty_item_anywhere_naming_the_argument(pattern):
    with pytest.raises(BadValue) as caught:
        split_list(pattern.format(a="a", b="b"), "attacks")
    assert caught.value.param == "attacks" and "\n" not in str(caught.value)


def test_split_list_takes_a_sequence_as_its_items_and_refuses_an_empty_one():
    assert split_list(["fgsm", " pgd"], "attacks") == ("fgsm", "pgd")
    assert split_list((0.1, 0.3), "eps") == (0.1, 0.3)
    assert split_list(0.3, "eps") == (0.3,)
    for bad in ([], (), ["fgsm", ""], ["  "]):
        with pytest.raises(BadValue) as caught:
            split_list(bad, "attacks")
        assert caught.value.param == "attacks"


# ---------------------------------------------------------------------------- each library parser through it
def _parsers():
    from kerascnn.api.robust import _names, _severities
    from kerascnn.attacks.ensemble import check_components
    from kerascnn.attacks.fgm import check_epsilons
    from kerascnn.attacks.loop import parse_classes
    from kerascnn.attributions.gradients import parse_methods
    from kerascnn.experiments.explanation_metrics import parse_metrics
    from kerascnn.model.domain import parse_range

    # (the parser on text, its argument's name, two good items, what the good pair parses to)
    return [
        (parse_methods, "method", ("gradcam", "saliency"), ("saliency", "gradcam")),
        (parse_metrics, "metrics", ("complexity", "sparseness"), ("sparseness", "complexity")),
        (check_epsilons, "eps", ("0.3", "0.1"), (0.1, 0.3)),
        (check_components, "components", ("apgd-ce", "square"), ("apgd-ce", "square")),
        (lambda t: parse_classes(t, 10), "classes", ("5", "3"), [3, 5]),
        (parse_range, "input_range", ("0", "255"), (0.0, 255.0)),
        (lambda t: _names(t, "attacks"), "attacks", ("fgsm", "pgd"), ("fgsm", "pgd")),
        (_severities, "severities", ("5", "3"), (5, 3)),
    ]


@pytest.mark.parametrize("index", range(8))
def test_every_library_parser_follows_the_rule(index):
    parse, param, (a, b), good = _parsers()[index]
    assert parse(f"{a},{b}") == good
    for pattern in SWEEP:
        text = pattern.format(a=a, b=b)
        with pytest.raises(BadValue) as caught:
            parse(text)
        assert caught.value.param == param, (text, caught.value)


def test_no_other_comma_split_is_left_in_the_option_parsers():
    """The parsers once split on commas each in its own way (a trailing comma dropped here, refused
    there); none of the modules that parse list options splits on a comma by itself any more."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = ["cli/report.py", "cli/activations.py", "cli/robustness.py", "cli/corruptions.py", "cli/explain.py",
             "kerascnn/reporting/public.py", "kerascnn/api/robust.py", "kerascnn/api/inspection.py",
             "kerascnn/attributions/gradients.py", "kerascnn/experiments/explanation_metrics.py",
             "kerascnn/attacks/fgm.py", "kerascnn/attacks/ensemble.py", "kerascnn/attacks/loop.py",
             "kerascnn/model/domain.py"]
    found = [f for f in files if 'split(",")' in (root / f).read_text()]
    assert found == []


# ---------------------------------------------------------------------------- the Click type
def test_comma_list_is_a_one_line_usage_error_at_parse_time():
    from click.testing import CliRunner

    from cli.lists import CommaList

    ran = []

    @click.command()
    @click.option("--eps", type=CommaList(lambda items: tuple(float(v) for v in items), "E1,E2,..."))
    def command(eps):
        ran.append(eps)

    runner = CliRunner()
    assert runner.invoke(command, ["--eps", "0.1, 0.3"]).exit_code == 0 and ran == [(0.1, 0.3)]
    for bad in ("0.1,", ",0.1", ",", "0.1,,0.3", "0.1,x"):
        result = runner.invoke(command, ["--eps", bad])
        assert result.exit_code == 2 and "--eps" in result.output, result.output
    assert ran == [(0.1, 0.3)]  # the body never ran on a refused value
    assert "E1,E2,..." in runner.invoke(command, ["--help"]).output


# ---------------------------------------------------------------------------- the Python API, the same text
@pytest.fixture(scope="module")
def tiny():
    """A tiny conv model on 12x12 grey images with 3 classes, and 6 test images."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(2, 3, name="conv_a"),
                              keras.layers.ReLU(), keras.layers.Conv2D(2, 3, name="conv_b"),
                              keras.layers.Flatten(), keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    return model, (rng.random((6, 12, 12, 1), np.float32), np.arange(6) % 3)


@pytest.mark.parametrize("call, param", [
    (lambda kc, m, d: kc.explain(m, d, index=0, method="saliency,,gradcam", progress=False), "method"),
    (lambda kc, m, d: kc.explain(m, d, metrics="sparseness,", count=2, progress=False), "metrics"),
    (lambda kc, m, d: kc.activations(m, d, index=0, layers="conv_a,"), "layers"),
    (lambda kc, m, d: kc.robustness(m, d, attacks=",fgsm", count=2, progress=False), "attacks"),
    (lambda kc, m, d: kc.robustness(m, d, eps="0.1,,0.3", count=2, progress=False), "eps"),
    (lambda kc, m, d: kc.corruptions(m, d, corruptions=",", count=2, progress=False), "corruptions"),
    (lambda kc, m, d: kc.corruptions(m, d, severities="3,", count=2, progress=False), "severities"),
    (lambda kc, m, d: kc.report("unused", sections="evaluation,"), "sections"),
], ids=["explain-method", "explain-metrics", "activations", "robustness-attacks", "robustness-eps",
        "corruptions", "severities", "report"])
def test_the_api_refuses_the_same_text_naming_its_argument(call, param, tiny, tmp_path, monkeypatch):
    import kerascnn as kc

    monkeypatch.chdir(tmp_path)
    model, data = tiny
    with pytest.raises(BadValue) as caught:
        call(kc, model, data)
    assert caught.value.param == param
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_the_api_takes_good_lists_as_text_or_sequences(tiny):
    import kerascnn as kc

    model, data = tiny
    as_text = kc.activations(model, data, index=0, layers="conv_b, conv_a")
    as_list = kc.activations(model, data, index=0, layers=["conv_b", "conv_a"])
    assert list(as_text.maps) == list(as_list.maps) == ["conv_b", "conv_a"]
    for a, b in zip(as_text.maps.values(), as_list.maps.values()):
        np.testing.assert_array_equal(a, b)
