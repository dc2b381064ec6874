"""Early stopping that lets a stopped trial write its run record.

When a Ray Tune scheduler says STOP, Tune ends the trial's actor: the training function gets a
``SystemExit`` inside ``tune.report`` and the actor is torn down without waiting for it, so a record
written after that is lost to a race. Here ASHA's decision is the same, but it is delivered through a
small named actor (the stop board) instead: the scheduler posts "stop trial X" and lets the trial
continue; the trial reads the board after each report, ends its training loop cleanly, appends its record
(``stopped_early: true``) and returns. ASHA's bookkeeping is untouched.
"""

from __future__ import annotations

import ray
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from ..config import TunerCfg

SCHEDULERS = ("asha", "fifo")


@ray.remote(num_cpus=0)
class StopBoard:
    """The trials the scheduler has stopped: written by the driver, read by each trial after every epoch."""

    def __init__(self) -> None:
        self.stopped: set[str] = set()

    def stop(self, trial_id: str) -> None:
        self.stopped.add(trial_id)

    def should_stop(self, trial_id: str) -> bool:
        return trial_id in self.stopped


def board_name(sweep: str) -> str:
    return f"grand_bench_stop_board_{sweep}"


def open_board(sweep: str):
    """The sweep's stop board, created if this Ray session has none yet (a resumed sweep makes a new one)."""
    return StopBoard.options(name=board_name(sweep), get_if_exists=True).remote()


class GracefulASHA(ASHAScheduler):
    """ASHA whose STOP reaches the trial through the stop board, so that it finishes cleanly and is recorded.

    Only the name of the board is kept (this object is pickled into the sweep's state and restored on
    resume, where the board is a new actor of the same name).
    """

    def __init__(self, board: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.board = board

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP:
            # Blocking, so the post is there before the trial's next report returns and it reads the board.
            ray.get(ray.get_actor(self.board).stop.remote(trial.trial_id))
            return TrialScheduler.CONTINUE
        return decision


def make_scheduler(tuner: TunerCfg, sweep: str, max_t: int) -> TrialScheduler:
    """ASHA on the ``epoch`` each trial reports (robust to resumes, unlike Tune's own iteration count), or FIFO."""
    if tuner.scheduler == "fifo":
        return FIFOScheduler()
    return GracefulASHA(
        board=board_name(sweep),
        time_attr="epoch",
        max_t=max_t,
        grace_period=tuner.grace_period,
        reduction_factor=tuner.reduction_factor,
    )
