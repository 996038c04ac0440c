"""Every shell and Python block in README.md and docs/*.md is either run here, as a
reader would paste it, or carries a ``<!-- not run: <category>: <why> -->`` marker whose
category is one of :data:`NOT_RUN_CATEGORIES` and whose named test, if any, exists.

Blocks that are not run are still checked for what drifts silently: shell syntax
(``bash -n``), every ``village-credit`` sub-command and ``--option`` against the real
CLI, every ``bench/`` or ``scripts/`` file and its ``--flags``, every ``make`` target,
every ``experiments/*.yaml``; Python blocks compile and their ``village_credit`` imports
resolve. The basic-auth setup of docs/registry.md is run against a real server by
tests/test_registry_auth_server.py.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from doc_blocks import PYTHON, ROOT, SHELL, Block, blocks

NOT_RUN_CATEGORIES = ("long", "installs software", "needs a cluster", "starts a server", "needs the server above")
ALL = blocks()
CODE = [b for b in ALL if b.lang in SHELL | PYTHON]
RUN = [b for b in CODE if b.not_run is None]
_ids = [b.where for b in CODE]


def test_every_block_says_its_language() -> None:
    """An unlabelled fence hides whether it is a command, a file or an output."""
    assert [b.where for b in ALL if not b.lang] == []


@pytest.mark.parametrize("block", CODE, ids=_ids)
def test_block_is_run_or_says_why_not(block: Block) -> None:
    if block.not_run is None:
        assert block in RUN
        return
    category, _, why = block.not_run.partition(":")
    assert category in NOT_RUN_CATEGORIES and why.strip(), (
        f"{block.where}: 'not run' needs '<category>: <why>' with a category from {NOT_RUN_CATEGORIES}")
    for path, name in re.findall(r"(tests/test_\w+\.py)(?:::(\w+))?", why):
        source = (ROOT / path).read_text(encoding="utf-8")
        assert not name or f"def {name}(" in source, f"{block.where}: {path}::{name} does not exist"


# ----------------------------------------------------------------------------- static checks
def _commands(code: str) -> list[list[str]]:
    """Shell commands as token lists: continuation lines joined, comments and heredoc bodies dropped."""
    text = re.sub(r"<<'?(\w+)'?\n.*?\n\1\n", "\n", code.replace("\\\n", " "), flags=re.DOTALL)
    out = []
    for line in text.splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        cmd: list[str] = []
        for t in [*tokens, ";"]:
            if t in (";", "&&", "||", "|"):
                if cmd:
                    out.append(cmd)
                cmd = []
            else:
                cmd.append(t)
    return out


@functools.lru_cache(maxsize=1)
def _cli():
    from village_credit.cli import app
    return typer.main.get_command(app)


@pytest.mark.parametrize("block", [b for b in CODE if b.lang in SHELL], ids=[b.where for b in CODE if b.lang in SHELL])
def test_shell_block_names_real_commands_files_and_options(block: Block) -> None:
    proc = subprocess.run(["bash", "-n"], input=block.code, text=True, capture_output=True, check=False)
    assert proc.returncode == 0, f"{block.where}: {proc.stderr}"
    cli = _cli()
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for cmd in _commands(block.code):
        words = [w for w in cmd if "=" not in w.split("/")[0] or w.startswith("-")]  # drop VAR=value
        for i, w in enumerate(words):
            if i == 0 and w.endswith("village-credit") and i + 1 < len(words):
                sub = cli.get_command(click.Context(cli), words[i + 1])
                assert sub is not None, f"{block.where}: no command `village-credit {words[i + 1]}`"
                known = {o for p in sub.params for o in (*p.opts, *p.secondary_opts)}
                unknown = [o.split("=")[0] for o in words[i + 2:] if o.startswith("-") and o.split("=")[0] not in known]
                assert not unknown, f"{block.where}: `village-credit {words[i + 1]}` has no {unknown}"
            elif re.match(r"^(bench|scripts)/\w+\.py$", w):
                script = ROOT / w
                assert script.is_file(), f"{block.where}: {w} does not exist"
                source = script.read_text(encoding="utf-8")
                missing = [o.split("=")[0] for o in words[i + 1:] if o.startswith("--")
                           and f'"{o.split("=")[0]}"' not in source and f"'{o.split('=')[0]}'" not in source]
                assert not missing, f"{block.where}: {w} takes no {missing}"
            elif re.match(r"^(experiments|src|tests)/[\w./-]+\.(yaml|py)$", w):
                assert (ROOT / w).is_file(), f"{block.where}: {w} does not exist"
        if words[:1] == ["make"]:
            for target in words[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), f"{block.where}: no make target {target}"


@pytest.mark.parametrize("block", [b for b in CODE if b.lang in PYTHON], ids=[b.where for b in CODE if b.lang in PYTHON])
def test_python_block_compiles_and_its_imports_exist(block: Block) -> None:
    compile(block.code, block.where, "exec")
    for module, grouped, line in re.findall(r"^from (village_credit[\w.]*) import (?:\(([^)]*)\)|([^\n(]+))",
                                            block.code, re.MULTILINE):
        names = (grouped or line).split("#")[0]
        mod = importlib.import_module(module)
        for name in (n.strip() for n in names.replace("\n", " ").split(",") if n.strip()):
            assert hasattr(mod, name), f"{block.where}: {module} has no {name}"


# ----------------------------------------------------------------------------- run as pasted
@pytest.mark.slow
@pytest.mark.parametrize("block", RUN, ids=[b.where for b in RUN])
def test_block_runs_as_pasted(block: Block, tmp_path: Path) -> None:
    """Python blocks run in a fresh interpreter in a scratch folder holding links to the
    repository's data/ and experiments/ (what they write stays there); shell blocks run
    from the repository root, as the docs tell a reader to."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg",
           "MLFLOW_TRACKING_URI": f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if block.lang in PYTHON:
        for d in ("data", "experiments"):
            (tmp_path / d).symlink_to(ROOT / d)
        cmd, cwd = [sys.executable, "-c", block.code], tmp_path
    else:
        cmd, cwd = ["bash", "-euo", "pipefail", "-c", block.code], ROOT
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{block.where} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
