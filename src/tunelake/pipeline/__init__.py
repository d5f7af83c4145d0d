"""The pipeline: one step runner (`runner`), its steps (`steps`), the run log (`runlog`), what a workspace holds
(`status`) and the check-and-repair of a workspace (`doctor`)."""

from tunelake.pipeline.info import RunInfo, StepFailed, StepInfo
from tunelake.pipeline.runlog import read_run_logs
from tunelake.pipeline.runner import BUILD_STEPS, RUN_STEPS, BuildInfo, build, run, run_steps

__all__ = ["BUILD_STEPS", "RUN_STEPS", "BuildInfo", "RunInfo", "StepFailed", "StepInfo", "build", "read_run_logs",
           "run", "run_steps"]
