"""Racing seeds: spend training runs on the rows that could still be the grid's best.

A fixed ``--seeds N`` trains every row N times, the clear losers included. ``--seeds auto``
runs a race in rounds instead, the way F-race and irace race configurations (Birattari et
al., GECCO 2002; López-Ibáñez et al., 2016) and Optuna's ``WilcoxonPruner`` stops trials:

1. every row trains :data:`FIRST_SEEDS` seeds (the least that measures the seed spread);
2. after each round the table is computed as it will be printed (seed-aware t-tests, every
   p Holm-adjusted over the table's tests) and each row's verdict read: rows ``below best``
   stop; the best row and those ``tied with best`` (the contenders) train one more seed;
3. the race ends when one row is separated from every other (the question is answered), or
   when the next round would exceed the budget of trials (default 3x the rows).

What is taken from each, and what is not, is in ``docs/statistics.md``. Each decision is a pure
function of the finished trials of the rounds before it, so a race that is stopped and run
again replays the same rounds, reusing every finished trial, and goes on where it stopped.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from .table import ResultsTable

FIRST_SEEDS = 2  # every row's seeds in the first round
BUDGET_PER_ROW = 3  # the default budget: trials per row of the grid
CONTENDING = ("best", "tied with best", "unresolved")


@dataclass(frozen=True)
class SeedPlan:
    """How many seeds each row gets: ``fixed`` of them, or (``fixed`` None) a race of at most
    ``budget`` trials."""

    fixed: int | None = 1
    budget: int | None = None

    @classmethod
    def parse(cls, seeds: str | int, budget: int | None, rows: int) -> "SeedPlan":
        """From ``--seeds`` (a count, or ``auto``) and ``--budget`` (trials; only with ``auto``)."""
        if str(seeds) == "auto":
            budget = BUDGET_PER_ROW * rows if budget is None else int(budget)
            if budget < FIRST_SEEDS * rows:
                raise UsageError(f"--budget {budget}: a race starts with {FIRST_SEEDS} seeds for each of the "
                                 f"{rows} rows, so it needs at least {FIRST_SEEDS * rows} trials")
            return cls(None, budget)
        try:
            count = int(seeds)
        except ValueError:
            raise UsageError(f"--seeds {seeds!r}: expected a number of seeds or 'auto'") from None
        if count < 1:
            raise UsageError(f"--seeds {count}: expected at least 1")
        if budget is not None:
            raise UsageError("--budget sets the trials of a race: use it with --seeds auto")
        return cls(count)

    @property
    def racing(self) -> bool:
        return self.fixed is None

    @property
    def repeats(self) -> bool:
        """Whether rows train more than one seed (trials are then named by seed)."""
        return self.racing or (self.fixed or 1) > 1

    def describe(self) -> str:
        return f"a race of at most {self.budget} trials" if self.racing else f"{self.fixed} seed(s)"


@dataclass(frozen=True)
class Decision:
    """After a round: the rows that train one more seed, or why the race ends."""

    contenders: tuple[str, ...]
    ended: str | None = None  # None: the race goes on with ``contenders``


def decide(table: ResultsTable, planned: dict[str, int], budget: int) -> Decision:
    """The next round of a race, from the table of its finished rounds; ``planned`` is each
    row's seeds so far (by row label)."""
    verdicts = table.verdicts()
    contenders = tuple(label for label in planned if verdicts.get(label) in CONTENDING)
    used = sum(planned.values())
    if len(contenders) == 1:
        return Decision(contenders, f"answered: {contenders[0]} is separated from every other row "
                                    f"after {used} trials")
    if not contenders:
        return Decision((), f"no row has a result after {used} trials")
    if used + len(contenders) > budget:
        return Decision(contenders, f"budget spent: {used} of {budget} trials used, and the next round would "
                                    f"need {len(contenders)} ({', '.join(contenders)} still contend)")
    return Decision(contenders)
