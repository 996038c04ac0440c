"""The shell and Python blocks of README.md and docs/*.md, as a reader copies them.

Shared by tests/test_docs_blocks.py (every block is run or carries a checked reason
why not) and tests/test_registry_auth_server.py (runs the basic-auth setup blocks).
A block is a fenced code block; the HTML comment on the line just above it, if any,
is its marker: ``<!-- not run: <reason> -->``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell"}
PYTHON = {"python", "py"}
_MARKER = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int          # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None  # the reason, when marked ``<!-- not run: ... -->``
    section: str       # the nearest heading above

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(paths: list[Path] | None = None) -> list[Block]:
    out = []
    for path in paths or DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        heading, i = "", 0
        while i < len(lines):
            ln = lines[i]
            if ln.startswith("```"):
                lang, start = ln[3:].strip().lower(), i
                j = i + 1
                while j < len(lines) and not lines[j].startswith("```"):
                    j += 1
                marker = _MARKER.search(lines[start - 1]) if start else None
                out.append(Block(path, start + 1, lang, "\n".join(lines[start + 1:j]) + "\n",
                                 marker.group(1) if marker else None, heading))
                i = j + 1
                continue
            if ln.startswith("#"):
                heading = ln.lstrip("#").strip()
            i += 1
    return out


def section_blocks(path: Path, section: str) -> list[Block]:
    """The blocks under one heading (exact heading text), in order."""
    return [b for b in blocks([path]) if b.section == section]
