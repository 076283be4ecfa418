"""What one invariant check found: expected, found, lost, doubled, wrong, with examples."""

from dataclasses import dataclass, field


@dataclass
class Check:
    name: str
    expected: int = 0
    found: int = 0
    lost: int = 0
    doubled: int = 0
    wrong: int = 0
    examples: list[str] = field(default_factory=list)  # a few ids behind a non-zero count
    notes: dict[str, int] = field(default_factory=dict)  # figures that are not failures

    def flag(self, kind: str, n: int, what: list[str]) -> None:
        setattr(self, kind, getattr(self, kind) + n)
        self.examples += [f"{kind}: {w}" for w in what[: max(0, 5 - len(self.examples))]]

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and self.wrong == 0


@dataclass
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def by_name(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def totals(self) -> dict[str, int]:
        return {k: sum(getattr(c, k) for c in self.checks)
                for k in ("expected", "found", "lost", "doubled", "wrong")}

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "totals": self.totals(), "checks": [
            {"name": c.name, "expected": c.expected, "found": c.found, "lost": c.lost,
             "doubled": c.doubled, "wrong": c.wrong, "notes": c.notes, "examples": c.examples}
            for c in self.checks]}
