"""--input-range and --preprocess: what a model takes when it cannot say so itself (kerascnn.model.domain),
checked at parse time (exit 2)."""
from __future__ import annotations

import functools

import click

from kerascnn.errors import BadValue
from kerascnn.model.domain import InputDomain, check_preprocess, parse_range


class InputRange(click.ParamType):
    """--input-range LO,HI: two finite numbers, LO < HI (kerascnn.model.domain.parse_range)."""
    name = "LO,HI"

    def convert(self, value, param, ctx):

        if isinstance(value, tuple):
            return value
        try:
            return parse_range(value)
        except BadValue as e:
            self.fail(e.message, param, ctx)


class Preprocess(click.ParamType):
    """--preprocess NAME: a keras.applications preprocess_input mode or family."""
    name = "NAME"

    def convert(self, value, param, ctx):

        try:
            return check_preprocess(value)
        except BadValue as e:
            self.fail(e.message, param, ctx)


def domain_options(func):
    """--input-range and --preprocess: what the model takes, when the model cannot say so itself;
    the command receives `domain` (a kerascnn.model.domain.InputDomain, or None: inferred from the model)."""
    @click.option("--preprocess", type=Preprocess(), default=None,
                  help="The model takes keras.applications' preprocess_input of 0-255 pixels: a mode "
                       "(tf: [-1, 1]; torch: ImageNet mean/std; caffe: BGR minus the ImageNet mean) or a "
                       "family (mobilenet_v2, resnet50, vgg16, xception, inception_v3, densenet, ...).")
    @click.option("--input-range", type=InputRange(), default=None,
                  help="The range of pixel values the model takes, e.g. 0,255 or -1,1. Default: read off "
                       "the model (a leading Rescaling or Normalization layer means 0,255), else 0,1.")
    @functools.wraps(func)
    def wrapper(*args, input_range, preprocess, **kwargs):

        if input_range is not None and preprocess is not None:
            raise click.UsageError("give --input-range or --preprocess, not both")
        return func(*args, domain=InputDomain.given(input_range, preprocess), **kwargs)
    return wrapper
