"""A job's daily failure rate as a tiny inline SVG, computed on the server (no script needed).

Days without a counted run are ``None`` and leave a gap: a line joins only consecutive days with
data, and a day with data between two gaps is drawn as a dot. Pure: values in, geometry out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 120
HEIGHT = 28
PAD = 3  # room for the stroke and the dots at the edges


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    lines: list[str]  # one SVG path per run of consecutive days with data
    areas: list[str]  # the same runs closed down to 0%, for a faint fill
    dots: list[tuple[float, float]]  # days with data between two gaps
    points: int  # days with data: every one is a vertex of a line or a dot
    days: int
    peak: float | None
    baseline: float  # y of 0%

    @property
    def label(self) -> str:
        if not self.points:
            return f"No counted runs in the last {self.days} days"
        day_word = "day" if self.points == 1 else "days"
        return (
            f"Daily failure rate over {self.days} days, oldest first: "
            f"{self.points} {day_word} with runs, highest {_num(self.peak or 0.0)}%"
        )


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def sparkline(
    values: Sequence[float | None],
    *,
    days: int | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Sparkline:
    """Geometry of the sparkline: x spreads the days evenly, y maps 0-100% bottom to top.

    ``days`` is the window the values cover, for the label (``ci_data`` gives one value more
    than its window: today so far).
    """
    count = len(values)
    inner_w, inner_h = width - 2 * PAD, height - 2 * PAD
    baseline = float(PAD + inner_h)

    def x(i: int) -> float:
        return round(PAD + (inner_w * i / (count - 1) if count > 1 else inner_w / 2), 1)

    def y(rate: float) -> float:
        clamped = min(max(rate, 0.0), 100.0)
        return round(PAD + inner_h * (1 - clamped / 100.0), 1)

    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for i, rate in enumerate(values):
        if rate is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((x(i), y(rate)))
    if current:
        runs.append(current)

    lines, areas, dots = [], [], []
    for run in runs:
        if len(run) == 1:
            dots.append(run[0])
            continue
        path = " ".join(f"{'M' if n == 0 else 'L'}{px:g},{py:g}" for n, (px, py) in enumerate(run))
        lines.append(path)
        areas.append(f"{path} L{run[-1][0]:g},{baseline:g} L{run[0][0]:g},{baseline:g} Z")
    rates = [v for v in values if v is not None]
    return Sparkline(
        width=width,
        height=height,
        lines=lines,
        areas=areas,
        dots=dots,
        points=len(rates),
        days=count if days is None else days,
        peak=max(rates) if rates else None,
        baseline=baseline,
    )
