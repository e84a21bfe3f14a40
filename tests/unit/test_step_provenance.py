"""A finished render step's event names what made it, from its ProvenanceRecord."""

from __future__ import annotations

import hashlib

from kantoku.planner.render import step_provenance
from kantoku.v1 import common_pb2


def record(*weights: tuple[str, str]) -> common_pb2.ProvenanceRecord:
    model = common_pb2.ModelCard(model_id="m", version="1",
                                 rights=common_pb2.RightsInfo(license="Apache-2.0"),
                                 weights=[common_pb2.WeightsFile(path=p, sha256=s)
                                          for p, s in weights])
    return common_pb2.ProvenanceRecord(step_id="abc", model=model, seed=7)


def test_the_event_names_the_model_licence_seed_and_weights() -> None:
    assert step_provenance(record()) == {"step_id": "abc", "model": "m", "model_version": "1",
                                         "weights_sha256": None, "license": "Apache-2.0",
                                         "seed": 7}
    assert step_provenance(record(("model.safetensors", "aa")))["weights_sha256"] == "aa"


def test_several_weights_files_are_named_by_one_digest_of_their_sorted_list() -> None:
    both = step_provenance(record(("b.bin", "bb"), ("a.bin", "aa")))["weights_sha256"]
    assert both == hashlib.sha256(b"aa  a.bin\nbb  b.bin\n").hexdigest()
    assert both == step_provenance(record(("a.bin", "aa"), ("b.bin", "bb")))["weights_sha256"]
