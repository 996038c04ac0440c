"""CLI: ``anonymise``, ``scan-pii``, ``generate-raw`` and ``make-key`` (thin wrappers).

Nothing printed here holds personal data: summaries are counts, findings are masked,
errors name files, rows and columns only.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from village_credit.data.generator import GeneratorConfig
from village_credit.data.io import check_output_file
from village_credit.data.validation import parse_date_option
from village_credit.errors import VillageCreditError
from village_credit.privacy.anonymise import anonymise_file
from village_credit.privacy.pseudonym import generate_key
from village_credit.privacy.raw_records import generate_raw_records
from village_credit.privacy.scanner import load_names, scan_pii
from village_credit.privacy.threat_model import DEFAULT_PRIVACY_CONFIG, load_privacy_config


class RawEncoding(str, Enum):
    """Encodings ``generate-raw`` writes CSV in (what village offices export)."""

    utf8 = "utf-8"
    gbk = "gbk"


def _fail(exc: VillageCreditError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def anonymise_cmd(
    input: Annotated[Path, typer.Option("--input", "-i", help="Raw village file (CSV in UTF-8/GBK, or Parquet).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Anonymised household table (Parquet).")],
    key_file: Annotated[Path, typer.Option("--key-file", help="Secret pseudonymisation key (see make-key).")],
    eval_date: Annotated[str | None, typer.Option(help="Date ages are computed at (default: each row's snapshot_date).")] = None,
    k: Annotated[int | None, typer.Option("--k", help="k-anonymity to reach on the quasi-identifiers (default: the privacy config's, 5).")] = None,
    quasi_identifiers: Annotated[str | None, typer.Option("--qi", help="Comma-separated quasi-identifier columns (default: what the declared attackers know, see docs/privacy.md).")] = None,
    max_suppression: Annotated[float, typer.Option(help="Suppressed share above which the report warns.")] = 0.05,
    privacy_config: Annotated[Path | None, typer.Option("--privacy-config", help="Threat model YAML: attackers, quasi-identifiers, k, hierarchies, risk (docs/privacy.md).")] = None,
    risk: Annotated[bool | None, typer.Option("--risk/--no-risk", help="Measure anonymeter attack risk (default: the config's risk.enabled).")] = None,
    quarantine: Annotated[Path | None, typer.Option(help="Where to write quarantined raw rows (default: next to the input).")] = None,
    report: Annotated[Path | None, typer.Option(help="Report JSON (default: <output stem>.anonymisation.json).")] = None,
    encoding: Annotated[str | None, typer.Option(help="Force the CSV encoding (default: UTF-8, else GB18030/GBK).")] = None,
    release: Annotated[str | None, typer.Option(help="Label of this release; pseudonyms are scoped to it (default: a keyed digest of the input).")] = None,
    link_releases: Annotated[bool, typer.Option("--link-releases", help="Pseudonyms that join with other linked releases under the same key (recorded in the report; docs/privacy.md).")] = False,
) -> None:
    """Anonymise raw village records: pseudonymise, drop identifiers, reach k-anonymity."""
    try:
        if eval_date is not None:  # the one date parser: 2025-13-45 is named, not a traceback
            eval_date = parse_date_option(eval_date, "--eval-date").strftime("%Y-%m-%d")
        check_output_file(output, "--output")
        config = load_privacy_config(privacy_config) if privacy_config else None
        qis = (tuple(q.strip() for q in quasi_identifiers.split(",") if q.strip())
               if quasi_identifiers is not None else None)
        res = anonymise_file(
            input, output, key_file, eval_date=eval_date, k=k,
            quasi_identifiers=qis,
            max_suppression=max_suppression, quarantine_path=quarantine, report_path=report,
            encoding=encoding, config=config, measure_risk=risk, release=release, link_releases=link_releases,
        )
    except VillageCreditError as exc:
        _fail(exc)
        return
    typer.echo(res.report.summary())
    typer.echo(f"wrote {output}")
    if res.report.quarantine_path:
        typer.echo(f"quarantined rows (contain personal data, keep private): {res.report.quarantine_path}")


def scan_pii_cmd(
    path: Annotated[Path, typer.Option("--input", "-i", help="File or directory to scan (e.g. mlruns/, reports/).")],
    names_file: Annotated[Path | None, typer.Option(help="Names to look for, one per line.")] = None,
    show: Annotated[int, typer.Option(help="Print at most this many findings.")] = 50,
    k: Annotated[int | None, typer.Option("--k", help="Smallest allowed quasi-identifier class in tables (default: the privacy config's, 5).")] = None,
    privacy_config: Annotated[Path | None, typer.Option("--privacy-config", help="Threat model YAML whose quasi-identifiers and k tables are checked against.")] = None,
    qi_check: Annotated[bool, typer.Option("--qi-check/--no-qi-check", help="Check tables for quasi-identifier classes smaller than k.")] = True,
) -> None:
    """Find resident IDs, mobile numbers, listed names and small quasi-identifier classes.

    Tables whose quasi-identifier classes are smaller than k count as findings too;
    exit 1 if anything is found.
    """
    try:
        names = load_names(names_file) if names_file else None
        cfg = load_privacy_config(privacy_config) if privacy_config else DEFAULT_PRIVACY_CONFIG
        findings = scan_pii(path, names, quasi_identifiers=cfg.qis if qi_check else (),
                            k=cfg.k if k is None else k)
    except (VillageCreditError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    for f in findings[:show]:
        typer.echo(str(f))
    if len(findings) > show:
        typer.echo(f"... and {len(findings) - show} more")
    if findings:
        typer.echo(f"{len(findings)} possible personal data finding(s) under {path}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"no personal data found under {path}")


def generate_raw_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="Raw file to write (.csv or .parquet).")],
    n: Annotated[int, typer.Option("--n-households", "-n", min=1, help="Households.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    invalid_id_rate: Annotated[float, typer.Option(help="Share of ID numbers with a wrong digit.")] = 0.0,
    old_id_rate: Annotated[float, typer.Option(help="Share of ID numbers in the old 15-digit form.")] = 0.0,
    encoding: Annotated[RawEncoding, typer.Option(help="CSV encoding.")] = RawEncoding.utf8,
    chinese_headers: Annotated[bool, typer.Option(help="Use Chinese column headers for personal data.")] = False,
) -> None:
    """Write fake raw village records (fake names, IDs, phones, addresses) for testing."""
    raw = generate_raw_records(GeneratorConfig(n_households=n, seed=seed),
                               invalid_id_rate=invalid_id_rate, old_id_rate=old_id_rate,
                               chinese_headers=chinese_headers)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() in (".parquet", ".pq"):
        raw.to_parquet(output, index=False)
    else:
        raw.to_csv(output, index=False, encoding=encoding.value, date_format="%Y-%m-%d")
    typer.echo(f"wrote {len(raw)} fake raw records to {output}")


def make_key_cmd(
    path: Annotated[Path, typer.Option("--output", "-o", help="Key file to create (owner-only permissions).")],
) -> None:
    """Create a new secret pseudonymisation key; keep it apart from data and outputs."""
    try:
        generate_key(path)
    except VillageCreditError as exc:
        _fail(exc)
    typer.echo(f"wrote a new key to {path} (mode 600); back it up: without it pseudonyms cannot be re-created")
