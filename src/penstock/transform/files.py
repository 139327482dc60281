"""Where a project's models are: `models/*.sql` beside penstock.yml. Kept apart from the
parsing (model_set.py, which needs sqlglot), so a project without models never imports it."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = "models"


def model_files(root: Path) -> list[Path]:
    """The project's model files, sorted by name."""
    directory = root / MODELS_DIR
    return sorted(directory.glob("*.sql")) if directory.is_dir() else []
