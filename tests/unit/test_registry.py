from pathlib import Path

import pytest

from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.registry import ModelRegistry, WeightsHasher
from kantoku.services._core.settings import CoreSettings


def test_shipped_registry_lists_voices_with_rights(tmp_path: Path) -> None:
    registry = ModelRegistry(CoreSettings(home=tmp_path))
    ids = {e.id for e in registry.list("tts")}
    assert {"en_US-joe-medium", "jf_alpha", "jm_kumo"} <= ids
    joe = registry.get("en_US-joe-medium")
    card = joe.to_card()
    assert card.rights.license == "CC0-1.0"
    assert card.rights.rights_holder
    assert all(len(w.sha256) == 64 for w in card.weights)


def test_unknown_model_lists_known_ids(tmp_path: Path) -> None:
    with pytest.raises(KantokuError) as info:
        ModelRegistry(CoreSettings(home=tmp_path)).get("nope", kind="tts")
    assert info.value.category == Category.NOT_FOUND
    assert "jf_alpha" in info.value.message


def test_user_additions_are_loaded(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text("""
models:
  - id: my-voice
    kind: tts
    version: "1"
    family: piper
    source: local
    license: CC-BY-4.0
    commercial_use: true
    rights_holder: Me
    training_data: my own recordings, with consent
""")
    registry = ModelRegistry(CoreSettings(home=tmp_path))
    assert registry.get("my-voice").rights_holder == "Me"


def test_bad_user_file_names_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text("models:\n  - id: x\n    kind: tts\n")
    with pytest.raises(KantokuError) as info:
        ModelRegistry(CoreSettings(home=tmp_path))
    assert "models.yaml" in info.value.message
    assert "models.0" in info.value.message


def test_weights_mismatch_is_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(CoreSettings(home=tmp_path))
    entry = registry.get("en_US-joe-medium")
    fake = tmp_path / "en_US-joe-medium.onnx"
    fake.write_bytes(b"not the voice")
    with pytest.raises(KantokuError, match="reinstall"):
        WeightsHasher(CoreSettings(home=tmp_path)).verify(entry, {"en_US-joe-medium.onnx": fake})


def test_weights_hash_is_cached_by_path_size_mtime(tmp_path: Path) -> None:
    hasher = WeightsHasher(CoreSettings(home=tmp_path))
    blob = tmp_path / "w.bin"
    blob.write_bytes(b"abc")
    first = hasher.sha256(blob)
    assert hasher.cache_file.exists()
    blob.write_bytes(b"abcd")  # size changes: the cache key changes
    assert hasher.sha256(blob) != first


def test_only_the_procedural_shipped_models_lack_learned_weights(tmp_path: Path) -> None:
    registry = ModelRegistry(CoreSettings(home=tmp_path))
    procedural = {e.id for e in registry.list() if not e.learned_weights}
    assert procedural == {"previz-v1", "animatic-v1", "kantoku-visemes-v1"}
    assert registry.get("jf_alpha").learned_weights  # Kokoro-82M, a neural voice


def test_the_embedded_llm_entry_matches_the_installed_gguf(tmp_path: Path) -> None:
    from kantoku.services.llm.catalog import EMBEDDED_GGUF, EMBEDDED_LLM, embedded_model_path

    path = embedded_model_path()
    entry = ModelRegistry(CoreSettings(home=tmp_path)).get(EMBEDDED_LLM, kind="llm")
    assert [w.path for w in entry.weights] == [EMBEDDED_GGUF]
    assert entry.weights[0].size_bytes == path.stat().st_size
    checked = WeightsHasher(CoreSettings(home=tmp_path)).verify(entry, {EMBEDDED_GGUF: path})
    assert checked[0].sha256 == entry.weights[0].sha256
    assert entry.license == "Apache-2.0" and entry.learned_weights
    assert not entry.training_data_opt_in  # web crawls
