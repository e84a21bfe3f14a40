from pathlib import Path

import pytest

from kantoku.services._core.assets import AssetStore, sha256_bytes
from kantoku.services._core.errors import Category, KantokuError
from kantoku.v1 import common_pb2


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = AssetStore(tmp_path)
    ref = store.put_bytes(b"hello", "text/plain")
    again = store.put_bytes(b"hello", "text/plain")
    assert ref == again
    assert ref.sha256 == sha256_bytes(b"hello")
    assert ref.uri == f"asset://sha256/{ref.sha256}"
    assert store.resolve(ref.uri).read_bytes() == b"hello"
    assert ref.size_bytes == 5


@pytest.mark.parametrize("uri", [
    "/etc/passwd",
    "file:///etc/passwd",
    "asset://sha256/../../etc/passwd",
    "asset://sha256/" + "A" * 64,
])
def test_uris_outside_the_store_are_refused(tmp_path: Path, uri: str) -> None:
    with pytest.raises(KantokuError) as info:
        AssetStore(tmp_path).resolve(uri)
    assert info.value.category == Category.INVALID_REQUEST


def test_missing_asset_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(KantokuError) as info:
        AssetStore(tmp_path).resolve("asset://sha256/" + "0" * 64)
    assert info.value.category == Category.NOT_FOUND


def test_symlink_out_of_the_store_is_refused(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "store")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    digest = "ab" * 32
    (store.root / digest[:2]).mkdir(parents=True)
    (store.root / digest[:2] / digest).symlink_to(secret)
    with pytest.raises(KantokuError, match="outside the store"):
        store.resolve("asset://sha256/" + digest)


def test_tampered_blob_fails_its_hash(tmp_path: Path) -> None:
    store = AssetStore(tmp_path)
    ref = store.put_bytes(b"original", "text/plain")
    store.resolve(ref.uri).write_bytes(b"tampered")
    with pytest.raises(KantokuError, match="sha256"):
        store.read_bytes(common_pb2.AssetRef(uri=ref.uri, sha256=ref.sha256))
