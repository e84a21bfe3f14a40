"""The GPU backends' real code on CPU: tiny random-weight pipelines built from configs, saved
with save_pretrained, registered like a user would, and run through the gRPC services."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_asyncio

from kantoku.services._core.assets import sha256_file
from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.registry import ModelRegistry, WeightsHasher, add_user_model
from kantoku.services._core.server import ServiceBinding, start_server
from kantoku.services.image.client import generate_image
from kantoku.services.video.client import generate_video
from kantoku.v1 import common_pb2, image_pb2, image_pb2_grpc, video_pb2, video_pb2_grpc
from tests import tiny_models
from tests.conftest import blob_count

IMAGE_MODELS = {"tiny-flux": tiny_models.build_flux, "tiny-sd3": tiny_models.build_sd3,
                "tiny-sana": tiny_models.build_sana}
#: IP-Adapters, and image models (the same pipeline directories) that name one.
IP_ADAPTERS = {"tiny-flux-ipa": tiny_models.build_flux_ip_adapter,
               "tiny-sd3-ipa": tiny_models.build_sd3_ip_adapter}
WITH_IP_ADAPTER = {"tiny-flux-ip": ("tiny-flux", "tiny-flux-ipa"),
                   "tiny-sd3-ip": ("tiny-sd3", "tiny-sd3-ipa")}
VIDEO_MODELS = {"tiny-wan": tiny_models.build_wan, "tiny-wan-i2v": tiny_models.build_wan_i2v,
                "tiny-ltx": tiny_models.build_ltx, "tiny-cogvideox": tiny_models.build_cogvideox}


@pytest.fixture(scope="module")
def registered(tmp_path_factory, home) -> dict[str, Path]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("tiny-models")
    paths = {}
    for model_id, build in {**IMAGE_MODELS, **VIDEO_MODELS}.items():
        path = Path(build(root / model_id))
        kind = "image" if model_id in IMAGE_MODELS else "video"
        add_user_model(model_id, path, kind, "Apache-2.0", True, "kantoku tests",
                       "random weights")
        paths[model_id] = path
    for model_id, build in IP_ADAPTERS.items():
        paths[model_id] = Path(build(root / model_id))
        add_user_model(model_id, paths[model_id], "ip_adapter", "CC-BY-4.0", True,
                       "Adapter Owner", "random weights")
    for model_id, (base, ip_adapter) in WITH_IP_ADAPTER.items():
        add_user_model(model_id, paths[base], "image", "Apache-2.0", True, "kantoku tests",
                       "random weights", ip_adapter=ip_adapter)
        paths[model_id] = paths[base]
    return paths


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gpu_client(registered, store):  # noqa: ANN001, ANN201
    from kantoku.services.image.backends.diffusers_dit import DiffusersImageBackend
    from kantoku.services.image.servicer import ImageServicer
    from kantoku.services.video.backends.diffusers_video import DiffusersVideoBackend
    from kantoku.services.video.servicer import VideoServicer

    registry, hasher = ModelRegistry(), WeightsHasher()
    images = {m: DiffusersImageBackend(registry.get(m), hasher) for m in IMAGE_MODELS}
    for model_id, (_, ip_adapter) in WITH_IP_ADAPTER.items():
        images[model_id] = DiffusersImageBackend(registry.get(model_id), hasher,
                                                 ip_adapter=registry.get(ip_adapter))
    videos = {m: DiffusersVideoBackend(registry.get(m), hasher) for m in VIDEO_MODELS}
    running = await start_server([
        ServiceBinding(ImageServicer(images, store, registry, "tiny-flux"),
                       image_pb2_grpc.add_ImageServiceServicer_to_server,
                       "kantoku.v1.ImageService"),
        ServiceBinding(VideoServicer(videos, store, "tiny-wan"),
                       video_pb2_grpc.add_VideoServiceServicer_to_server,
                       "kantoku.v1.VideoService"),
    ], port=0)
    async with ServiceClient(running.address, attempts=1) as client:
        yield client
    await running.stop()


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize(("model_id", "size"), [("tiny-flux", 64), ("tiny-sd3", 64),
                                                 ("tiny-sana", 64)])
async def test_image_models_generate_with_provenance(gpu_client, registered, store, model_id,  # noqa: ANN001
                                                     size) -> None:
    request = image_pb2.GenerateImageRequest(prompt="a red cat", width_px=size, height_px=size,
                                             seed=5, steps=2, model_id=model_id)
    events = [e async for e in gpu_client.generate_image(request)]
    steps = [e.progress for e in events if e.HasField("progress")]
    assert [(p.stage, p.step) for p in steps] == [("denoising", 1), ("denoising", 2)]
    result = events[-1].result
    record = result.provenance
    on_disk = {str(p.relative_to(registered[model_id])): sha256_file(p)
               for p in registered[model_id].rglob("*.safetensors")}
    assert {w.path: w.sha256 for w in record.model.weights} == on_disk
    assert record.model.rights.rights_holder == "kantoku tests"
    assert record.parameters["steps"] == 2
    again = await generate_image(gpu_client, request)
    assert again.image.sha256 == result.image.sha256  # seeded generator


@pytest.mark.parametrize(("model_id", "width", "rule"), [("tiny-flux", 72, "multiple of 16"),
                                                         ("tiny-sd3", 72, "multiple of 16"),
                                                         ("tiny-sana", 80, "multiple of 32")])
async def test_sizes_are_refused_not_rounded(gpu_client, store, model_id, width, rule) -> None:  # noqa: ANN001
    with pytest.raises(KantokuError) as info:
        await generate_image(gpu_client, image_pb2.GenerateImageRequest(
            prompt="x", width_px=width, height_px=64, steps=2, model_id=model_id))
    assert info.value.reason == "SIZE_NOT_MULTIPLE" and rule in info.value.message


@pytest.mark.parametrize(("model_id", "size"), [("tiny-wan", 32), ("tiny-ltx", 64),
                                                 ("tiny-cogvideox", 32)])
async def test_text_to_video_models(gpu_client, model_id, size) -> None:  # noqa: ANN001
    result = await generate_video(gpu_client, video_pb2.GenerateVideoRequest(
        prompt="a cat dancing", width_px=size, height_px=size, duration_s=1.0, fps=9, steps=2,
        model_id=model_id))
    assert result.frame_count == 9
    assert result.provenance.model.model_id == model_id


async def test_image_to_video_with_a_previz_keyframe(gpu_client, store) -> None:  # noqa: ANN001
    from kantoku.services._core.registry import ModelRegistry as Registry
    from kantoku.services.image.backend import ImageJob
    from kantoku.services.image.backends.previz import PrevizBackend

    still = PrevizBackend(Registry()).generate(ImageJob("a cat", 32, 32, 1), lambda *a: None)
    keyframe = store.put_bytes(still.png, "image/png")
    result = await generate_video(gpu_client, video_pb2.GenerateVideoRequest(
        keyframe=keyframe, prompt="the cat dances", duration_s=1.0, fps=9, steps=2,
        model_id="tiny-wan-i2v"))
    assert result.frame_count == 9
    assert keyframe.sha256 in {i.sha256 for i in result.provenance.inputs}


@pytest.mark.parametrize(("model_id", "fps", "rule"), [("tiny-wan", 10, "4k+1"),
                                                        ("tiny-ltx", 12, "8k+1"),
                                                        ("tiny-cogvideox", 13, "8k+1")])
async def test_frame_counts_are_refused_not_rounded(gpu_client, store, model_id, fps,  # noqa: ANN001
                                                    rule) -> None:
    size = 64 if model_id == "tiny-ltx" else 32
    with pytest.raises(KantokuError) as info:
        await generate_video(gpu_client, video_pb2.GenerateVideoRequest(
            prompt="x", width_px=size, height_px=size, duration_s=1.0, fps=fps, steps=2,
            model_id=model_id))
    assert info.value.reason == "FRAME_COUNT_UNSUPPORTED"
    assert rule in info.value.message and "duration_s" in info.value.message


async def test_i2v_model_needs_a_keyframe(gpu_client) -> None:  # noqa: ANN001
    with pytest.raises(KantokuError) as info:
        await generate_video(gpu_client, video_pb2.GenerateVideoRequest(
            prompt="x", width_px=32, height_px=32, duration_s=1.0, fps=9, model_id="tiny-wan-i2v"))
    assert info.value.reason == "KEYFRAME_REQUIRED"


def test_pickle_checkpoints_are_refused(registered, tmp_path: Path) -> None:  # noqa: ANN001
    pickled = tmp_path / "pickled"
    shutil.copytree(registered["tiny-sana"], pickled)
    (pickled / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(KantokuError) as info:
        add_user_model("pickled", pickled, "image", "MIT", True, "x")
    assert info.value.category == Category.INVALID_REQUEST
    assert info.value.reason == "PICKLE_REFUSED" and ".safetensors" in info.value.message


def test_changed_weights_are_refused_at_load(registered, tmp_path: Path) -> None:  # noqa: ANN001
    from kantoku.services.image.backends.diffusers_dit import DiffusersImageBackend

    copy = tmp_path / "changed"
    shutil.copytree(registered["tiny-sd3"], copy)
    entry = add_user_model("tiny-sd3-copy", copy, "image", "MIT", True, "x")
    weights = next(copy.rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b" ")
    with pytest.raises(KantokuError) as info:
        DiffusersImageBackend(ModelRegistry().get(entry.id), WeightsHasher())
    assert info.value.reason == "WEIGHTS_MISMATCH"


def _linked_transformer(source: Path, tmp_path: Path) -> Path:
    """A copy of the pipeline at `source` whose transformer/ folder is a symlink elsewhere."""
    copy, elsewhere = tmp_path / "linked", tmp_path / "shared-cache" / "transformer"
    shutil.copytree(source, copy)
    elsewhere.parent.mkdir()
    shutil.move(copy / "transformer", elsewhere)
    (copy / "transformer").symlink_to(elsewhere, target_is_directory=True)
    return elsewhere


def test_weights_behind_a_symlinked_folder_are_hashed_and_checked(  # noqa: ANN001
        registered, tmp_path: Path) -> None:
    from kantoku.services.image.backends.diffusers_dit import DiffusersImageBackend

    target = _linked_transformer(registered["tiny-sd3"], tmp_path)
    entry = add_user_model("tiny-sd3-linked", tmp_path / "linked", "image", "MIT", True, "x")
    assert any(w.path.startswith("transformer/") for w in entry.weights)
    weights = next(target.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b" ")  # the weights swapped behind the link
    with pytest.raises(KantokuError) as info:
        DiffusersImageBackend(ModelRegistry().get(entry.id), WeightsHasher())
    assert info.value.reason == "WEIGHTS_MISMATCH" and "transformer/" in info.value.message


def test_pickles_behind_a_symlinked_folder_are_refused(registered, tmp_path: Path) -> None:  # noqa: ANN001
    target = _linked_transformer(registered["tiny-sana"], tmp_path)
    (target / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(KantokuError) as info:
        add_user_model("tiny-sana-linked", tmp_path / "linked", "image", "MIT", True, "x")
    assert info.value.reason == "PICKLE_REFUSED"
    assert "transformer/diffusion_pytorch_model.bin" in info.value.message


async def test_lora_adapter_changes_the_image_and_is_recorded(gpu_client, registered,  # noqa: ANN001
                                                              tmp_path_factory) -> None:
    from diffusers import FluxPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipeline = FluxPipeline.from_pretrained(registered["tiny-flux"], local_files_only=True)
    pipeline.transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                                target_modules=["to_q", "to_k", "to_v"]))
    folder = tmp_path_factory.mktemp("lora")
    FluxPipeline.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(
        pipeline.transformer))
    add_user_model("tiny-flux-style", folder / "pytorch_lora_weights.safetensors", "adapter",
                   "CC-BY-4.0", True, "Style Owner")
    base = image_pb2.GenerateImageRequest(prompt="a red cat", width_px=64, height_px=64, seed=5,
                                          steps=2, model_id="tiny-flux")
    styled = image_pb2.GenerateImageRequest()
    styled.CopyFrom(base)
    styled.adapters.add(adapter_id="tiny-flux-style", weight=1.0)
    plain = await generate_image(gpu_client, base)
    with_lora = await generate_image(gpu_client, styled)
    assert with_lora.image.sha256 != plain.image.sha256
    adapters = with_lora.provenance.adapters
    assert [a.adapter.model_id for a in adapters] == ["tiny-flux-style"]
    assert adapters[0].adapter.rights.rights_holder == "Style Owner"
    assert (await generate_image(gpu_client, base)).image.sha256 == plain.image.sha256  # unloaded


def _reference(store, colour: tuple[int, int, int], holder: str = "Ref Owner"  # noqa: ANN001
               ) -> image_pb2.ReferenceImage:
    import io

    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (48, 40), colour)
    ImageDraw.Draw(picture).ellipse((8, 6, 36, 34), fill=(255 - colour[0], 40, colour[2] // 2))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    image = store.put_bytes(buffer.getvalue(), "image/png")
    image.rights.CopyFrom(common_pb2.RightsInfo(rights_holder=holder, license="CC-BY-4.0",
                                                commercial_use=True))
    return image_pb2.ReferenceImage(image=image, character_name="Aoi", weight=0.8)


@pytest.mark.parametrize("model_id", ["tiny-flux-ip", "tiny-sd3-ip"])
async def test_reference_image_steers_the_picture_through_the_ip_adapter(  # noqa: ANN001
        gpu_client, registered, store, model_id) -> None:
    base_model, ip_adapter = WITH_IP_ADAPTER[model_id]
    plain = image_pb2.GenerateImageRequest(prompt="a red cat", width_px=64, height_px=64, seed=5,
                                           steps=2, model_id=model_id)
    without_adapter = image_pb2.GenerateImageRequest()
    without_adapter.CopyFrom(plain)
    without_adapter.model_id = base_model
    referenced = image_pb2.GenerateImageRequest()
    referenced.CopyFrom(plain)
    referenced.references.append(_reference(store, (200, 30, 90)))
    other = image_pb2.GenerateImageRequest()
    other.CopyFrom(plain)
    other.references.append(_reference(store, (20, 160, 220)))

    baseline = await generate_image(gpu_client, without_adapter)
    unaffected = await generate_image(gpu_client, plain)
    assert unaffected.image.sha256 == baseline.image.sha256  # loaded, but not in the way
    assert not unaffected.provenance.adapters
    steered = await generate_image(gpu_client, referenced)
    assert steered.image.sha256 != baseline.image.sha256
    assert (await generate_image(gpu_client, other)).image.sha256 != steered.image.sha256
    assert (await generate_image(gpu_client, plain)).image.sha256 == baseline.image.sha256

    record = steered.provenance
    [use] = record.adapters
    on_disk = {str(p.relative_to(registered[ip_adapter])): sha256_file(p)
               for p in registered[ip_adapter].rglob("*.safetensors")}
    assert len(on_disk) == 2  # the adapter file and image_encoder/model.safetensors
    assert use.adapter.model_id == ip_adapter and use.adapter.kind == "ip_adapter"
    assert {w.path: w.sha256 for w in use.adapter.weights} == on_disk
    assert use.adapter.rights.rights_holder == "Adapter Owner" and use.weight == 0.8
    [reference] = record.inputs
    assert reference.sha256 == referenced.references[0].image.sha256
    assert reference.rights.rights_holder == "Ref Owner"
    assert record.parameters["ip_adapter_scale"] == 0.8


async def test_flux_true_cfg_with_a_reference(gpu_client, store) -> None:  # noqa: ANN001
    request = image_pb2.GenerateImageRequest(
        prompt="a red cat", negative_prompt="blurry", guidance_scale=3.5, width_px=64,
        height_px=64, seed=5, steps=2, model_id="tiny-flux-ip")
    plain = await generate_image(gpu_client, request)
    request.references.append(_reference(store, (200, 30, 90)))
    steered = await generate_image(gpu_client, request)
    assert steered.image.sha256 != plain.image.sha256


@pytest.mark.parametrize(("model_id", "count", "weight", "reason", "words"), [
    ("tiny-sana", 1, 0.8, "REFERENCES_UNSUPPORTED",
     "tiny-sana takes no reference images; diffusers has no IP-Adapter for SanaPipeline"),
    ("tiny-flux", 1, 0.8, "REFERENCES_UNSUPPORTED", "--kind ip_adapter"),
    ("tiny-flux-ip", 2, 0.8, "TOO_MANY_REFERENCES", "references: tiny-flux-ip takes at most 1"),
    ("tiny-sd3-ip", 2, 0.8, "TOO_MANY_REFERENCES", "references: tiny-sd3-ip takes at most 1"),
    ("tiny-sd3-ip", 1, -1.0, "REFERENCE_WEIGHT_OUT_OF_RANGE", "references[0].weight"),
])
async def test_references_refused_write_nothing(gpu_client, store, model_id, count, weight,  # noqa: ANN001
                                               reason, words) -> None:
    request = image_pb2.GenerateImageRequest(prompt="a red cat", width_px=64, height_px=64,
                                             steps=2, model_id=model_id)
    for colour in [(200, 30, 90), (20, 160, 220)][:count]:
        request.references.append(_reference(store, colour))
        request.references[-1].weight = weight
    before = blob_count(store.root)
    with pytest.raises(KantokuError) as info:
        await generate_image(gpu_client, request)
    assert info.value.category == Category.INVALID_REQUEST
    assert info.value.reason == reason and words in info.value.message
    assert blob_count(store.root) == before


async def test_a_reference_that_is_not_an_image_is_refused(gpu_client, store) -> None:  # noqa: ANN001
    request = image_pb2.GenerateImageRequest(prompt="a red cat", width_px=64, height_px=64,
                                             steps=2, model_id="tiny-flux-ip")
    request.references.add(image=store.put_bytes(b"not a picture", "text/plain"))
    before = blob_count(store.root)
    with pytest.raises(KantokuError) as info:
        await generate_image(gpu_client, request)
    assert info.value.reason == "REFERENCE_NOT_AN_IMAGE"
    assert blob_count(store.root) == before


def test_ip_adapter_registration_and_loading_refusals(registered, tmp_path: Path) -> None:  # noqa: ANN001
    from kantoku.services.image.backends.diffusers_dit import DiffusersImageBackend

    no_encoder = tmp_path / "no-encoder"
    shutil.copytree(registered["tiny-flux-ipa"], no_encoder)
    shutil.rmtree(no_encoder / "image_encoder")
    with pytest.raises(KantokuError) as info:
        add_user_model("no-encoder", no_encoder, "ip_adapter", "MIT", True, "x")
    assert info.value.reason == "IP_ADAPTER_DIR_INVALID" and "image_encoder/" in info.value.message

    pickled = tmp_path / "pickled"
    shutil.copytree(registered["tiny-flux-ipa"], pickled)
    (pickled / "image_encoder" / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(KantokuError) as info:
        add_user_model("pickled-ipa", pickled, "ip_adapter", "MIT", True, "x")
    assert info.value.reason == "PICKLE_REFUSED"

    with pytest.raises(KantokuError) as info:
        add_user_model("tiny-flux-ghost", registered["tiny-flux"], "image", "MIT", True, "x",
                       ip_adapter="no-such-adapter")
    assert info.value.reason == "MODEL_NOT_FOUND" and "tiny-flux-ipa" in info.value.message

    registry = ModelRegistry()  # an SD3 (SigLIP) adapter on FLUX, and any adapter on Sana
    for model_id, ip_adapter in [("tiny-flux", "tiny-sd3-ipa"), ("tiny-sana", "tiny-flux-ipa")]:
        with pytest.raises(KantokuError) as info:
            DiffusersImageBackend(registry.get(model_id), WeightsHasher(),
                                  ip_adapter=registry.get(ip_adapter))
        assert info.value.reason in ("IP_ADAPTER_INCOMPATIBLE", "IP_ADAPTER_UNSUPPORTED")
        assert ip_adapter in info.value.message


def test_cli_references_go_into_the_store(store, tmp_path: Path) -> None:  # noqa: ANN001
    from PIL import Image

    from kantoku.services.image.client import reference_inputs

    path = tmp_path / "aoi.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    rights = common_pb2.RightsInfo(rights_holder="Ref Owner", license="CC-BY-4.0")
    named, bare = reference_inputs([f"{path}:Aoi", str(path)], 0.5, rights)
    assert (named.character_name, bare.character_name) == ("Aoi", "")
    assert named.image.sha256 == sha256_file(path) and named.weight == 0.5
    assert store.read_bytes(named.image) == path.read_bytes()
    assert named.image.rights.rights_holder == "Ref Owner"
    with pytest.raises(KantokuError) as info:
        reference_inputs([f"{tmp_path / 'missing.png'}:Aoi"])
    assert info.value.reason == "FILE_NOT_FOUND" and "missing.png" in info.value.message
