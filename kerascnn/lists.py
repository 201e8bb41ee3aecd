"""Comma-separated lists: the one rule every list option follows, on the command line (`--attack`,
`--method`, `--metrics`, `--corruption`, `--severity`, `--eps`, `--sections`, `--layers`, `--classes`,
`--input-range`) and in the Python API (`kc.explain(method="saliency,gradcam")`).

    split_list("fgsm, pgd", "attacks")    -> ("fgsm", "pgd")      items stripped, in the order given
    split_list(["fgsm", "pgd"], "attacks") -> ("fgsm", "pgd")     a sequence is taken as its items
    split_list("fgsm,", "attacks")         -> BadValue("attacks")  so are ",fgsm", ",", "fgsm,,pgd" and ""

An empty item is refused wherever it is, rather than dropped: `a,,b` is more often a name left out
than a stray comma, and one rule for every option is easier to remember than a rule per option.
What an item may be (a known attack, a number) is each option's own check, given these items.

This module is on the package's lowest floor (it imports only kerascnn.errors), so that the CLI's
Click type (cli.lists.CommaList) and the library's checks share it.
"""
from __future__ import annotations

from kerascnn.errors import BadValue

__all__ = ["split_list"]


def split_list(value, param: str) -> tuple:
    """Text 'a,b,c' (or a list or tuple of items) -> the items as a tuple, text items stripped.

    Raises BadValue(param) when the text or the sequence is empty, or when any text item is empty
    (a leading, trailing or doubled comma, or a lone one). Items that are not text (numbers in a
    list) pass through unchanged; what they may be is the caller's check.
    """
    if isinstance(value, str):
        items = tuple(part.strip() for part in value.split(","))
        if not value.strip():
            raise BadValue(param, "is empty: give one or more values separated by commas")
        if not all(items):
            raise BadValue(param, f"{value!r} has an empty item: separate values by single commas (none before "
                                  "the first or after the last)")
        return items
    try:
        items = tuple(value)
    except TypeError:  # a single non-text value (eps=0.3): a list of one
        return (value,)
    if not items:
        raise BadValue(param, "is empty: give one or more values")
    stripped = tuple(v.strip() if isinstance(v, str) else v for v in items)
    if any(isinstance(v, str) and not v for v in stripped):
        raise BadValue(param, f"{list(items)!r} has an empty item")
    return stripped
