"""The checked-in generated code must match what `make protos` produces now."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "protos" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    fresh = module.generate(tmp_path)
    assert fresh, "protoc generated nothing"
    stale = [p.name for p in fresh
             if (ROOT / "protos" / "kantoku" / "v1" / p.name).read_bytes() != p.read_bytes()]
    assert not stale, f"generated code is stale, run `make protos`: {stale}"
