"""A new sqlite store starts as a copy of the empty store MLflow migrated once (``seed_new_store``).

Real MLflow, real sqlite files: the copy must be the very store MLflow would have made
(schema, Alembic revision, what ``configure`` then writes), an unfit template must never
reach a user's store, and two processes creating stores at once must both succeed.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from village_credit.registry.examples import mlflow_state_restored
from village_credit.registry.store import (
    _schema_head,
    _template_problem,
    configure,
    empty_store_template,
    seed_new_store,
    seed_store_of,
    template_cache_dir,
)


@pytest.fixture(scope="module")
def good_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One template MLflow built, in a private cache (copied by the tests that need one)."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        path = empty_store_template()
    assert path is not None and path.parent == cache / "village-credit" / "empty-mlflow-stores"
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache folder of this test's own, as ``$XDG_CACHE_HOME``."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with mlflow_state_restored():
        yield template_cache_dir()


def _schema(db: Path) -> tuple[list[tuple], list[str]]:
    """Every table, index and trigger with its SQL, and the Alembic revision.

    A table's clauses are compared as a set: MLflow's batch migrations write a
    table's constraints in hash order, so two stores MLflow migrated itself can
    list the same ``CHECK`` constraints in a different order."""
    con = sqlite3.connect(db)
    try:
        objects = sorted(((kind, name, table, sorted((sql or "").split(", \n")))
                          for kind, name, table, sql in
                          con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")),
                         key=repr)
        versions = [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
    finally:
        con.close()
    return objects, versions


def _experiments(uri: str, folder: Path) -> list[tuple]:
    """Each experiment's id, name, state, tag names and artifact folder (the store's own
    folder written as ``<store>``)."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return sorted((e.experiment_id, e.name, e.lifecycle_stage, sorted(e.tags),
                   e.artifact_location.replace(folder.resolve().as_posix(), "<store>"))
                  for e in client.search_experiments())


def test_a_store_from_the_template_is_the_store_mlflow_makes(cache: Path, tmp_path: Path,
                                                              good_template: Path) -> None:
    shutil.copytree(good_template.parent, cache)
    seeded, own = tmp_path / "seeded" / "mlflow.db", tmp_path / "own" / "mlflow.db"
    seeded.parent.mkdir()
    assert seed_new_store(seeded)  # the template's copy
    configure(f"sqlite:///{seeded}")
    own.parent.mkdir()
    own_uri = f"sqlite:///{own}"
    MlflowClient(tracking_uri=own_uri, registry_uri=own_uri).search_experiments()  # MLflow migrates
    configure(own_uri)

    assert _schema(seeded) == _schema(own)
    assert _schema(seeded)[1] == [_schema_head()]
    assert _experiments(f"sqlite:///{seeded}", seeded.parent) == _experiments(own_uri, own.parent)
    assert [e[1] for e in _experiments(own_uri, own.parent)] == ["Default", "village-credit"]


