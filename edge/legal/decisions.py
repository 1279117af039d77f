"""The gate's verdicts: one ``Decision`` per check, a ``GateResult`` for a whole deployment."""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import PolicyViolation


@dataclass(frozen=True)
class Decision:
    """One check of the gate: ``rule`` names it, ``detail`` says what was found or why not."""

    rule: str
    allowed: bool
    detail: str

    def __str__(self) -> str:
        return f"{'allowed' if self.allowed else 'REFUSED'}  {self.rule}: {self.detail}"


@dataclass(frozen=True)
class GateResult:
    decisions: tuple[Decision, ...]

    @property
    def allowed(self) -> bool:
        return all(d.allowed for d in self.decisions)

    @property
    def refusals(self) -> list[Decision]:
        return [d for d in self.decisions if not d.allowed]

    def raise_if_refused(self) -> None:
        if not self.allowed:
            raise PolicyViolation([f"{d.rule}: {d.detail}" for d in self.refusals])
