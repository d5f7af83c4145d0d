"""The error family. The CLI is the only place that turns these into messages and exit codes."""

from __future__ import annotations


class TunelakeError(Exception):
    """Root of every error tunelake raises on purpose; carries a hint that says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        text = str(self).replace("\n", " ")
        return f"{text} ({self.hint})" if self.hint else text


class InputError(TunelakeError, ValueError):
    """Bad input file or record: names the file, the record and the field so the user can find it."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        record: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = []
        if file is not None:
            where.append(str(file))
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message, hint=hint)
        self.file, self.record, self.field = file, record, field


class ConfigError(TunelakeError):
    """A setting is missing or invalid."""

    exit_code = 3


class SourceError(TunelakeError):
    """A data source (Spotify API, a lake URL) failed in a way retrying will not fix."""

    exit_code = 4


class TransientSourceError(SourceError):
    """A source failed in a way that retrying later may fix (rate limit, 5xx, network)."""

    exit_code = 75  # EX_TEMPFAIL


class TokenRevokedError(SourceError):
    """Spotify refused the refresh token itself (`invalid_grant`): the listener must log in again. Only this
    answer means that; a 5xx, a timeout or a connection error on the token endpoint is transient."""


class WorkspaceBusyError(TunelakeError):
    """Another writer held the workspace lock for longer than the wait allowed; trying again later will work."""

    exit_code = 75  # EX_TEMPFAIL


class QualityGateError(TunelakeError):
    """A data-quality gate failed after a build; carries the offending keys."""

    exit_code = 5


class PipelineError(TunelakeError):
    """A pipeline step failed; names the step and how to retry."""

    exit_code = 6
