"""Language detection good enough to route between voices: Japanese script or not."""

from __future__ import annotations

import re

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


def detect_language(text: str) -> str:
    """'ja' when a tenth or more of the letters are kana or kanji, else 'en'."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    japanese = sum(1 for c in letters if _JAPANESE.match(c))
    return "ja" if japanese * 3 >= len(letters) else "en"


def base_language(code: str) -> str:
    return code.split("-")[0].lower()
