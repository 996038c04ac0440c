"""``village-credit rules`` and ``village-credit policies``: score a household file under
a points policy, and list the shipped policies.

Thin: read only the columns the policy needs, call :func:`village_credit.rules.score_rules`,
write decisions and item points to Parquet (the exact resolved policy YAML travels in
the file's metadata), print counts only -- never household data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

ID_OUT = ["household_id", "township_code", "village_code"]


def register(app: typer.Typer) -> None:
    @app.command("rules")
    def rules_cmd(
        input: Path = typer.Argument(..., help="Household file (Parquet or CSV)."),
        policy: str = typer.Option("jinxiang_2022", "--policy", "-p",
                                   help="Shipped policy name (see `village-credit policies`) or a YAML path."),
        out: Path = typer.Option(..., "--out", "-o", help="Output Parquet: ids, decisions, item points."),
        eval_date: Optional[str] = typer.Option(None, "--eval-date",
                                                help="Evaluation date YYYY-MM-DD (default: each row's snapshot_date)."),
        lang: str = typer.Option("en", "--lang", help="Label language for the summary: en or zh."),
    ) -> None:
        """Score households with a rule-based points policy."""
        from village_credit.data.io import read_table, write_parquet
        from village_credit.errors import VillageCreditError
        from village_credit.rules import load_policy, score_rules

        console = Console()
        try:
            pol = load_policy(policy)
            import pyarrow.parquet as pq

            if input.suffix.lower() == ".parquet" and input.exists():
                have = set(pq.ParquetFile(input).schema_arrow.names)
            else:
                have = None
            want = list(dict.fromkeys(ID_OUT + pol.required_columns
                                      + (["snapshot_date"] if eval_date is None else [])))
            # read only what we need; missing columns are reported by score_rules in one list
            cols = [c for c in want if have is None or c in have]
            df = read_table(input, columns=cols if have is not None else None)
            res = score_rules(df, pol, eval_date)
            ids = df[[c for c in ID_OUT if c in df.columns]]
            table = ids.join(res.decisions).join(res.items)
            write_parquet(table, out, metadata={"village_credit.policy": pol.name,
                                                "village_credit.policy_yaml": pol.to_yaml_text(),
                                                "village_credit.eval_date": eval_date or "snapshot_date"})
        except VillageCreditError as exc:
            Console(stderr=True).print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=2) from exc

        d = res.decisions
        n = len(d)
        s = Table(title=f"{pol.title.get(lang, pol.name)} ({pol.name})")
        s.add_column("measure")
        s.add_column("value", justify="right")
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
            s.add_row(f"veto: {pol.labels[code][lang]}", f"{c:,}")
        console.print(s)
        console.print(f"wrote {out}")

    @app.command("policies")
    def policies_cmd(
        show: Optional[str] = typer.Option(None, "--show", help="Print one policy's resolved YAML."),
    ) -> None:
        """List the shipped points policies (or show one)."""
        from village_credit.errors import VillageCreditError
        from village_credit.rules import list_policies, load_policy

        console = Console()
        if show:
            try:
                typer.echo(load_policy(show).to_yaml_text())
            except VillageCreditError as exc:
                Console(stderr=True).print(f"[red]error:[/red] {exc}")
                raise typer.Exit(code=2) from exc
            return
        t = Table(title="points policies (--show NAME for the YAML)")
        t.add_column("name", no_wrap=True)
        t.add_column("yuan/pt", justify="right", no_wrap=True)
        t.add_column("cap", justify="right", no_wrap=True)
        t.add_column("rate", no_wrap=True)
        t.add_column("gates")
        titles = []
        for name in list_policies():
            p = load_policy(name)
            titles.append(f"{name}: {p.title['en']} / {p.title['zh']}")
            caps = [f"{p.cap:,.0f}"] + [f"{x.cap:,.0f}*" for x in p.line_tiers]
            t.add_row(name, f"{p.yuan_per_point:,.0f}", " / ".join(caps),
                      f"{p.max_rate:.1%}-{p.lpr:.1%}", ", ".join(p.ineligible_codes) or "-")
        console.print(t)
        console.print("* strong-borrower tier\n" + "\n".join(titles))
