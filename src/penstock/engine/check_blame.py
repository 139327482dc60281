"""Which check expression breaks a contract, named with where it was written.

Check expressions are vetted when the project loads (they must bind over the declared types),
so a contract that still does not compile, or fails on a file's values (a cast in a check that
a value cannot take), is rare, and hard to place from DuckDB's message alone. The blame goes to
the first expression check that fails on its own, with its name and its file and line.
"""

from __future__ import annotations

from collections.abc import Callable

from penstock.catalog import ExpressionCheck, ObjectSpec, Project
from penstock.errors import ProjectError


def blame_check(
    project: Project, obj: ObjectSpec, fails: Callable[[ObjectSpec], str | None], doing: str
) -> ProjectError | None:
    """The error naming the first expression check of `obj` with which `fails` (a problem, or
    None) fails on its own, while it passes without any; None when no check is to blame."""
    without = [c for c in obj.checks if not isinstance(c, ExpressionCheck)]
    if len(without) == len(obj.checks) or fails(obj.model_copy(update={"checks": without})):
        return None
    for index, check in enumerate(obj.checks):
        if not isinstance(check, ExpressionCheck):
            continue
        problem = fails(obj.model_copy(update={"checks": [*without, check]}))
        if problem is not None:
            key_path = f"objects.{obj.name}.checks[{index}]"
            file, line = project.origin(key_path) or (None, None)
            return ProjectError(
                f"check '{check.name}' {doing}: {problem}",
                file=file,
                line=line,
                key_path=f"{key_path}.expression",
            )
    return None
