"""A flag: one evaluated rule with its verdict, strength and evidence.

Defined below every layer so that any rule can return one: the quarter-end flags (:mod:`volsurf.signals.flags`)
and the trend-follower alignment flag (:mod:`volsurf.flows.cta`) produce the same type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Flag"]


@dataclass(frozen=True)
class Flag:
    """One evaluated rule.

    Attributes
    ----------
    name : str
        Rule name.
    triggered : bool
        The rule's condition holds.
    strength : float or None
        Score / threshold (>= 1 when triggered); None when not evaluated.
    evidence : dict
        The numbers behind the verdict (and ``reason`` when not evaluated).
    description : str
        The rule in words.
    evaluated : bool
        False when inputs were missing (e.g. no previous snapshot).
    """

    name: str
    triggered: bool
    strength: float | None
    evidence: dict[str, Any]
    description: str
    evaluated: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "triggered": self.triggered,
            "strength": self.strength,
            "evaluated": self.evaluated,
            "description": self.description,
            "evidence": dict(self.evidence),
        }
