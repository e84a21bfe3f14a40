"""C2PA signing: local chain, manifests on PNG/WAV/MP4, ingredients, source types, tampering."""

from __future__ import annotations

import hashlib
import json
import stat
import struct
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import c2pa
import numpy as np
import pytest
import soundfile
from PIL import Image

from kantoku.planner.rights import c2pa_sign
from kantoku.planner.rights.c2pa_sign import (
    ALGORITHMIC_MEDIA,
    CERT_ENV,
    COMPOSITE_SYNTHETIC,
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    KEY_ENV,
    NO_MANIFEST,
    PROVENANCE_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    Ingredient,
    SigningCredentials,
    made_by_trained_model,
    read_manifest,
    sign_file,
    signing_credentials,
    verify_file,
)
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.registry import ModelRegistry
from kantoku.services._core.settings import CoreSettings

PROVENANCE = {"model_id": "black-forest-labs/FLUX.1-schnell", "weights_sha256": "ab" * 32,
              "license": "apache-2.0", "seed": 1234, "parameters": {"steps": 4}}


# --- tiny real media -----------------------------------------------------------------------


def make_png(path: Path) -> Path:
    Image.new("RGB", (16, 16), (200, 30, 30)).save(path)
    return path


def make_wav(path: Path) -> Path:
    tone = (np.sin(np.arange(1600) / 5.0) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(tone.tobytes())
    return path


def make_mp4(path: Path, frames: int = 6) -> Path:
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(frames):
            pixels = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


MAKERS: dict[str, Callable[[Path], Path]] = {".png": make_png, ".wav": make_wav, ".mp4": make_mp4}


# suffix: (first chunk offset, struct of a chunk header, payload chunk, header+trailer bytes)
CHUNKS = {".png": (8, ">I4s", b"IDAT", 12), ".wav": (12, "<4sI", b"data", 8),
          ".mp4": (0, ">I4s", b"mdat", 0)}


def payload_offset(data: bytes, suffix: str) -> int:
    """An offset in the middle of the media payload (IDAT / data / mdat), outside the manifest."""
    pos, layout, want, overhead = CHUNKS[suffix]
    while True:
        first, second = struct.unpack(layout, data[pos:pos + 8])
        kind, size = (second, first) if isinstance(second, bytes) else (first, second)
        if kind == want:
            return pos + 8 + size // 2 if suffix != ".mp4" else pos + size // 2
        pos += size + overhead + (size % 2 if suffix == ".wav" else 0)


def flip_payload_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[payload_offset(bytes(data), path.suffix)] ^= 0xFF
    path.write_bytes(bytes(data))


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_production_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CERT_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigningCredentials]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(CERT_ENV, raising=False)
        mp.delenv(KEY_ENV, raising=False)
        yield signing_credentials(tmp_path_factory.mktemp("home"))


def signed(tmp_path: Path, creds: SigningCredentials, suffix: str, name: str = "shot",
           **kwargs: Any) -> Path:
    src = MAKERS[suffix](tmp_path / f"{name}.raw{suffix}")
    dst = tmp_path / f"{name}{suffix}"
    kwargs.setdefault("title", f"{name}{suffix}")
    kwargs.setdefault("generated", True)
    sign_file(src, dst, credentials=creds, **kwargs)
    return dst


def actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    found = [a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
    assert len(found) == 1
    result: list[dict[str, Any]] = found[0]["data"]["actions"]
    return result


def c2pa_manifest(path: Path) -> dict[str, Any]:
    """The active manifest as c2pa-python's own Reader reads it (no kantoku helper), network off.

    Raises:
        c2pa.C2paError.ManifestNotFound: The file carries no manifest.
    """
    settings = {"verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}
    with c2pa.Context.from_dict(settings) as context, path.open("rb") as stream, \
            c2pa.Reader(c2pa_sign.media_type(path), stream, None, context) as reader:
        store = json.loads(reader.json())
    manifest: dict[str, Any] = store["manifests"][store["active_manifest"]]
    return manifest


def source_type(path: Path) -> str:
    """The digitalSourceType of a file's c2pa.created action, read with c2pa's Reader."""
    created = [a for a in actions(c2pa_manifest(path)) if a["action"] == "c2pa.created"]
    assert len(created) == 1
    return str(created[0]["digitalSourceType"])


def remux(src: Path, dst: Path) -> Path:
    """Stream-copy every packet into a new MP4, as an upload's remux does (no re-encoding)."""
    with av.open(str(src)) as source, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams
                   if s.type in ("video", "audio")}
        for packet in source.demux():
            if packet.dts is not None and packet.stream.index in streams:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dst


def reencode(src: Path, dst: Path, frames: int = 4) -> Path:
    """The first `frames` frames decoded and encoded again into a new MP4."""
    with av.open(str(src)) as source, av.open(str(dst), "w") as out:
        video = source.streams.video[0]
        stream = out.add_stream("h264", rate=24)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        for index, frame in enumerate(source.decode(video=0)):
            if index == frames:
                break
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode())
    return dst


