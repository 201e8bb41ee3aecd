"""The Click type of every comma-separated option: kerascnn.lists.split_list's rule (no empty item,
anywhere) at parse time, then the option's own check, a BadValue of which becomes Click's one-line
usage error (exit 2) before any work starts or any file is written."""
from __future__ import annotations

from typing import Callable

import click

from kerascnn.errors import BadValue
from kerascnn.lists import split_list


class CommaList(click.ParamType):
    """A comma-separated option: `check` receives the items (a tuple of stripped strings) and
    returns the option's value, raising BadValue (or ValueError) for an item it cannot take.

    Example:  type=CommaList(parse_methods, "M1,M2,...")
    """

    def __init__(self, check: Callable[[tuple], object] = tuple, metavar: str = "A,B,..."):
        self.check = check
        self.name = metavar

    def convert(self, value, param, ctx):

        if not isinstance(value, str):  # already converted (a default given as a value)
            return value
        try:
            return self.check(split_list(value, param.name if param is not None else "value"))
        except BadValue as e:
            self.fail(e.message, param, ctx)
        except ValueError as e:
            self.fail(f"{value!r}: {e}", param, ctx)

    def get_metavar(self, param, ctx=None):

        return self.name
