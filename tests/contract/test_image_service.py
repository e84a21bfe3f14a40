"""ImageService with the previz backend, through an in-process grpc.aio server."""

import io

import pytest
from PIL import Image

from kantoku.services._core.errors import Category, KantokuError
from kantoku.services.image.client import generate_image
from kantoku.v1 import common_pb2, image_pb2
from tests.conftest import blob_count

CAST = [image_pb2.CharacterSpec(name="Aoi", description="red jacket, silver hair"),
        image_pb2.CharacterSpec(name="Ren", description="")]


def _request(**overrides) -> image_pb2.GenerateImageRequest:  # noqa: ANN003
    shot = overrides.pop("shot", image_pb2.ShotSpec(
        shot_size=image_pb2.SHOT_SIZE_WIDE, characters=CAST, location="city rooftop",
        time_of_day=image_pb2.TIME_OF_DAY_NIGHT, mood="joyful", caption="Shot 1"))
    fields = {"prompt": "Aoi sings to the city", "width_px": 360, "height_px": 640, "seed": 3,
              "shot": shot}
    fields.update(overrides)
    return image_pb2.GenerateImageRequest(**fields)


async def test_png_layers_progress_and_provenance(visual_client, store) -> None:  # noqa: ANN001
    events = [r async for r in visual_client.generate_image(_request())]
    assert [e.WhichOneof("content") for e in events][-1] == "result"
    assert any(e.HasField("progress") for e in events[:-1])
    result = events[-1].result
    image = Image.open(io.BytesIO(store.read_bytes(result.image)))
    assert image.size == (360, 640) and image.format == "PNG"
    assert [layer.name for layer in result.layers] == ["sky", "set", "characters"]
    record = result.provenance
    assert record.output.sha256 == result.image.sha256
    assert record.model.model_id == "previz-v1" and record.model.rights.license == "Apache-2.0"
    assert record.parameters["shot_size"] == "wide"


async def test_same_inputs_same_bytes(visual_client) -> None:  # noqa: ANN001
    first = await generate_image(visual_client, _request())
    second = await generate_image(visual_client, _request())
    assert first.image.sha256 == second.image.sha256


@pytest.mark.parametrize("change", [
    {"prompt": "Aoi cries in the rain"},
    {"seed": 4},
    {"shot": image_pb2.ShotSpec(shot_size=image_pb2.SHOT_SIZE_CLOSE_UP, characters=CAST,
                                location="city rooftop", time_of_day=image_pb2.TIME_OF_DAY_NIGHT,
                                mood="joyful", caption="Shot 1")},
])
async def test_any_change_changes_the_picture(visual_client, change) -> None:  # noqa: ANN001
    base = await generate_image(visual_client, _request())
    changed = await generate_image(visual_client, _request(**change))
    assert base.image.sha256 != changed.image.sha256


async def test_a_character_keeps_its_look_across_shots(visual_client, store) -> None:  # noqa: ANN001
    def main_colour(ref: common_pb2.AssetRef) -> tuple:
        layer = Image.open(io.BytesIO(store.read_bytes(ref))).convert("RGBA")
        colours = [(c, rgba) for c, rgba in layer.getcolors(1 << 20) if rgba[3] == 255]
        return max(colours)[1]

    aoi = [image_pb2.CharacterSpec(name="Aoi", description="red jacket")]
    beach = image_pb2.ShotSpec(shot_size=image_pb2.SHOT_SIZE_FULL, characters=aoi,
                               location="beach", time_of_day=image_pb2.TIME_OF_DAY_DAY)
    room = image_pb2.ShotSpec(shot_size=image_pb2.SHOT_SIZE_FULL, characters=aoi,
                              location="bedroom", time_of_day=image_pb2.TIME_OF_DAY_NIGHT,
                              mood="melancholic")
    first = await generate_image(visual_client, _request(shot=beach, seed=1))
    second = await generate_image(visual_client, _request(shot=room, seed=9))
    assert main_colour(first.layers[2].image) == main_colour(second.layers[2].image)
    assert first.layers[0].image.sha256 != second.layers[0].image.sha256  # the sky changed


async def test_list_models(visual_client) -> None:  # noqa: ANN001
    from kantoku.v1 import image_pb2_grpc

    stub = image_pb2_grpc.ImageServiceStub(visual_client.channel)
    response = await stub.ListModels(common_pb2.ListModelsRequest())
    assert response.default_model_id == "previz-v1"
    assert response.models[0].rights.rights_holder


async def test_a_standalone_server_reports_no_replicas(visual_client) -> None:  # noqa: ANN001
    from kantoku.planner.capacity import ServiceCapacity

    for application in ("image", "video"):
        reply = await visual_client.get_capacity(application)
        assert not reply.hosted and not reply.deployments
    assert await ServiceCapacity(visual_client).read() is None  # the job's cap decides


@pytest.mark.parametrize(("overrides", "category", "reason", "words"), [
    ({"width_px": 0}, Category.INVALID_REQUEST, "SIZE_OUT_OF_RANGE", "width_px"),
    ({"height_px": -5}, Category.INVALID_REQUEST, "SIZE_OUT_OF_RANGE", "height_px"),
    ({"width_px": 100_000}, Category.INVALID_REQUEST, "SIZE_OUT_OF_RANGE", "2048"),
    ({"model_id": "flux-dev"}, Category.NOT_FOUND, "MODEL_NOT_FOUND", "previz-v1"),
    ({"steps": 5000}, Category.INVALID_REQUEST, "STEPS_OUT_OF_RANGE", "steps"),
    ({"prompt": "", "shot": image_pb2.ShotSpec()}, Category.INVALID_REQUEST, "PROMPT_EMPTY",
     "prompt"),
    ({"references": [image_pb2.ReferenceImage(image=common_pb2.AssetRef(
        uri="asset://sha256/" + "2" * 64))]}, Category.NOT_FOUND, "ASSET_NOT_FOUND", "asset"),
    ({"references": [image_pb2.ReferenceImage(image=common_pb2.AssetRef(uri="../../x.png"))]},
     Category.INVALID_REQUEST, "ASSET_OUTSIDE_STORE", "not in the asset store"),
])
async def test_bad_requests_write_nothing(visual_client, store, overrides, category,  # noqa: ANN001
                                          reason, words) -> None:
    before = blob_count(store.root)
    with pytest.raises(KantokuError) as info:
        await generate_image(visual_client, _request(**overrides))
    assert (info.value.category, info.value.reason) == (category, reason)
    assert words in info.value.message
    assert blob_count(store.root) == before


async def test_japanese_captions_are_drawn_not_boxes(visual_client, store) -> None:  # noqa: ANN001
    strips = []
    for caption in ("青い海", "赤い空"):  # same length: boxes would look the same
        shot = image_pb2.ShotSpec(shot_size=image_pb2.SHOT_SIZE_WIDE, location="city rooftop",
                                  caption=caption)
        result = await generate_image(visual_client, _request(shot=shot))
        image = Image.open(io.BytesIO(store.read_bytes(result.image))).convert("RGB")
        strips.append(image.crop((0, 640 - 640 // 18, 360, 640)).tobytes())  # the caption
    assert strips[0] != strips[1]
