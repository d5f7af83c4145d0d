"""The one step runner: `tunelake run`, `tunelake build`, `tunelake demo` and the always-on collector all chain
steps through `run_steps`, which times them, writes the run log after each one, and on a failure records it,
discards the new warehouse file and raises `StepFailed` naming the step and how to retry.

Steps: import → build → quality → analytics → commit → report (`RUN_STEPS`); a plain build is build → quality →
commit (`BUILD_STEPS`). Steps with nothing new to do record themselves as skipped. The whole run holds the
workspace lock: a second writer waits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelake.errors import InputError, QualityGateError, TunelakeError
from tunelake.pipeline import runlog
from tunelake.pipeline.info import RunInfo, StepFailed, StepInfo, utcnow
from tunelake.pipeline.steps import (
    HINTS,
    Bar,
    RunContext,
    analytics_step,
    build_step,
    commit_step,
    import_step,
    no_bar,
    quality_step,
    report_step,
)
from tunelake.workspace import Workspace

Step = Callable[[RunContext], StepInfo]
RUN_STEPS: tuple[tuple[str, Step], ...] = (("import", import_step), ("build", build_step),
                                           ("quality", quality_step), ("analytics", analytics_step),
                                           ("commit", commit_step), ("report", report_step))
BUILD_STEPS: tuple[tuple[str, Step], ...] = (("build", build_step), ("quality", quality_step),
                                             ("commit", commit_step))


def run_steps(ctx: RunContext, steps: Sequence[tuple[str, Step]]) -> RunInfo:
    """Run `steps` in order on `ctx` (the caller holds the workspace lock)."""
    lake = ctx.ws.lake
    run = ctx.run
    runlog.mark_interrupted(lake)
    run.started_at = run.started_at or utcnow().isoformat()
    runlog.save_run(lake, run)
    try:
        for name, fn in steps:
            ctx.step_name, ctx.step_started = name, utcnow().isoformat()
            try:
                info = fn(ctx)
            except BaseException as exc:
                raise _failed(ctx, name, exc) from exc
            run.steps.append(info)
            runlog.save_run(lake, run)
    finally:
        if ctx.built:  # a step before the commit failed, or the process is being stopped
            build = run.step("build")
            if build is not None:
                build.details["discarded"] = True
            ctx.discard()
            runlog.save_run(lake, run)
    from tunelake.warehouse.store import read_pointer

    run.warehouse = (read_pointer(ctx.ws) or {}).get("file")
    run.status, run.ended_at = "ok", utcnow().isoformat()
    runlog.save_run(lake, run)
    return run


def _failed(ctx: RunContext, name: str, exc: BaseException) -> StepFailed:
    msg = exc.one_line() if isinstance(exc, TunelakeError) else f"{type(exc).__name__}: {exc}"
    details: dict[str, Any] = {}
    if isinstance(exc, QualityGateError):
        details["failed_gates"] = [f"{r.check_name} on {r.table_name}" for r in getattr(exc, "failed", [])]
    info = ctx.info("failed", error=msg, details=details)
    run = ctx.run
    run.steps.append(info)
    run.status, run.ended_at = "failed", utcnow().isoformat()
    runlog.save_run(ctx.ws.lake, run)
    return StepFailed(f"run {run.run_id}: step '{name}' failed: {msg}", info=info, run=run, hint=HINTS[name])


def run(
    ws: Workspace,
    *,
    paths: list[str] | None = None,
    user: str | None = None,
    timezone: str | None = None,
    jobs: list[tuple[str, list[str]]] | None = None,
    catalog: Path | None = None,
    force: bool = False,
    report: bool = True,
    bar: Bar | None = None,
    run_id: str | None = None,
    steps: Sequence[tuple[str, Step]] = RUN_STEPS,
) -> RunInfo:
    """The whole pipeline, incremental and idempotent: `tunelake run`.

    Raises StepFailed (a PipelineError: exit 6) when a step fails; the previous warehouse stays current unless
    the failing step came after the switch (report)."""
    if paths and not user:  # a usage error, not a failed step: nothing is started or logged
        raise InputError("--user is required with paths to import", field="--user",
                         hint="say whose export it is: tunelake run PATH --user NAME")
    with ws.writing(command="run"):
        ctx = RunContext(ws, RunInfo(run_id or runlog.new_run_id()), bar or no_bar, paths=list(paths or []),
                         user=user, timezone=timezone, jobs=list(jobs or []), catalog=catalog, force=force,
                         report=report)
        return run_steps(ctx, steps)


@dataclass
class BuildInfo:
    """What `tunelake build` reports."""

    skipped: bool
    file: str = ""
    fingerprint: str = ""
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    rows_in: int = 0
    run_id: str = ""
    quality: list[Any] = field(default_factory=list)  # quality.GateResult of this build's gates

    @property
    def rows_out(self) -> int:
        return sum(self.rows.values())


def build(ws: Workspace, *, force: bool = False, progress: Callable[[int, int, str], None] | None = None,
          run_id: str | None = None) -> BuildInfo:
    """Build the star schema into a new warehouse file, check it and make it current — or do nothing when nothing
    changed: `tunelake build`, the same runner with build → quality → commit. A failed gate raises
    `QualityGateError` (exit 5) and the previous warehouse stays current."""
    from contextlib import nullcontext

    from tunelake.warehouse.quality import GateResult

    def bar(label: str) -> Any:
        return nullcontext(progress or (lambda *a, **k: None))

    try:
        info = run(ws, force=force, bar=bar, steps=BUILD_STEPS, run_id=run_id)
    except StepFailed as exc:
        if isinstance(exc.__cause__, QualityGateError):
            raise exc.__cause__ from None
        raise
    b = info.step("build")
    assert b is not None
    if b.status == "skipped":
        return BuildInfo(True, file=b.details["warehouse"], fingerprint=b.details["fingerprint"], run_id=info.run_id)
    return BuildInfo(False, file=b.details["warehouse"], fingerprint=b.details["fingerprint"],
                     seconds=b.details["seconds"], rows=b.details["rows"], rows_in=b.rows_in or 0,
                     run_id=info.run_id, quality=[GateResult(**{k: q[k] for k in ("check_name", "table_name",
                                                                                  "status", "failing_rows",
                                                                                  "sample_keys", "details")})
                                                  for q in info.quality])
