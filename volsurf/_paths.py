"""Safe output: file names from data, output folders checked up front, and whole-or-nothing publishing.

Nothing volsurf writes may land outside the folder the user chose, and a finished output folder always holds
the files of one run: :func:`publish` moves a staged set of files into place under a lock, newest run last.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from volsurf.errors import ParameterError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: Name of the staging folders made inside an output folder (removed when a run ends, whatever happens).
STAGING_PREFIX = ".volsurf-staging-"


def safe_stem(text: object, default: str = "chain") -> str:
    """A file-name stem made from data (an underlying, a date): letters, digits, ``.``, ``_``, ``-`` only.

    Path separators, ``..`` and control characters cannot survive, so the name stays inside its folder.
    """
    stem = _UNSAFE.sub("_", str(text)).strip("._-")
    stem = re.sub(r"\.{2,}", ".", stem)[:80]
    return stem or default


def output_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create ``path`` (and missing parents) as a folder, or raise a one-line error saying why it cannot be."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ParameterError(f"{what} {p} is a file, not a folder", hint="choose a folder path")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"cannot create {what} {p}: {exc.strerror or exc}",
                             hint="choose a folder you can write to") from exc
    if not os.access(p, os.W_OK | os.X_OK):
        raise ParameterError(f"{what} {p} is not writable", hint="choose a folder you can write to")
    return p


def output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """``path`` checked as a file to write: its folder made (or a one-line error why not), not a folder itself."""
    p = Path(path)
    if p.is_dir():
        raise ParameterError(f"{what} {p} is a folder, not a file", hint="give a file name")
    output_dir(p.parent if str(p.parent) else ".", f"folder of the {what}")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], what: str = "output file") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; moved onto ``path`` (``os.replace``) when the block ends.

    If the block fails or is interrupted the temporary file is removed and ``path`` is untouched: readers see
    the old file or the whole new one, never a part. The temporary name keeps the suffix (matplotlib picks the
    format from it) and starts with a dot.
    """
    target = output_file(path, what)
    tmp = target.with_name(f".{target.stem[:60]}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_atomic(path: str | os.PathLike[str], text: str, what: str = "output file") -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all (see :func:`atomic_path`)."""
    with atomic_path(path, what) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A fresh hidden folder inside ``out_dir`` for one run's files; removed on exit (success or not)."""
    stage = out_dir / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    import fcntl

    with open(out_dir / ".volsurf.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def publish(stage: Path, out_dir: Path, manifest: str, last: str) -> None:
    """Move every file of ``stage`` into ``out_dir``, ``last`` at the very end, under an exclusive lock.

    ``manifest`` names a JSON file in both folders whose ``charts`` maps names to file names: files the previous
    run listed that this run does not write are removed, so the folder never mixes two runs. Each move is an
    atomic rename; two concurrent runs publish one after the other, so the later one wins whole.
    """
    with _locked(out_dir):
        old = out_dir / manifest
        stale: set[str] = set()
        if old.is_file():
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stale = set(json.loads(old.read_text(encoding="utf-8")).get("charts", {}).values())
        files = sorted(p.name for p in stage.iterdir() if p.is_file())
        for name in [n for n in files if n not in (manifest, last)] + [manifest, last]:
            if (stage / name).exists():
                os.replace(stage / name, out_dir / name)
                stale.discard(name)
        for name in stale:
            target = out_dir / safe_stem(name, default="")
            if target.name and target.name == name and target.is_file():
                target.unlink()
