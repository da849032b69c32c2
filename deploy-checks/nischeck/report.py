"""One line per check (PASS / FAIL), then a summary; a crashing check fails, others go on."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass


class CheckFailed(Exception):
    """A check found a problem; the message says what and where."""


def problems(found: list[str], limit: int = 20) -> None:
    """Raise CheckFailed listing `found` (one per line), if any."""
    if found:
        more = f"\n... and {len(found) - limit} more" if len(found) > limit else ""
        raise CheckFailed(f"{len(found)} problem(s)\n" + "\n".join(found[:limit]) + more)


@dataclass
class Report:
    passed: int = 0
    failed: int = 0

    def run(self, name: str, check: Callable[[], str | None]) -> None:
        try:
            note = check()
        except CheckFailed as error:
            self.failed += 1
            self._print("FAIL", name, str(error))
        except Exception:  # a bug in one check must not hide the others
            self.failed += 1
            self._print("FAIL", name, "check crashed:\n" + traceback.format_exc())
        else:
            self.passed += 1
            self._print("PASS", name, note)

    @staticmethod
    def _print(status: str, name: str, detail: str | None) -> None:
        line = f"{status}  {name}"
        if detail:
            first, *rest = str(detail).rstrip().splitlines()
            line += f": {first}" + "".join(f"\n        {extra}" for extra in rest)
        print(line, flush=True)

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"
