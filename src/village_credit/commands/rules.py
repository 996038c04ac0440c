"""``village-credit rules`` and ``village-credit policies``: score a household file under
a points policy, and list the shipped policies.

Thin: read only the columns the policy needs, call :func:`village_credit.rules.score_rules`,
write decisions and item points to Parquet (the exact resolved policy YAML travels in
the file's metadata), print counts only -- never household data.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from village_credit.commands._errors import user_errors
from village_credit.commands._tables import fitting_table
from village_credit.data.io import check_output_file, read_header, read_table, write_parquet
from village_credit.data.schema import SCHEMA
from village_credit.data.validation import parse_date_option, validate_households
from village_credit.errors import VillageCreditError
from village_credit.rules import list_policies, load_policy, score_rules

ID_OUT = ["household_id", "township_code", "village_code"]


class Lang(str, Enum):
    """Label languages of the summary: the policies' ``LABEL_LANGUAGES`` (a test keeps them equal).

    An enum, so Typer refuses any other value before any file is read or written.
    """

    en = "en"
    zh = "zh"

def rules_cmd(
    input: Path = typer.Option(..., "--input", "-i", help="Household file (Parquet or CSV)."),
    policy: str = typer.Option("jinxiang_2022", "--policy", "-p",
                               help="Shipped policy name (see `village-credit policies`) or a YAML path."),
    out: Path = typer.Option(..., "--output", "-o", help="Output Parquet: ids, decisions, item points."),
    eval_date: Optional[str] = typer.Option(None, "--eval-date",
                                            help="Evaluation date YYYY-MM-DD (default: each row's snapshot_date)."),
    lang: Lang = typer.Option(Lang.en, "--lang", help="Label language for the summary."),
    encoding: Optional[str] = typer.Option(None, help="CSV encoding (default: detected)."),
    delimiter: Optional[str] = typer.Option(None, help="CSV delimiter (default: detected among , ; tab |)."),
) -> None:
    """Score households with a rule-based points policy.

    Rows are checked against the schema first (the same checks as ``check-data``
    and ``score``): a bad row is set aside in ``<output>.quarantine.parquet`` with
    row, column, value and reason; the others are scored. Exit 2 when the input
    or policy cannot be used or no row is valid.
    """
    console = Console()
    err = Console(stderr=True)
    q_path = out.with_name(out.stem + ".quarantine.parquet")
    with user_errors(err):
        pol = load_policy(policy)
        check_output_file(out, "--output")
        if eval_date is not None:
            eval_date = parse_date_option(eval_date, "--eval-date").strftime("%Y-%m-%d")
        have = read_header(input, encoding=encoding, delimiter=delimiter)
        need = list(dict.fromkeys(pol.required_columns
                                  + (["snapshot_date"] if eval_date is None else [])))
        # what the policy reads plus every other checkable household column except the
        # monthly history (never read by a policy): the same row checks as check-data
        checked = SCHEMA.names_by_role("id", "meta", "profile", "rule", "event")
        cols = [c for c in dict.fromkeys(ID_OUT + need + checked) if c in have]
        df = read_table(input, columns=cols, encoding=encoding, delimiter=delimiter)
        checked_rows = validate_households(df, required=need, source=str(input))
        valid = checked_rows.valid
        if checked_rows.n_quarantined:
            write_parquet(checked_rows.quarantine, q_path)
        elif q_path.exists():
            q_path.unlink()  # from an earlier run on other data
        if checked_rows.n_valid == 0:
            raise VillageCreditError(f"no row of {input} is valid ({checked_rows.n_quarantined} "
                                     f"quarantined); see {q_path}")
        res = score_rules(valid, pol, eval_date)
        ids = valid[[c for c in ID_OUT if c in valid.columns]]
        table = ids.join(res.decisions).join(res.items)
        write_parquet(table, out, metadata={"village_credit.policy": pol.name,
                                            "village_credit.policy_yaml": pol.to_yaml_text(),
                                            "village_credit.eval_date": eval_date or "snapshot_date"})
    if checked_rows.n_quarantined:
        err.print(f"{checked_rows.n_in:,} rows read = {checked_rows.n_valid:,} scored + "
                  f"{checked_rows.n_quarantined:,} quarantined (one row per problem in {q_path})")
        for rec in checked_rows.quarantine.head(5).itertuples():
            err.print(f"  row {rec.row_number}, column {rec.column}: {rec.reason}")

    d = res.decisions
    n = len(d)
    s = fitting_table("measure", ("value", "right"),
                      title=f"{pol.title.get(Lang(lang).value, pol.name)} ({pol.name})")
    s.add_row("households", f"{n:,}")
    s.add_row("eligible", f"{int(d['eligible'].sum()):,}")
    s.add_row("vetoed", f"{int(d['vetoed'].sum()):,}")
    s.add_row("approved", f"{int(d['approved'].sum()):,} ({d['approved'].mean():.1%})" if n else "0")
    s.add_row("mean points", f"{d['rule_points'].mean():.1f}" if n else "-")
    s.add_row("total credit line (yuan)", f"{d['credit_line'].sum():,.0f}")
    grades = d["grade"].value_counts().sort_index()
    s.add_row("grades", " ".join(f"{g}:{c}" for g, c in grades.items()))
    vc = d.loc[d["vetoed"], "veto_codes"].str.split(";").explode().value_counts()
    for code, c in vc.head(6).items():
        s.add_row(f"veto: {pol.labels[code][Lang(lang).value]}", f"{c:,}")
    console.print(s)
    console.print(f"wrote {out}")


def policies_cmd(
    show: Optional[str] = typer.Option(None, "--show", help="Print one policy's resolved YAML."),
) -> None:
    """List the shipped points policies (or show one)."""
    console = Console()
    if show:
        with user_errors():
            typer.echo(load_policy(show).to_yaml_text())
        return
    # the titles and ineligibility gates (long) go below the table, one policy a line,
    # so that the table fits 80 columns
    t = fitting_table("name", ("yuan/pt", "right"), ("cap", "right"), "rate",
                      title="points policies (--show NAME for the YAML)")
    notes = []
    for name in list_policies():
        p = load_policy(name)
        gates = ", ".join(p.ineligible_codes)
        notes.append(f"{name}: {p.title['en']} / {p.title['zh']}"
                     + (f"; ineligible: {gates}" if gates else ""))
        caps = [f"{p.cap:,.0f}"] + [f"{x.cap:,.0f}*" for x in p.line_tiers]
        t.add_row(name, f"{p.yuan_per_point:,.0f}", " / ".join(caps), f"{p.max_rate:.1%}-{p.lpr:.1%}")
    console.print(t)
    console.print("* strong-borrower tier\n" + "\n".join(notes))
