"""What a step and a run report: the run log's records (dlt's style — a step returns an info object; a failed
step raises an error that carries it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from tunelake.errors import PipelineError


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class StepInfo:
    """One step of one run: rows in and out, when, and what it noted (a skip's reason, per-table rows, …)."""

    run_id: str
    step: str
    started_at: str
    ended_at: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    status: str = "ok"  # ok | skipped | failed | interrupted
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        if not self.ended_at:
            return None
        return (datetime.fromisoformat(self.ended_at) - datetime.fromisoformat(self.started_at)).total_seconds()


@dataclass
class RunInfo:
    """A whole run, as `tunelake run` prints it and the run log keeps it."""

    run_id: str
    status: str = "running"  # running | ok | failed | interrupted
    steps: list[StepInfo] = field(default_factory=list)
    quality: list[dict[str, Any]] = field(default_factory=list)
    warehouse: str | None = None
    started_at: str = ""
    ended_at: str | None = None

    def step(self, name: str) -> StepInfo | None:
        return next((s for s in self.steps if s.step == name), None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StepFailed(PipelineError):
    """A step failed: names the run, the step and how to retry; `.info` is the failed step's record and `.run`
    the run's."""

    def __init__(self, message: str, *, info: StepInfo, run: RunInfo, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.info, self.run = info, run
