"""Type aliases shared by the package (array and date-like inputs)."""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

#: A float64 array (decimal vols, years, prices, ...).
FloatArray: TypeAlias = npt.NDArray[np.float64]
#: A boolean mask.
BoolArray: TypeAlias = npt.NDArray[np.bool_]
#: Anything numpy turns into an array of numbers (scalars, lists, arrays, Series).
ArrayLike: TypeAlias = npt.ArrayLike
#: A calendar date given as a date, an ISO string, a pandas Timestamp or a numpy datetime64.
DateLike: TypeAlias = "dt.date | str | np.datetime64"
#: Array-like of date-likes (vectorized calendar functions).
DatesLike: TypeAlias = "DateLike | npt.ArrayLike"

__all__ = ["ArrayLike", "BoolArray", "DateLike", "DatesLike", "FloatArray"]
