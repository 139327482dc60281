"""One error base for penstock, with structured fields.

`TransientError` and `TerminalError` are markers that decide retries: a transient error may
succeed when the same step is tried again, a terminal one will not until something changes.
`exit_code` is what the CLI exits with when the error reaches it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from penstock.secrets import redact


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (DuckDB and friends append hints below it)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PenstockError(Exception):
    """Base of every error penstock raises on purpose.

    `fields` carries the structured context (file, line, key path, object, batch ...);
    the message is the one line a user reads. Both are passed through secret redaction.
    """

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **fields: Any) -> None:
        self.message = redact(message)
        self.fields: dict[str, Any] = {
            k: redact(v) if isinstance(v, str) else v for k, v in fields.items()
        }
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **self.fields}

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled whole (a Dask worker's error reaches the run with its fields), whatever
        the subclass's constructor takes."""
        return (_restore, (type(self), self.message, dict(self.__dict__)))


def _restore(cls: type[PenstockError], message: str, state: dict[str, Any]) -> PenstockError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class TransientError(PenstockError):
    """May succeed on retry (a network blip, a locked file)."""


class StepTimeout(TransientError):
    """A step ran past its `timeout:` and was stopped (its open transaction rolled back)."""


class TerminalError(PenstockError):
    """Will fail again until something changes (bad data, bad configuration)."""


class ProjectError(TerminalError):
    """The project files are invalid. Carries file, line and key path where known."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key_path: str | None = None,
        **fields: Any,
    ) -> None:
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        what = f"{key_path}: " if key_path else ""
        super().__init__(
            f"{where}{what}{message}", file=file, line=line, key_path=key_path, **fields
        )
        self.detail = message


class ProjectErrors(ProjectError):
    """Several project errors at once; the message lists them all, one per line."""

    def __init__(self, errors: list[ProjectError]) -> None:
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(
            first.detail + more,
            file=first.fields.get("file"),
            line=first.fields.get("line"),
            key_path=first.fields.get("key_path"),
        )
        self.message = "\n".join(e.message for e in errors)


class UsageError(PenstockError):
    """The command was called wrongly (unknown object, bad option)."""

    exit_code = 2


class SourceError(TerminalError):
    """A source could not be read: names the file and, where known, the line.

    `unreadable` says the error is about the file's own bytes as the object's read settings
    take them (not a compressed stream, not the declared encoding, not the declared format):
    reading the same bytes with the same settings fails again, so a run records the file as a
    `rejected` batch and does not read it again until its content or those settings change
    (or `penstock batches retry`). An error about the machine (a missing directory, a
    permission, a full disk) is not `unreadable`: the next run tries again.
    """

    def __init__(self, message: str, *, unreadable: bool = False, **fields: Any) -> None:
        if unreadable:
            fields["unreadable"] = True
        super().__init__(message, **fields)
        self.unreadable = unreadable


class ContractViolation(TerminalError):
    """A batch broke its contract under `on_invalid: fail`; nothing of it was loaded."""


class WarehouseError(TerminalError):
    """The warehouse refused a statement (a type change, a missing table)."""


class TableMismatch(WarehouseError):
    """An object's table no longer matches its declaration (a column type, the load mode, key
    or order_by changed): changing it back or a rebuild fixes it, skipping a batch does not."""


class WarehouseLocked(TransientError):
    """Another process holds the warehouse's lock (a run in progress); it may end soon."""


class LeaseHeld(TransientError):
    """Another process holds a lease this one waited for (a run on the same project, the
    active scheduler): it may end soon. `fields` name the holder and what was waited for."""


class RunFailed(PenstockError):
    """A run finished with one or more failed steps."""

    exit_code = 1


class MissingExtra(TerminalError):
    """An optional dependency is not installed; the message gives the pip line."""

    exit_code = 2
