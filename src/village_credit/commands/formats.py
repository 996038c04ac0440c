"""``village-credit schemas``: write the JSON Schema of every hand-written file format.

Thin over :func:`village_credit.schemas.write_schemas`: an editor (VS Code's YAML
extension) uses the files to complete and check experiment files, feature specs and
policies as they are typed (docs/file-formats.md).
"""

from __future__ import annotations

from pathlib import Path

import typer

from village_credit.schemas import write_schemas

DEFAULT_SCHEMA_DIR = Path("schemas")

def schemas_cmd(
    out: Path = typer.Option(DEFAULT_SCHEMA_DIR, "--output", "-o", file_okay=False,
                             help="Folder for the <format>.schema.json files."),
) -> None:
    """Write the JSON Schema of each hand-written file format (for editors); print the paths."""
    try:
        paths = write_schemas(out)
    except OSError as exc:
        typer.echo(f"cannot write schemas to {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    for p in paths:
        typer.echo(str(p))
