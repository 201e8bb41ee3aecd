"""The verdict of a seeds study, in plain sentences: did batch norm help, by a margin larger than
what the seeds alone account for? (The rule is in kerascnn.study.seeds' docstring.)"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Protocol


class VariantSummary(Protocol):
    """What the verdict reads of one variant over its seeds (study.seeds.VariantSummary has it)."""
    count: int
    accuracy_mean: float
    accuracy_std: float
    accuracy_range: float
    iterations_to_threshold: list
    iterations_median: float | None
    median_epoch_seconds: list
    epoch_seconds: float


@dataclass
class Verdict:
    """Batch norm against none. accuracy: better/worse/no clear difference/unknown; speed (iterations
    to the threshold): faster/slower/...; epoch_time: slower/faster/...; helped: yes/no/no clear difference."""
    accuracy: str
    speed: str
    epoch_time: str
    helped: str
    difference_points: float      # mean test accuracy with batch norm minus without, in points
    margin_points: float | None   # what a difference must exceed to count (None: unknown, one seed)
    sentence: str

    def to_dict(self) -> dict:
        return asdict(self)


def _ranges_apart(a: list[float], b: list[float]) -> int:
    """-1 when every value of a is below every value of b, +1 when above, 0 when the ranges overlap."""
    if max(a) < min(b):
        return -1
    if min(a) > max(b):
        return 1
    return 0


#: A variant whose mean test accuracy is within this of chance (1 / classes) has not learnt: it is
#: not compared with the other.
NEAR_CHANCE = 0.05


def judge(plain: VariantSummary, bn: VariantSummary, threshold: float = 0.98, chance: float | None = None) -> Verdict:
    """Whether batch norm helped, from the numbers alone (see the module docstring for the rule).
    `chance`: 1 / the number of classes (None: unknown); a variant near it is not compared."""
    diff = bn.accuracy_mean - plain.accuracy_mean
    untrained = [(name, v) for name, v in (("without batch norm", plain), ("with batch norm", bn))
                 if chance is not None and v.accuracy_mean <= chance + NEAR_CHANCE]
    if untrained:
        which = " and ".join(f"{name} ({v.accuracy_mean:.2%})" for name, v in untrained)
        sentence = (f"Not compared: the run{'s' if len(untrained) > 1 else ''} {which} "
                    f"{'are' if len(untrained) > 1 else 'is'} at chance level ({chance:.2%} for "
                    f"{round(1 / chance)} classes), so {'they' if len(untrained) > 1 else 'it'} had too few steps to "
                    f"learn; train longer (more --epochs, a larger --subset) before comparing.")
        return Verdict("unknown", "unknown", "unknown", "no clear difference", 100 * diff, None, sentence)
    known = plain.count > 1 and bn.count > 1
    if known:
        standard_error = math.sqrt(plain.accuracy_std ** 2 / plain.count + bn.accuracy_std ** 2 / bn.count)
        margin = max(plain.accuracy_range, bn.accuracy_range, 2 * standard_error)
        accuracy = "no clear difference" if abs(diff) <= margin else ("better" if diff > 0 else "worse")
    else:
        margin, accuracy = None, "unknown"

    inf = [math.inf if v is None else v for v in plain.iterations_to_threshold]
    inf_bn = [math.inf if v is None else v for v in bn.iterations_to_threshold]
    if not known or (all(math.isinf(v) for v in inf) and all(math.isinf(v) for v in inf_bn)):
        speed = "unknown"
    else:
        speed = {-1: "faster", 1: "slower", 0: "no clear difference"}[_ranges_apart(inf_bn, inf)]
    if not known:
        epoch_time = "unknown"
    else:
        epoch_time = {-1: "faster", 1: "slower", 0: "no clear difference"}[
            _ranges_apart(bn.median_epoch_seconds, plain.median_epoch_seconds)]

    if accuracy == "better" or (accuracy == "no clear difference" and speed == "faster"):
        helped = "yes"
    elif accuracy == "worse" or (accuracy == "no clear difference" and speed == "slower"):
        helped = "no"
    else:
        helped = "no clear difference"
    sentence = _sentence(plain, bn, diff, margin, accuracy, speed, epoch_time, helped, threshold)
    return Verdict(accuracy, speed, epoch_time, helped, 100 * diff, None if margin is None else 100 * margin,
                   sentence)


def _acc(v: VariantSummary) -> str:
    return f"{v.accuracy_mean:.2%}" + (f" ± {100 * v.accuracy_std:.2f}" if v.count > 1 else "")


def _iterations(v: VariantSummary) -> str:
    median = v.iterations_median
    return "never" if median is None else f"{median:,.0f}"


def _sentence(plain, bn, diff, margin, accuracy, speed, epoch_time, helped, threshold) -> str:
    n = f"{bn.count} seed{'s' if bn.count != 1 else ''}"
    accuracies = f"test accuracy {_acc(bn)} with it against {_acc(plain)} without ({100 * diff:+.2f} points)"
    if accuracy == "unknown":
        head = (f"With one seed per variant the spread between seeds is unknown, so this cannot tell whether "
                f"batch norm helped: {accuracies}; run at least two seeds.")
    elif accuracy == "no clear difference":
        lead = {"yes": "Batch norm helped only in speed",
                "no": "Batch norm did not help", "no clear difference": "No clear difference from batch norm"}[helped]
        head = f"{lead} over {n}: {accuracies}; seeds alone account for differences up to {100 * margin:.2f} points."
    else:
        lead = "Batch norm helped" if accuracy == "better" else "Batch norm hurt"
        head = f"{lead} over {n}: {accuracies}, more than the {100 * margin:.2f} points seeds alone account for."
    to = f"{threshold:.0%} validation accuracy"
    medians = f"median iteration {_iterations(bn)} against {_iterations(plain)}"
    speed_text = {
        "faster": f"It reached {to} sooner for every seed ({medians})",
        "slower": f"It reached {to} later for every seed ({medians})",
        "no clear difference": f"It reached {to} at about the same point ({medians}; the seeds overlap)",
        "unknown": f"Median iteration to reach {to}: {_iterations(bn)} with it, {_iterations(plain)} without",
    }[speed]
    ratio = bn.epoch_seconds / plain.epoch_seconds if plain.epoch_seconds > 0 else math.nan
    seconds = f"{bn.epoch_seconds:.1f} s against {plain.epoch_seconds:.1f} s"
    time_text = {
        "slower": f"each epoch took {ratio:.2f}x as long ({seconds})",
        "faster": f"each epoch took {ratio:.2f}x as long ({seconds})",
        "no clear difference": f"epoch times overlapped ({seconds})",
        "unknown": f"an epoch took {seconds}",
    }[epoch_time]
    return f"{head} {speed_text}, and {time_text}."
