"""A `files:` glob that matched nothing: how to say so, and the near misses worth suggesting.

`run` and `check` both report such a glob as `0 files matched "landing/orders/*.cvs"` (the
pattern shown relative to the project, as a user would type it into `ls`). When the source
directory holds files that a small change of the glob would match, the message names the
change: another extension (`*.cvs` → `*.csv`, `*.csv` → `*.csv.gz`), the same names in another
letter case (globs are case-sensitive), or a directory whose name is close. Looking for near
misses walks at most `MAX_FILES` files of the source directory, and only when nothing matched.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from penstock.sources.compression import COMPRESSED_SUFFIXES

MAX_FILES = 20_000
_SUFFIX = re.compile(r"\.[A-Za-z0-9_]+$")
_SIMILAR = 0.5  # how alike a suggested glob must be to the one written (difflib ratio)


@dataclass(frozen=True)
class GlobSuggestion:
    """A glob close to the one written that does match files."""

    pattern: str  # relative to the project, like NoMatch.pattern
    files: int


@dataclass(frozen=True)
class NoMatch:
    """An object whose glob matched no file, and what might have been meant."""

    object: str
    pattern: str  # relative to the project: `landing/orders/*.cvs`
    suggestions: list[GlobSuggestion] = field(default_factory=list)
    note: str | None = None  # what is there instead, when no glob close to it matches

    @property
    def message(self) -> str:
        return f"{self.object}: {self.text}"

    @property
    def text(self) -> str:
        text = f'0 files matched "{self.pattern}"'
        if self.suggestions:
            options = " or ".join(
                f'"{s.pattern}" ({s.files:,} file{"" if s.files == 1 else "s"})'
                for s in self.suggestions
            )
            text += f"; did you mean {options}?"
        return text + (f"; {self.note}" if self.note else "")


def shown(project_root: Path, source_root: Path, pattern: str) -> str:
    """The glob as seen from the project directory (absolute when the source lies outside)."""
    try:
        base = source_root.relative_to(project_root).as_posix()
    except ValueError:
        base = source_root.as_posix()
    return pattern if base in ("", ".") else f"{base.rstrip('/')}/{pattern}"


def no_match(object_name: str, project_root: Path, source_root: Path, pattern: str) -> NoMatch:
    """The report for `pattern` matching nothing under `source_root`, with near misses."""
    prefix = shown(project_root, source_root, "")
    where = shown(project_root, source_root, pattern)
    files = _files(source_root)
    if not files:
        place = prefix.rstrip("/") or "the source directory"
        note = f"{place} holds no files" if source_root.is_dir() else None
        return NoMatch(object_name, where, note=note)
    suggestions = [
        GlobSuggestion(prefix + candidate, count)
        for candidate, count in _other_patterns(pattern, files)
    ]
    if suggestions:
        return NoMatch(object_name, where, suggestions)
    any_case = _regex(pattern, ignore_case=True)
    case_hits = [f for f in files if any_case.fullmatch(f)]
    if case_hits:
        note = (
            f"{len(case_hits):,} file(s) match if letter case is ignored, e.g. "
            f'"{prefix}{case_hits[0]}" (a glob is case-sensitive)'
        )
    else:
        more = "" if len(files) < MAX_FILES else " or more"
        examples = ", ".join(f'"{prefix}{f}"' for f in files[:3])
        note = f"the source holds {len(files):,}{more} other file(s), e.g. {examples}"
    return NoMatch(object_name, where, note=note)


def _files(root: Path) -> list[str]:
    """Up to MAX_FILES file paths under `root`, relative, '/'-separated, hidden ones left out."""
    found: list[str] = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        base = Path(directory).relative_to(root).as_posix()
        for name in sorted(names):
            if not name.startswith("."):
                found.append(name if base == "." else f"{base}/{name}")
                if len(found) >= MAX_FILES:
                    return found
    return found


def _extension(name: str) -> str:
    """The file extension staging goes by: `.csv`, or `.csv.gz` for a compressed file."""
    last = _SUFFIX.search(name)
    if last is None:
        return ""
    ext = last.group()
    if ext.lower() in COMPRESSED_SUFFIXES:
        before = _SUFFIX.search(name[: last.start()])
        if before is not None:
            ext = before.group() + ext
    return ext


def _other_patterns(pattern: str, files: list[str]) -> list[tuple[str, int]]:
    """Globs close to `pattern` that do match files, with how many files each matches: the
    same names in a directory named alike or one level down, another extension in the same
    directory or one named alike.
    The three most like `pattern` as written (most files first among equals)."""
    directory, _, name = pattern.rpartition("/")
    parents = sorted({f.rpartition("/")[0] for f in files})
    # the same names in a directory named like the one written, or one below it
    below = [p for p in parents if not directory or p.startswith(f"{directory}/")]
    close = _close_directories(directory, parents) if directory else []
    candidates = {_join(d, name) for d in [*close, *below]}
    ext = _extension(name)
    if ext:
        stem = name[: -len(ext)]
        for d in [directory, *close]:
            any_ext = _regex(_join(d, f"{stem}.*"))
            exts = {_extension(f.rpartition("/")[2]) for f in files if any_ext.fullmatch(f)}
            candidates.update(_join(d, stem + e) for e in exts)
    candidates.discard(pattern)
    ranked: list[tuple[float, int, str]] = []
    for candidate in candidates:
        likeness = difflib.SequenceMatcher(None, pattern.lower(), candidate.lower()).ratio()
        if likeness < _SIMILAR:
            continue
        rx = _regex(candidate)
        matched = sum(1 for f in files if rx.fullmatch(f))
        if matched:
            ranked.append((-likeness, -matched, candidate))
    return [(candidate, -matched) for _, matched, candidate in sorted(ranked)[:3]]


def _close_directories(directory: str, parents: list[str]) -> list[str]:
    lower = {p.lower(): p for p in parents if p}
    return [lower[c] for c in difflib.get_close_matches(directory.lower(), list(lower), n=3)]


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def _regex(glob: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """`glob` as `Path.glob` reads it: `*` and `?` stay within a path part, `**/` spans parts."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := glob.find("]", i + 2)) != -1:
            inner = glob[i + 1 : end]
            negate = inner.startswith("!")
            inner = inner[1:] if negate else inner
            out.append(("[^" if negate else "[") + inner.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE if ignore_case else 0)
