"""Named exceptions. The library raises these with a hint; the CLI maps them to one ``Error: ...`` line, exit 2."""

from __future__ import annotations

import re

#: Longest message (and hint) one error line carries; quoted input beyond it is cut with "...".
MAX_MESSAGE_CHARS = 240
MAX_HINT_CHARS = 80

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line without control characters, cut to ``limit`` characters (ending in ``...``).

    Input files can hold anything (a 50 MB line, terminal escape sequences): every message that quotes them
    goes through here before it reaches a terminal.
    """
    if len(text) > 4 * limit:
        text = text[: 4 * limit]  # never scan (or copy) a huge value further than needed
    text = " ".join(_CONTROL.sub("?", text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class VolsurfError(Exception):
    """Base class for every error volsurf raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong.
    hint : str, optional
        How to fix the input.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint on one line (for the CLI): control characters replaced, at most about 330
        characters (the message cut to :data:`MAX_MESSAGE_CHARS`, the hint to :data:`MAX_HINT_CHARS`)."""
        text = clip(self.message)
        if self.hint:
            text = f"{text} (hint: {clip(self.hint, MAX_HINT_CHARS)})"
        return text

    def __str__(self) -> str:
        return self.one_line()


class InputFileError(VolsurfError):
    """A file cannot be read at all (missing, empty, binary, a directory with no chains)."""

    def __init__(self, path: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{path}: {message}", hint)
        self.path = path


class FormatError(VolsurfError):
    """A file's content does not match what its format requires.

    Carries the file, the 1-based line and the column name (when they apply) and what was expected.
    """

    def __init__(
        self,
        path: str,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        text = f"{where}: {message}"
        if expected:
            text += f"; expected {expected}"
        super().__init__(text, hint)
        self.path = path
        self.line = line
        self.column = column
        self.expected = expected


class UnknownFormatError(FormatError):
    """No loader recognises the file's content."""


class DataError(VolsurfError):
    """The data loaded but cannot support the requested computation (e.g. too few quotes to fit)."""


class ParameterError(VolsurfError):
    """A user-supplied parameter is out of range or inconsistent."""


# ---------------------------------------------------------------------------------------------------------
# Warnings: the data loaded and the result is usable, but something in it deserves a look. Each is raised with
# ``warnings.warn`` (so a notebook user can filter or escalate it by class) and also recorded as text in the
# snapshot's or result's ``warnings`` list (so JSON outputs carry it).
# ---------------------------------------------------------------------------------------------------------


class VolsurfWarning(UserWarning):
    """Base class of volsurf's warnings."""


class StaleSpotWarning(VolsurfWarning):
    """The file's spot ('Last') disagrees with the spot implied by put-call parity."""


class TradeDateWarning(VolsurfWarning):
    """The file's date line was contradicted by its own data and the trade date was moved (or guessed)."""


class DataQualityWarning(VolsurfWarning):
    """Rows or values were set aside by a hygiene rule, or an input looks implausible."""


class FitWarning(VolsurfWarning):
    """A surface or model fit did not converge or had to fall back to a simpler method."""


def warn(sink: list[str] | None, category: type[VolsurfWarning], message: str, stacklevel: int = 2) -> None:
    """Raise ``message`` as a ``category`` warning and append it to ``sink`` (a ``warnings`` list) when given."""
    import warnings

    if sink is not None:
        sink.append(message)
    warnings.warn(message, category, stacklevel=stacklevel + 1)
