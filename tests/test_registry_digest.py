"""The registered version's digest hashed in place equals the digest of a download (what the loader checks).

``version_digest`` hashes a version's files where a local artifact store keeps them, plus
the ``registered_model_meta`` file MLflow writes into every download; the loader hashes
a download. If the two ever disagreed, every model ``train`` promotes would be refused at
scoring (the promotion record's digest would not match), so they are compared here
byte for byte, on real MLflow stores, for two versions of one logged model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from village_credit.registry.examples import ExampleStore
from village_credit.registry.loading import (
    ModelIdentity,
    _download,
    _stored_version_dir,
    artifact_digest,
    version_digest,
)


def _downloaded_digest(client, name: str, version: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        ident = ModelIdentity(uri=f"models:/{name}/{version}", name=name, version=version)
        return artifact_digest(_download(ident, Path(tmp), client))


def test_in_place_digest_equals_the_downloaded_one() -> None:
    store = ExampleStore()
    try:
        c = store.client
        v1 = store.register("digest-demo")
        v2 = store.register("digest-demo")
        assert _stored_version_dir(c, "digest-demo", v1) is not None  # the in-place path is the one tested
        d1, d2 = version_digest("digest-demo", v1, client=c), version_digest("digest-demo", v2, client=c)
        assert d1 == _downloaded_digest(c, "digest-demo", v1)
        assert d2 == _downloaded_digest(c, "digest-demo", v2)
        # the version number is part of what a download holds (registered_model_meta)
        assert d1 != d2
        # hashing in place writes nothing into the store: the stored files are unchanged
        assert not (_stored_version_dir(c, "digest-demo", v1) / "registered_model_meta").exists()
    finally:
        store.close()


def test_a_changed_stored_file_changes_the_in_place_digest() -> None:
    store = ExampleStore()
    try:
        c = store.client
        v = store.register("digest-demo")
        before = version_digest("digest-demo", v, client=c)
        mlmodel = _stored_version_dir(c, "digest-demo", v) / "MLmodel"
        mlmodel.write_text(mlmodel.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        after = version_digest("digest-demo", v, client=c)
        assert after != before and after == _downloaded_digest(c, "digest-demo", v)
    finally:
        store.close()


def test_extra_files_join_the_sorted_order() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "a").write_bytes(b"1")
        (root / "c").write_bytes(b"3")
        on_disk = artifact_digest(root)
        (root / "b").write_bytes(b"2")
        full = artifact_digest(root)
        (root / "b").unlink()
        assert artifact_digest(root, extra={"b": b"2"}) == full != on_disk
        (root / ".artifact.uploading.x").write_bytes(b"partial")
        assert artifact_digest(root, skip_prefix=".artifact.uploading.") == on_disk
