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


@pytest.mark.parametrize("read", ["read_bytes", "checked_path"])
def test_a_corrupted_blob_is_refused_on_read_and_quarantined(tmp_path: Path, read: str) -> None:
    store = AssetStore(tmp_path)
    ref = store.put_bytes(b"a clip's bytes", "video/mp4")
    blob = store.resolve(ref.uri)
    blob.write_bytes(b"a clip's bytez")  # one flipped byte on the shared volume
    with pytest.raises(KantokuError) as caught:
        if read == "read_bytes":
            store.read_bytes(ref)
        else:
            store.checked_path(ref.uri)
    assert caught.value.reason == "ASSET_CORRUPT" and ref.uri in caught.value.message
    assert not blob.exists()
    assert [p.read_bytes() for p in (tmp_path / "quarantine").iterdir()] == [b"a clip's bytez"]
    # The true bytes put again make the blob whole, and reads pass.
    store.put_bytes(b"a clip's bytes", "video/mp4")
    assert store.checked_path(ref.uri).read_bytes() == store.read_bytes(ref) == b"a clip's bytes"
