"""A problem found in a definition file, located as precisely as the YAML allows."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Issue:
    """One problem in one file, located as precisely as the YAML allows."""

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {where}{self.message}{hint}"

    def warning(self) -> Issue:
        return replace(self, severity="warning")