def test_an_existing_store_is_never_replaced(cache: Path, tmp_path: Path, good_template: Path) -> None:
    shutil.copytree(good_template.parent, cache)
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"")  # what sqlite leaves when another process has just opened it
    assert not seed_new_store(db)
    assert db.read_bytes() == b""
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_uri_is_seeded_only_when_it_names_a_new_sqlite_file(cache: Path, tmp_path: Path,
                                                             good_template: Path) -> None:
    """What the policy lab's own client calls before it opens its store."""
    shutil.copytree(good_template.parent, cache)
    assert not seed_store_of("http://127.0.0.1:5000")
    assert not seed_store_of(f"sqlite:///{tmp_path / 'no-such-folder' / 'mlflow.db'}")
    assert seed_store_of(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert (tmp_path / "mlflow.db").read_bytes() == good_template.read_bytes()
    assert not seed_store_of(f"sqlite:///{tmp_path / 'mlflow.db'}")  # now it exists


def test_an_unfit_template_is_named_and_never_copied(cache: Path, tmp_path: Path,
                                                     good_template: Path) -> None:
    head = _schema_head()
    assert _template_problem(good_template, head) is None
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all, " * 100)
    assert "unreadable" in _template_problem(garbage, head)
    older = tmp_path / "older.db"
    shutil.copyfile(good_template, older)
    with sqlite3.connect(older) as con:
        con.execute("UPDATE alembic_version SET version_num = '0a8213491aaa'")
    assert "0a8213491aaa" in _template_problem(older, head)
    # MLflow's own check, too, refuses a store of another revision by name
    shutil.copyfile(older, tmp_path / "copied.db")
    uri = f"sqlite:///{tmp_path / 'copied.db'}"
    with pytest.raises(MlflowException, match="out-of-date database schema"):
        MlflowClient(tracking_uri=uri).search_experiments()
    used = tmp_path / "used" / "mlflow.db"
    used.parent.mkdir()
    shutil.copyfile(good_template, used)
    with mlflow_state_restored():
        configure(f"sqlite:///{used}", experiment_name="somebody's runs")
    assert _template_problem(used, head) == "table experiments is not empty"

    # a used store in the template's place (the unfit file MLflow would open without a
    # word): the new store is still an empty, current one, and the template is rebuilt
    template = cache / good_template.name
    cache.mkdir(parents=True)
    shutil.copyfile(used, template)
    db = tmp_path / "new" / "mlflow.db"
    configure(f"sqlite:///{db}")
    assert _schema(db)[1] == [head]
    assert [e[1] for e in _experiments(f"sqlite:///{db}", db.parent)] == ["Default", "village-credit"]
    assert _template_problem(template, head) is None  # rebuilt by MLflow
    assert not list(cache.glob(".*.tmp"))


def test_an_unusable_cache_leaves_the_migration_to_mlflow(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder))
    assert empty_store_template() is None
    db = tmp_path / "store" / "mlflow.db"
    with mlflow_state_restored():
        configure(f"sqlite:///{db}")
    assert _schema(db)[1] == [_schema_head()]


def test_without_mlflows_schema_helper_mlflow_migrates_the_store(cache: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The schema head comes from a private MLflow helper: if a later MLflow moves it, no
    template is used and the new store is still MLflow's own, migrated by MLflow."""
    import village_credit.registry.store as store_module

    def moved() -> str:
        from mlflow.store.db.utils import _a_helper_mlflow_no_longer_has  # type: ignore[attr-defined]
        return str(_a_helper_mlflow_no_longer_has())

    monkeypatch.setattr(store_module, "_schema_head", moved)
    assert empty_store_template() is None
    assert not seed_new_store(tmp_path / "new.db") and not (tmp_path / "new.db").exists()
    db = tmp_path / "store" / "mlflow.db"
    configure(f"sqlite:///{db}")
    assert not cache.exists()  # nothing was built
    monkeypatch.undo()
    assert _schema(db)[1] == [_schema_head()]


def _make_stores(barrier: multiprocessing.synchronize.Barrier, own: str, shared: str) -> None:
    barrier.wait()
    configure(f"sqlite:///{shared}")
    configure(f"sqlite:///{own}")


def test_two_processes_create_the_template_and_stores_at_once(cache: Path, tmp_path: Path) -> None:
    """Two forked processes, an empty cache: both build the template, both configure the
    same new store and one store each; every store is whole, nothing temporary is left."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    shared = tmp_path / "shared" / "mlflow.db"
    procs = [ctx.Process(target=_make_stores, args=(barrier, str(tmp_path / f"own{i}" / "mlflow.db"),
                                                     str(shared)))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)  # a guard against a hang, not a speed limit
    assert [p.exitcode for p in procs] == [0, 0]
    head = _schema_head()
    assert [t.name for t in cache.iterdir()] == [f"mlflow-{mlflow.__version__}-{head}.db"]
    assert _template_problem(next(cache.iterdir()), head) is None
    for db in (shared, tmp_path / "own0" / "mlflow.db", tmp_path / "own1" / "mlflow.db"):
        assert _schema(db)[1] == [head]
        assert [e[1] for e in _experiments(f"sqlite:///{db}", db.parent)] == ["Default", "village-credit"]
        assert not list(db.parent.glob(".*.tmp"))