# --- signing and reading back --------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".wav", ".mp4"])
def test_signed_file_round_trips(tmp_path: Path, creds: SigningCredentials, suffix: str) -> None:
    dst = signed(tmp_path, creds, suffix, title="Shot 3: harbour at dawn", assertions=PROVENANCE)

    manifest = read_manifest(dst, creds.anchor_pem)
    assert manifest["title"] == "Shot 3: harbour at dawn"
    assert manifest["claim_generator_info"][0]["name"] == "kantoku"
    created = actions(manifest)[0]
    assert created == {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA}
    custom = [a["data"] for a in manifest["assertions"] if a["label"] == PROVENANCE_LABEL]
    assert custom == [PROVENANCE]
    assert verify_file(dst, creds.anchor_pem) == []


def test_composite_lists_signed_ingredients(tmp_path: Path, creds: SigningCredentials) -> None:
    shot = signed(tmp_path, creds, ".mp4", name="shot1")
    voice = signed(tmp_path, creds, ".wav", name="voice1")
    src = make_mp4(tmp_path / "edit.raw.mp4", frames=8)
    final = tmp_path / "final.mp4"

    sign_file(src, final, title="final cut", generated=False, ingredients=[shot, voice],
              credentials=creds)

    manifest = read_manifest(final, creds.anchor_pem)
    ingredients = manifest["ingredients"]
    assert [i["title"] for i in ingredients] == ["shot1.mp4", "voice1.wav"]
    assert {i["relationship"] for i in ingredients} == {"componentOf"}
    assert [i["active_manifest"] for i in ingredients] == [
        read_manifest(shot)["label"], read_manifest(voice)["label"]]
    steps = actions(manifest)
    assert steps[0]["digitalSourceType"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert [s["action"] for s in steps[1:]] == ["c2pa.placed", "c2pa.placed"]
    assert verify_file(final, creds.anchor_pem) == []


def test_a_keyframe_is_an_input_to_its_clip(tmp_path: Path, creds: SigningCredentials) -> None:
    keyframe = signed(tmp_path, creds, ".png", name="s001")
    clip = signed(tmp_path, creds, ".mp4", name="s001",
                  ingredients=[Ingredient(keyframe, relationship="inputTo")])

    manifest = c2pa_manifest(clip)
    [ingredient] = manifest["ingredients"]
    assert (ingredient["title"], ingredient["relationship"]) == ("s001.png", "inputTo")
    assert ingredient["active_manifest"] == c2pa_manifest(keyframe)["label"]
    created = actions(manifest)[0]
    assert created["action"] == "c2pa.created"
    assert [ref["url"] for ref in created["parameters"]["ingredients"]] == [
        f"self#jumbf=c2pa.assertions/{ingredient['label']}"]
    assert verify_file(clip, creds.anchor_pem) == []


def test_procedural_files_and_their_edit_name_no_trained_model(tmp_path: Path,
                                                              creds: SigningCredentials) -> None:
    keyframe = signed(tmp_path, creds, ".png", name="s001", trained=False)
    clip = signed(tmp_path, creds, ".mp4", name="s001", trained=False,
                  ingredients=[Ingredient(keyframe, relationship="inputTo")])
    final = tmp_path / "final.mp4"

    sign_file(make_mp4(tmp_path / "edit.raw.mp4"), final, title="final cut", generated=False,
              trained=False, ingredients=[clip], credentials=creds)

    assert source_type(keyframe) == ALGORITHMIC_MEDIA
    assert source_type(clip) == ALGORITHMIC_MEDIA
    assert source_type(final) == COMPOSITE_SYNTHETIC
    assert verify_file(final, creds.anchor_pem) == []


def test_one_trained_part_is_enough_to_say_so(tmp_path: Path, creds: SigningCredentials) -> None:
    keyframe = signed(tmp_path, creds, ".png", name="s001", trained=True)
    clip = signed(tmp_path, creds, ".mp4", name="s001", trained=False,
                  ingredients=[Ingredient(keyframe, relationship="inputTo")])
    still = signed(tmp_path, creds, ".mp4", name="s002", trained=False)
    voice = signed(tmp_path, creds, ".wav", name="s002.line1", trained=True)
    final = tmp_path / "final.mp4"

    sign_file(make_mp4(tmp_path / "edit.raw.mp4"), final, title="final cut", generated=False,
              trained=False, ingredients=[still, voice], credentials=creds)

    assert source_type(clip) == TRAINED_ALGORITHMIC_MEDIA  # animated from a model's picture
    assert source_type(voice) == TRAINED_ALGORITHMIC_MEDIA
    assert source_type(final) == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA


@pytest.mark.parametrize(("suffix", "fmt"), [(".wav", "audio/wav"), (".ogg", "audio/ogg")])
def test_an_unsigned_song_is_listed_by_its_title_and_left_untouched(
        tmp_path: Path, creds: SigningCredentials, suffix: str, fmt: str) -> None:
    song = tmp_path / f"song{suffix}"
    soundfile.write(song, (np.sin(np.arange(16000) / 5.0) * 0.3).astype("float32"), 16000)
    before = hashlib.sha256(song.read_bytes()).hexdigest()
    final = tmp_path / "final.mp4"

    sign_file(make_mp4(tmp_path / "edit.raw.mp4"), final, title="final cut", generated=False,
              trained=False, ingredients=[Ingredient(song, title="光の中へ")], credentials=creds)

    [ingredient] = c2pa_manifest(final)["ingredients"]
    assert (ingredient["title"], ingredient["relationship"]) == ("光の中へ", "componentOf")
    assert ingredient["format"] == fmt and "active_manifest" not in ingredient
    assert hashlib.sha256(song.read_bytes()).hexdigest() == before
    assert verify_file(final, creds.anchor_pem) == []


USER_MODELS = """
models:
  - {id: my-dit, kind: image, version: "1", family: FluxPipeline, source: local,
     license: apache-2.0, commercial_use: true, rights_holder: Lab, training_data: web images}
  - {id: my-lora, kind: adapter, version: "1", family: lora, source: local,
     license: CC-BY-4.0, commercial_use: true, rights_holder: Me, training_data: my drawings}
  - {id: my-rules, kind: motion, version: "1", family: rules, source: local,
     license: MIT, commercial_use: true, rights_holder: Me, training_data: none,
     learned_weights: false}
"""


def provenance(model_id: str, *adapters: str) -> dict[str, Any]:
    """A step's ProvenanceRecord as the ledger holds it (the proto's field names)."""
    return {"step_id": "f" * 32, "kind": "image", "model": {"model_id": model_id, "version": "1"},
            "adapters": [{"adapter": {"model_id": a}, "weight": 0.8} for a in adapters],
            "seed": 7}


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    home = tmp_path / "registry-home"
    home.mkdir()
    (home / "models.yaml").write_text(USER_MODELS)
    return ModelRegistry(CoreSettings(home=home))


@pytest.mark.parametrize(("record", "expected"), [
    (provenance("my-dit"), TRAINED_ALGORITHMIC_MEDIA),
    (provenance("jm_kumo"), TRAINED_ALGORITHMIC_MEDIA),  # a neural voice
    (provenance("previz-v1"), ALGORITHMIC_MEDIA),
    (provenance("my-rules"), ALGORITHMIC_MEDIA),
    (provenance("previz-v1", "my-lora"), TRAINED_ALGORITHMIC_MEDIA),
    (provenance("not-registered"), TRAINED_ALGORITHMIC_MEDIA),  # unknown: never claim none
    (None, TRAINED_ALGORITHMIC_MEDIA),
])
def test_the_registry_decides_whether_a_trained_model_made_a_file(
        tmp_path: Path, creds: SigningCredentials, registry: ModelRegistry,
        record: dict[str, Any] | None, expected: str) -> None:
    picture = signed(tmp_path, creds, ".png", trained=made_by_trained_model(record, registry),
                     assertions=record)

    assert source_type(picture) == expected


@pytest.mark.parametrize("copy", [remux, reencode])
def test_a_remuxed_or_reencoded_copy_says_it_has_no_manifest(
        tmp_path: Path, creds: SigningCredentials, copy: Callable[[Path, Path], Path]) -> None:
    video = signed(tmp_path, creds, ".mp4", name="video")
    uploaded = copy(video, tmp_path / "uploaded.mp4")

    with pytest.raises(c2pa.C2paError.ManifestNotFound):
        c2pa_manifest(uploaded)
    [problem] = verify_file(uploaded, creds.anchor_pem)
    assert problem.startswith("uploaded.mp4: no C2PA manifest")
    assert "Re-encoding or even remuxing" in problem and "signed original" in problem


@pytest.mark.parametrize("suffix", [".png", ".wav", ".mp4"])
def test_altered_bytes_are_reported(tmp_path: Path, creds: SigningCredentials,
                                    suffix: str) -> None:
    dst = signed(tmp_path, creds, suffix, name="video")
    flip_payload_byte(dst)

    problems = verify_file(dst, creds.anchor_pem)

    assert problems and all(p.startswith(f"video{suffix}: ") for p in problems)
    assert any("content changed after signing" in p and "Hash.mismatch" in p for p in problems)


def test_altered_ingredient_is_refused(tmp_path: Path, creds: SigningCredentials) -> None:
    shot = signed(tmp_path, creds, ".mp4", name="shot1")
    flip_payload_byte(shot)

    with pytest.raises(KantokuError, match="shot1.mp4") as err:
        sign_file(make_mp4(tmp_path / "edit.mp4"), tmp_path / "final.mp4", title="final",
                  generated=False, ingredients=[shot], credentials=creds)
    assert err.value.reason == "C2PA_INGREDIENT_INVALID"
    assert not (tmp_path / "final.mp4").exists()


def test_untrusted_and_unsigned_files_are_problems(tmp_path: Path,
                                                   creds: SigningCredentials) -> None:
    dst = signed(tmp_path, creds, ".png")
    other = signing_credentials(tmp_path / "other-home")

    untrusted = [f"{dst.name}: signed by CN=kantoku signer, O=kantoku, not a CA you trust: "
                 "pass --trust CHAIN.pem (the signer's CA)"]
    assert verify_file(dst, None) == untrusted
    assert verify_file(dst, other.anchor_pem) == untrusted
    assert verify_file(make_png(tmp_path / "plain.png"), creds.anchor_pem) == [
        f"plain.png: {NO_MANIFEST}"]


def test_bad_arguments_name_the_file(tmp_path: Path, creds: SigningCredentials) -> None:
    src = make_png(tmp_path / "a.png")
    with pytest.raises(KantokuError, match="a.png") as same:
        sign_file(src, tmp_path / "a.png", title="a", generated=True, credentials=creds)
    assert same.value.category is Category.INVALID_REQUEST
    notes = tmp_path / "notes.txt"
    notes.write_text("hi")
    with pytest.raises(KantokuError, match=r"notes\.txt: cannot sign '\.txt'"):
        sign_file(notes, tmp_path / "out.txt", title="x", generated=True, credentials=creds)
    with pytest.raises(KantokuError, match="plain.png: no C2PA manifest"):
        read_manifest(make_png(tmp_path / "plain.png"))


# --- credentials ---------------------------------------------------------------------------


def test_local_chain_is_created_once(tmp_path: Path) -> None:
    first = signing_credentials(tmp_path)
    leaf = (tmp_path / "c2pa" / "leaf.pem").read_bytes()

    second = signing_credentials(tmp_path)

    assert (tmp_path / "c2pa" / "leaf.pem").read_bytes() == leaf
    assert second == first and first.alg == "es256"
    assert first.anchor_pem == (tmp_path / "c2pa" / "ca.pem").read_bytes()
    assert stat.S_IMODE((tmp_path / "c2pa" / "leaf.key").stat().st_mode) == 0o600


def test_production_env_credentials(tmp_path: Path, creds: SigningCredentials,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "chain.pem").write_bytes(creds.cert_chain_pem)
    (tmp_path / "key.pem").write_bytes(creds.private_key_pem)
    monkeypatch.setenv(CERT_ENV, str(tmp_path / "chain.pem"))
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "key.pem"))

    assert signing_credentials(tmp_path / "home") == creds
    assert not (tmp_path / "home" / "c2pa").exists()


def test_missing_production_cert_names_the_variable(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    monkeypatch.setenv(CERT_ENV, str(tmp_path / "missing.pem"))
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "key.pem"))

    with pytest.raises(KantokuError, match="KANTOKU_C2PA_CERT=.*missing.pem") as err:
        signing_credentials(tmp_path)
    assert err.value.category is Category.INVALID_REQUEST


def test_module_exports_public_api() -> None:
    assert {"sign_file", "read_manifest", "verify_file", "signing_credentials"} <= set(
        c2pa_sign.__all__)


def test_rejected_credentials_are_a_clear_error(tmp_path: Path, creds: SigningCredentials) -> None:
    self_signed = SigningCredentials(creds.anchor_pem, creds.private_key_pem)

    with pytest.raises(KantokuError, match=r"a\.png: the C2PA signing credentials were rejected"):
        sign_file(make_png(tmp_path / "a.png"), tmp_path / "out" / "a.png", title="a",
                  generated=True, credentials=self_signed)
    assert list((tmp_path / "out").iterdir()) == []
