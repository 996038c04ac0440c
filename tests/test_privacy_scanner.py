"""PII scanner: finds planted IDs, phones and names in every artifact format, nothing in clean output."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from village_credit.data.generator import GeneratorConfig
from village_credit.privacy.anonymise import anonymise
from village_credit.privacy.raw_records import generate_raw_records, names_in
from village_credit.privacy.scanner import mask, scan_pii

ID = "11010519491231002X"
PHONE = "13812345678"
NAME = "王秀英"


def _kinds(findings) -> set[str]:
    return {f.kind for f in findings}


def _no_raw_values(findings) -> None:
    for f in findings:
        assert ID not in str(f) and PHONE not in str(f) and NAME not in str(f)


def test_mask_keeps_ends_only() -> None:
    assert mask(ID) == "110*************2X"
    assert mask(NAME, 1, 0) == "王**"


@pytest.mark.parametrize("fmt", ["csv", "json", "html", "txt", "yaml", "parquet", "sqlite"])
def test_planted_pii_found_in_every_format(tmp_path, fmt) -> None:
    df = pd.DataFrame({"note": ["ok", f"户主{NAME}身份证号{ID}电话{PHONE}"], "n": [1, 2]})
    path = tmp_path / f"artifact.{ 'db' if fmt == 'sqlite' else fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "json":
        path.write_text(json.dumps(df.to_dict("records"), ensure_ascii=False))
    elif fmt == "html":
        path.write_text(df.to_html(), encoding="utf-8")
    elif fmt in ("txt", "yaml"):
        path.write_text(f"run: 1\nowner: {NAME}\nid: {ID}\nphone: +86 138 1234 5678\n", encoding="gbk")
    elif fmt == "parquet":
        df.to_parquet(path)
    else:
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE params (key TEXT, value TEXT)")
        con.execute("INSERT INTO params VALUES ('owner', ?)", (df["note"].iloc[1],))
        con.commit()
        con.close()
    found = scan_pii(path, names=[NAME])
    assert {"resident_id", "phone", "name"} <= _kinds(found), found
    _no_raw_values(found)


def test_numbers_stored_as_integers_in_parquet(tmp_path) -> None:
    pd.DataFrame({"id": np.array([440524188001010014], dtype=np.int64),
                  "phone": np.array([int(PHONE)], dtype=np.int64)}).to_parquet(tmp_path / "x.parquet")
    assert {"resident_id", "phone"} <= _kinds(scan_pii(tmp_path / "x.parquet"))


def test_lookalikes_are_not_findings(tmp_path) -> None:
    rng = np.random.default_rng(0)
    # random 18-digit numbers, float metrics, epoch millis, hex run ids, valid-looking dates
    lines = [str(int(x)) for x in rng.integers(10**17, 10**18, 300, dtype=np.int64)]
    lines += [f"{x!r}" for x in rng.random(300)]
    lines += ["1718000000000", "a13812345678b", "run_id: 0a13912345678fe0c1d2e3f4a5b6c7d8",
              "auc 0.13812345678", "HH0005446219be1587"]
    (tmp_path / "metrics.txt").write_text("\n".join(lines))
    found = scan_pii(tmp_path)
    # the checksum leaves ~1 in 11 of date-shaped random numbers; none of these is date-shaped enough
    assert len([f for f in found if f.kind != "resident_id"]) == 0, found
    assert len(found) <= 3


def test_directory_walk_and_clean_anonymised_output(tmp_path) -> None:
    cfg = GeneratorConfig(n_households=200, seed=3, n_townships=1, villages_per_township=2)
    raw = generate_raw_records(cfg)
    names = names_in(raw)
    assert len(names) > 200
    (tmp_path / "raw").mkdir()
    raw.head(20).to_csv(tmp_path / "raw" / "raw.csv", index=False)
    mlruns = tmp_path / "mlruns" / "0" / "abc123" / "artifacts"
    mlruns.mkdir(parents=True)
    res = anonymise(raw, bytes(32), k=5)
    res.households.to_parquet(mlruns / "households.parquet")
    # a scores-like file: ids and location only (no other quasi-identifier)
    res.households[["household_id", "village_code", "township_code"]].head(50).to_csv(
        mlruns / "scores.csv", index=False)
    (mlruns / "report.json").write_text(json.dumps(res.report.to_dict(), ensure_ascii=False))
    assert scan_pii(tmp_path / "mlruns", names=names) == []
    found = scan_pii(tmp_path, names=names)
    assert found and all("raw.csv" in f.file for f in found)
    assert {"resident_id", "phone", "name"} <= _kinds(found)
    # a release made with a smaller k than the threat model's is flagged (counts only)
    weak = tmp_path / "weak"
    weak.mkdir()
    anonymise(raw, bytes(32), k=2).households.to_parquet(weak / "households.parquet")
    assert [f.kind for f in scan_pii(weak, names=names)] == ["small_qi_class"]


def test_cli_exit_codes(tmp_path) -> None:
    from village_credit.cli import app

    runner = CliRunner()
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.txt").write_text("nothing here 12345")
    assert runner.invoke(app, ["scan-pii", "--input", str(clean)]).exit_code == 0
    (clean / "b.txt").write_text(f"{NAME} {PHONE}")
    names = tmp_path / "names.txt"
    names.write_text(NAME + "\n", encoding="utf-8")
    r = runner.invoke(app, ["scan-pii", "--input", str(clean), "--names-file", str(names)])
    assert r.exit_code == 1
    assert PHONE not in r.output and NAME not in r.output


def test_names_inside_the_toolkits_own_labels_are_not_findings(tmp_path) -> None:
    """A plausible two-character name can be part of the policy label 高利贷 (usury)."""
    from village_credit.privacy.scanner import scan_pii, toolkit_vocabulary

    assert "高利贷" in "".join(toolkit_vocabulary())
    label = tmp_path / "labels.txt"
    label.write_text("veto: 贷款逾期恶意逃废债偷逃税高利贷非法集资\n", encoding="utf-8")
    assert scan_pii(label, names=["高利"]) == []
    person = tmp_path / "person.txt"
    person.write_text("户主 高利 的贷款\n", encoding="utf-8")
    assert [f.kind for f in scan_pii(person, names=["高利"])] == ["name"]


def test_the_package_source_holds_no_personal_data() -> None:
    """Logged models ship the package's code: its docstring examples must carry no
    resident ID or phone number either (the end-to-end PII test would find it later)."""
    import village_credit
    from village_credit.privacy import scan_pii

    assert scan_pii(Path(village_credit.__file__).parent, quasi_identifiers=()) == []


def test_a_training_run_store_and_its_scores_hold_nothing_but_planted_pii_is_found(scoring_store, tmp_path) -> None:
    """The toolkit's own output passes its own scanner: the MLflow store of a real training run
    (LightGBM booster text, the logged package source, the SQLite database) and a batch
    scoring output, scanned with a list of names, find nothing; the same names, an ID number
    and a phone number planted in a copy are all found (issue 28)."""
    import shutil

    from village_credit.scoring import score_file

    scoring_env = scoring_store  # MLflow pointed at its store: a module fixture elsewhere may have moved it

    names = sorted(set(names_in(generate_raw_records(GeneratorConfig(n_households=300, seed=1)))))
    out = tmp_path / "out"
    score_file(scoring_env.model_uri, scoring_env.parquet, out, chunk_rows=1000, progress=False)
    inputs = {scoring_env.parquet.name, scoring_env.csv.name}  # generated inputs: not outputs
    store = [p for p in scoring_env.root.iterdir() if p.name not in inputs]
    boosters = [p for d in store if d.is_dir() for p in d.rglob("*") if p.is_file() and "booster" in p.name]
    assert boosters, "the store must hold LightGBM booster files for this test to mean anything"
    # the QI-class check is off here: the scoring input is a generated (not anonymised) table, and
    # its quarantine copies a few input rows, which are small classes by construction
    findings = [f for p in [*store, out] for f in scan_pii(p, names=names, quasi_identifiers=())]
    assert findings == [], [str(f) for f in findings[:10]]
    planted = tmp_path / "planted"
    shutil.copytree(out, planted)
    (planted / "note.txt").write_text(f"{names[0]} {ID} {PHONE}\n", encoding="utf-8")
    assert _kinds(scan_pii(planted, names=names, quasi_identifiers=())) == {"name", "resident_id", "phone"}
