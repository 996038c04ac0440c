"""The CLI keeps its conventions: one name per concept, choices refused before any work,
tables that fit 80 columns, progress reported in steps, printed figures from the summary."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import click
import pytest
import typer.main
from rich.console import Console
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.reporting.progress import Steps, step_bar

# concept -> the one spelling (long name, short name) every command uses for it
CONVENTIONS = {
    "input": ("--input", "-i"),  # the main input file (or folder, for scan-pii)
    "output": ("--output", "-o"),  # where the main result goes: a file or a folder
    "model": ("--model", "-m"),  # a model URI or folder
    "policy": ("--policy", "-p"),
    "n_households": ("--n-households", "-n"),
}
# spellings the CLI used before for those concepts: none may come back
RETIRED = {"--out", "--data", "--households", "--n", "--out-dir", "--report-dir"}


def _commands() -> dict[str, click.Command]:
    group = typer.main.get_command(app)
    ctx = click.Context(group)
    return {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}  # type: ignore[attr-defined]


def test_one_name_per_concept_and_no_positional_files() -> None:
    for name, cmd in _commands().items():
        for param in cmd.params:
            assert not isinstance(param, click.Argument), f"{name}: positional {param.name}; use an option"
            opts = set(param.opts)
            assert not opts & RETIRED, (name, opts)
            for concept, (long, short) in CONVENTIONS.items():
                if long in opts:
                    assert short in opts, f"{name} {long} lacks {short}"
                if short in opts:
                    assert long in opts, f"{name} {short} is not {long}"
        # a report directory is the command's output: --report (anonymise's report file
        # aside) is not a second name for it
        if name != "anonymise":
            assert all("--report" not in p.opts for p in cmd.params), name


def test_the_main_input_and_output_are_named_alike() -> None:
    cmds = _commands()
    takes_input = {"check-data", "anonymise", "scan-pii", "rules", "explain", "fairness", "validate",
                   "recalibrate", "score"}
    writes_output = {"generate", "anonymise", "generate-raw", "make-key", "rules", "explain", "fairness",
                     "validate", "recalibrate", "monitor", "score"}
    for name in takes_input:
        assert any("--input" in p.opts for p in cmds[name].params), name
    for name in writes_output:
        assert any("--output" in p.opts for p in cmds[name].params), name


@pytest.mark.parametrize("args, made", [
    (["score", "-i", "{tmp}/h.parquet", "-o", "{tmp}/scores", "--engine", "hadoop"], "scores"),
    (["monitor", "--reference", "{tmp}/h.parquet", "--current", "{tmp}/h.parquet", "-o", "{tmp}/drift",
      "--fail-on", "purple"], "drift"),
    (["explain", "-m", "{tmp}/model", "-i", "{tmp}/h.parquet", "-o", "{tmp}/r.parquet", "--form", "tall"],
     "r.parquet"),
    (["generate", "-o", "{tmp}/g.parquet", "--vintage", "3"], "g.parquet"),
    (["generate-raw", "-o", "{tmp}/raw.csv", "--encoding", "latin-1"], "raw.csv"),
])
def test_choices_are_refused_before_any_work(tmp_path: Path, args: list[str], made: str) -> None:
    res = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert res.exit_code == 2, res.output
    assert "Invalid value" in res.output
    assert list(tmp_path.iterdir()) == [] and not (tmp_path / made).exists()


def _too_wide(output: str, tmp_path: Path) -> list[str]:
    return [line for line in output.splitlines() if len(line) > 80 and str(tmp_path) not in line]


def test_tables_fit_80_columns(generated_households, tmp_path: Path) -> None:
    src = tmp_path / "h.parquet"
    generated_households(400, seed=5).to_parquet(src)
    runs = [["policies"]]
    for policy in ("jinxiang_2022", "jinxiang_2022_no_age_cutoff", "xx_county"):
        for lang in ("en", "zh"):
            runs.append(["rules", "-i", str(src), "-o", str(tmp_path / f"{policy}-{lang}.parquet"),
                         "-p", policy, "--lang", lang])
    for args in runs:
        res = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
        assert res.exit_code == 0, res.output
        assert "┃" in res.output or "│" in res.output  # a table was printed
        assert "…" not in res.output, (args, res.output)
        assert _too_wide(res.output, tmp_path) == [], args
    # the vetoes are listed in full, Chinese labels included (folded, not cut)
    zh = CliRunner().invoke(app, runs[2], env={"COLUMNS": "80"}).output
    assert "veto:" in zh and "贷款逾期" in re.sub(r"[│\s]", "", zh)


def test_steps_advance_and_finish() -> None:
    seen: list[tuple[str, int, int]] = []
    steps = Steps(lambda *a: seen.append(a), total=3)
    for name in ("a", "b", "c"):
        steps(name)
    steps.finish()
    assert seen == [("a", 0, 3), ("b", 1, 3), ("c", 2, 3), ("done", 3, 3)]
    Steps(None, total=2)("quiet")  # no callback: nothing to call, no error


def test_step_bar_draws_the_steps_at_a_terminal_and_nothing_elsewhere() -> None:
    term = io.StringIO()
    with step_bar("auditing", console=Console(file=term, force_terminal=True, width=80)) as progress:
        assert progress is not None
        progress("bootstrap", 1, 4)
    assert "auditing" in term.getvalue() and "bootstrap" in term.getvalue()
    pipe = io.StringIO()
    with step_bar("auditing", console=Console(file=pipe, force_terminal=False)) as progress:
        progress("bootstrap", 1, 4)  # type: ignore[misc]
    assert "bootstrap" not in pipe.getvalue()
    with step_bar("auditing", enabled=False) as progress:
        assert progress is None


def test_score_prints_the_rows_per_second_of_its_summary(scoring_env, tmp_path: Path) -> None:
    out = tmp_path / "scored"
    res = CliRunner().invoke(app, ["score", "-i", str(scoring_env.parquet), "-o", str(out),
                                   "-m", scoring_env.model_uri, "--tracking-uri", scoring_env.tracking_uri,
                                   "--chunk-rows", "1000", "--no-progress"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    written = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    line = " ".join(res.stderr.split())
    m = re.search(r"([\d,]+) rows read = ([\d,]+) scored \+ ([\d,]+) quarantined; ([\d,]+) rows/s", line)
    assert m is not None, res.stderr
    shown = [int(g.replace(",", "")) for g in m.groups()]
    assert shown[:3] == [written["rows_read"], written["scored"], written["quarantined"]]
    assert shown[3] == round(written["rows_per_second"]) == round(printed["rows_per_second"])
    assert printed["rows_per_second"] == written["rows_per_second"] > 0


def test_stage_bar_is_on_stderr_and_ends_at_the_stages_that_ran():
    """The demo's bar went to stdout (beside the summary) and froze at "10/11"."""
    from village_credit.stages import StageTimer

    timer = StageTimer([], show=True, total=3)  # planned: 3; one turns out not to apply
    try:
        assert timer.progress.console.stderr and timer.progress.live.transient
        timer.run("one", lambda: None)
        timer.run("two", lambda: None)
    finally:
        timer.close()
    task = timer.progress.tasks[0]
    assert (task.completed, task.total) == (2, 2) and timer.total == 2
