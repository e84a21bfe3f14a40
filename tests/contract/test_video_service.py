"""VideoService with the animatic backend, through an in-process grpc.aio server."""

import pytest

from kantoku.services._core.errors import Category, KantokuError
from kantoku.services.image.client import generate_image
from kantoku.services.video.client import generate_video
from kantoku.services.video.encode import probe_mp4
from kantoku.v1 import common_pb2, image_pb2, video_pb2
from tests.conftest import blob_count


@pytest.fixture
async def still(visual_client) -> image_pb2.ImageResult:  # noqa: ANN001
    return await generate_image(visual_client, image_pb2.GenerateImageRequest(
        prompt="Aoi on the beach", width_px=320, height_px=576, seed=1,
        shot=image_pb2.ShotSpec(shot_size=image_pb2.SHOT_SIZE_FULL, location="beach",
                                characters=[image_pb2.CharacterSpec(name="Aoi")])))


@pytest.mark.parametrize(("duration_s", "fps", "frames"), [(1.0, 24, 24), (0.5, 30, 15),
                                                           (1.3, 25, 32)])
async def test_exact_frames_h264_faststart(visual_client, store, still, duration_s, fps,  # noqa: ANN001
                                           frames) -> None:
    result = await generate_video(visual_client, video_pb2.GenerateVideoRequest(
        keyframe=still.image, layers=still.layers, camera_move=video_pb2.CAMERA_MOVE_TRUCK_LEFT,
        duration_s=duration_s, fps=fps))
    data = store.read_bytes(result.video)
    info = probe_mp4(data)
    assert info["frames"] == frames == result.frame_count
    assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert (info["color_primaries"], info["color_trc"], info["colorspace"],
            info["color_range"]) == (1, 1, 1, 1)  # BT.709 primaries, transfer, matrix; "tv"
    assert (info["width"], info["height"]) == (320, 576)
    assert data.index(b"moov") < data.index(b"mdat")  # faststart
    assert result.provenance.parameters["parallax"] is True
    assert {i.sha256 for i in result.provenance.inputs} >= {still.image.sha256}


async def test_flat_keyframe_and_progress(visual_client, still) -> None:  # noqa: ANN001
    request = video_pb2.GenerateVideoRequest(keyframe=still.image, duration_s=1, fps=10,
                                             camera_move=video_pb2.CAMERA_MOVE_ZOOM_IN)
    events = [e async for e in visual_client.generate_video(request)]
    progress = [e.progress for e in events if e.HasField("progress")]
    assert progress and progress[-1].step == progress[-1].total_steps == 10
    assert events[-1].result.provenance.parameters["parallax"] is False


async def test_camera_moves_differ(visual_client, still) -> None:  # noqa: ANN001
    shas = set()
    for move in (video_pb2.CAMERA_MOVE_STATIC, video_pb2.CAMERA_MOVE_PAN_LEFT,
                 video_pb2.CAMERA_MOVE_DOLLY_IN):
        result = await generate_video(visual_client, video_pb2.GenerateVideoRequest(
            keyframe=still.image, layers=still.layers, camera_move=move, duration_s=0.5, fps=10))
        shas.add(result.video.sha256)
    assert len(shas) == 3


@pytest.mark.parametrize(("overrides", "category", "reason", "words"), [
    ({"duration_s": 0}, Category.INVALID_REQUEST, "DURATION_OUT_OF_RANGE", "duration_s"),
    ({"duration_s": -1}, Category.INVALID_REQUEST, "DURATION_OUT_OF_RANGE", "duration_s"),
    ({"duration_s": 3600}, Category.INVALID_REQUEST, "DURATION_OUT_OF_RANGE", "60"),
    ({"fps": 500}, Category.INVALID_REQUEST, "FPS_OUT_OF_RANGE", "fps"),
    ({"width_px": 321}, Category.INVALID_REQUEST, "SIZE_NOT_MULTIPLE", "multiple of 2"),
    ({"width_px": 0}, Category.INVALID_REQUEST, "SIZE_OUT_OF_RANGE", "width_px"),
    ({"model_id": "wan-2.1"}, Category.NOT_FOUND, "MODEL_NOT_FOUND", "animatic-v1"),
    ({"keyframe": None}, Category.INVALID_REQUEST, "KEYFRAME_REQUIRED", "keyframe"),
    ({"keyframe": common_pb2.AssetRef(uri="asset://sha256/" + "3" * 64)}, Category.NOT_FOUND,
     "ASSET_NOT_FOUND", "asset"),
])
async def test_bad_requests_write_nothing(visual_client, store, still, overrides, category,  # noqa: ANN001
                                          reason, words) -> None:
    fields = {"keyframe": still.image, "duration_s": 1.0, "fps": 10}
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not None}
    before = blob_count(store.root)
    with pytest.raises(KantokuError) as info:
        await generate_video(visual_client, video_pb2.GenerateVideoRequest(**fields))
    assert (info.value.category, info.value.reason) == (category, reason)
    assert words in info.value.message
    assert blob_count(store.root) == before
