"""Rich tables that fit an 80-column terminal without cutting a cell to "…".

Rich's default column overflow is an ellipsis: a word longer than its column (a policy
code, a Chinese label with no spaces, a URI) loses its end. Every command table is
built here with ``overflow="fold"``: long words continue on the next line instead.
"""

from __future__ import annotations

from rich.table import Table


def fitting_table(*columns: str | tuple[str, str], title: str | None = None,
                  show_header: bool = True) -> Table:
    """A table whose columns fold long words; a column is ``name`` or ``(name, justify)``.

    >>> import io
    >>> from rich.console import Console
    >>> t = fitting_table("code", ("n", "right"))
    >>> t.add_row("ineligible_" * 10, "1")
    >>> out = io.StringIO()
    >>> Console(file=out, width=40).print(t)
    >>> text = out.getvalue()
    >>> "…" in text, "ineligible" in text, max(len(line) for line in text.splitlines())
    (False, True, 40)
    """
    table = Table(title=title, show_header=show_header)
    for col in columns:
        name, justify = (col, "left") if isinstance(col, str) else col
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return table
