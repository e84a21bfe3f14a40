"""The GPU backends' real code on CPU: tiny random-weight pipelines built from configs, saved
with save_pretrained, registered like a user would, and run through the gRPC services."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_asyncio

from kantoku.agents.client import ServiceClient
from kantoku.agents.visual import generate_image, generate_video
from kantoku.services._core.assets import sha256_file
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.registry import ModelRegistry, WeightsHasher, add_user_model
from kantoku.services._core.server import ServiceBinding, start_server
from kantoku.v1 import image_pb2, image_pb2_grpc, video_pb2, video_pb2_grpc
from tests import tiny_models

IMAGE_MODELS = {"tiny-flux": tiny_models.build_flux, "tiny-sd3": tiny_models.build_sd3,
                "tiny-sana": tiny_models.build_sana}
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
    return paths


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gpu_client(registered, store):  # noqa: ANN001, ANN201
    from kantoku.services.image.backends.diffusers_dit import DiffusersImageBackend
    from kantoku.services.image.servicer import ImageServicer
    from kantoku.services.video.backends.diffusers_video import DiffusersVideoBackend
    from kantoku.services.video.servicer import VideoServicer

    registry, hasher = ModelRegistry(), WeightsHasher()
    images = {m: DiffusersImageBackend(registry.get(m), hasher) for m in IMAGE_MODELS}
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
