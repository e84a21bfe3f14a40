"""Song lyrics: timed lines read from LRC or plain text, written out as SRT and WebVTT.

LRC (`[mm:ss.xx] text`): several stamps before one text repeat it (a chorus); `[offset:+ms]`
moves every stamp earlier by that many milliseconds (LRC's convention; a negative offset moves
them later); other tags (`[ar:]`, `[ti:]`, `[al:]`, `[by:]`, `[length:]`, ...) are ignored; word
stamps `<mm:ss.xx>` inside a text are removed; a stamp with no text is a pause that ends the line
before it. Lines sharing one stamp (an original and its translation) become one two-line cue.
A line lasts until the next stamp, at most `MAX_LINE_S`, and never past the song's end; a stamp
at or after the end is dropped with a warning naming its line.

Plain text (no stamps): every non-empty line is one lyric line; lines that are only a bracketed
label (`[Chorus]`) are left out. The lines are spread evenly over the vocal sections, which get
lines in proportion to their length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from kantoku.services._core.errors import KantokuError, invalid, not_found
from kantoku.services._core.files import read_text_file, write_text_atomic

#: Longest time a line stays on screen when the next stamp is later than this (seconds).
MAX_LINE_S = 6.0
#: Under this many seconds per line on average, spread plain lyrics get a readability warning.
MIN_READABLE_S = 1.0
#: Largest lyrics file read (checked before reading) and most lines in it: a song's lyrics are
#: a few kilobytes and a few hundred lines.
MAX_LYRICS_BYTES = 1 << 20
MAX_LYRICS_LINES = 5000

_STAMP = r"\[(\d{1,3}):([0-5]?\d)(?:[.:](\d{1,3}))?\]"
_STAMP_RE = re.compile(_STAMP)
_LEADING_STAMPS = re.compile(rf"^\s*(?P<stamps>(?:{_STAMP}\s*)+)(?P<text>.*)$")
_ANY_STAMP = re.compile(rf"^\s*{_STAMP}", re.MULTILINE)
_TAG = re.compile(r"^\s*\[([A-Za-z#][A-Za-z]*)\s*:(.*)\]\s*$")
_LABEL = re.compile(r"^\s*\[[^\]]*\]\s*$")
_WORD_STAMP = re.compile(r"<\d{1,3}:[0-5]?\d(?:[.:]\d{1,3})?>")
#: Terminal escape sequences (CSI, OSC, two-byte) and the other C0/C1 control characters but
#: tab: lyric text reaches terminals, subtitles and reports, and is dropped from them.
_CONTROL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.?)"
                      r"|[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f-\x9f]", re.DOTALL)
_OFFSET = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*$")

Warnings = list[str]
#: Warnings with the line number they are about, to report them in file order.
_Notes = list[tuple[int, str]]


@pydantic_dataclass(frozen=True)
class LyricLine:
    """One lyric line on screen from `start_s` to `end_s` (seconds into the song).

    `text` may hold a line break (an original line and its translation shown together).
    Serialise with `dataclasses.asdict` or `pydantic.TypeAdapter(list[LyricLine])`.
    """

    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    text: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s {self.end_s} must be after start_s {self.start_s}")
        return self


@dataclass(frozen=True)
class _Event:
    """One stamp of an LRC file: when, what (empty for a pause) and where it was written."""

    time_s: float
    text: str
    stamp: str
    line_no: int


# --- loading ---------------------------------------------------------------------------------


def load_lyrics(path: Path, *, duration_s: float,
                vocal_sections: Sequence[tuple[float, float]] = ()) -> tuple[list[LyricLine],
                                                                              Warnings]:
    """Read a lyrics file: LRC when any line starts with a `[mm:ss]` stamp, else plain text.

    Args:
        path: a UTF-8 text file (a byte-order mark is allowed).
        duration_s: the song's length; nothing is shown after it.
        vocal_sections: `(start_s, end_s)` spans where the voice is, used to place plain lyrics.

    Returns:
        The lines in time order and the warnings a person should see.

    Raises:
        KantokuError: NOT_FOUND (LYRICS_NOT_FOUND) when the file does not exist;
            INVALID_REQUEST when it is over MAX_LYRICS_BYTES (LYRICS_TOO_LARGE) or
            MAX_LYRICS_LINES (LYRICS_TOO_LONG), not UTF-8 (LYRICS_NOT_UTF8), binary
            (LYRICS_NOT_TEXT) or holds no lyric line (LYRICS_EMPTY).
    """
    path = Path(path)
    if not path.is_file():
        raise not_found(f"the lyrics file {path} does not exist; check the path, or leave the "
                        "lyrics out", reason="LYRICS_NOT_FOUND", path=str(path))
    text = read_text_file(path, "the lyrics file", MAX_LYRICS_BYTES, "LYRICS")
    lines = text.count("\n") + 1
    if lines > MAX_LYRICS_LINES:
        raise invalid(f"the lyrics file {path} has {lines} lines; the limit is "
                      f"{MAX_LYRICS_LINES}; pass one song's lyrics", reason="LYRICS_TOO_LONG",
                      path=str(path))
    # Warnings name the file, not its path: they end up in plan.json and rights.json.
    if has_timestamps(text):
        return parse_lrc(text, duration_s=duration_s, origin=path.name)
    return parse_plain(text, sections=vocal_sections, duration_s=duration_s, origin=path.name)


def has_timestamps(text: str) -> bool:
    """Whether any line of `text` starts with an LRC time stamp like `[01:02.50]`."""
    return _ANY_STAMP.search(text) is not None


# --- LRC -------------------------------------------------------------------------------------


def parse_lrc(text: str, *, duration_s: float,
              origin: str = "lyrics") -> tuple[list[LyricLine], Warnings]:
    """Timed lines from LRC text; see the module docstring for the rules.

    Args:
        text: the LRC content.
        duration_s: the song's length in seconds.
        origin: how warnings and errors name the source (a file name).

    Returns:
        The lines in time order and the warnings (each naming `origin` and a line number).

    Raises:
        KantokuError: INVALID_REQUEST when `duration_s` is not positive or no line is left
            (LYRICS_EMPTY).
    """
    _check_duration(duration_s)
    text = text.removeprefix("\ufeff")
    notes: _Notes = []
    events: list[_Event] = []
    offset_s = 0.0
    for line_no, raw in enumerate(text.splitlines(), start=1):
        match = _LEADING_STAMPS.match(raw)
        if match:
            events.extend(_line_events(match, line_no))
            continue
        tag = _TAG.match(raw)
        if tag and tag.group(1).lower() == "offset":
            offset_s = _offset_s(tag.group(2), origin, line_no, notes, offset_s)
        elif not tag and raw.strip():
            notes.append((line_no, f"{origin} line {line_no}: no [mm:ss.xx] time stamp; "
                                   "left out"))
    events = _shifted(events, offset_s, duration_s, origin, notes)
    lines = _timed_lines(_merged(events), duration_s)
    if not lines:
        raise _no_lines(origin)
    return lines, [message for _, message in sorted(notes, key=lambda note: note[0])]


def _line_events(match: re.Match[str], line_no: int) -> list[_Event]:
    text = _clean(_WORD_STAMP.sub("", match.group("text")))
    return [_Event(_stamp_seconds(stamp), text, stamp.group(0), line_no)
            for stamp in _STAMP_RE.finditer(match.group("stamps"))]


def _stamp_seconds(stamp: re.Match[str]) -> float:
    minutes, seconds, fraction = stamp.group(1), stamp.group(2), stamp.group(3) or "0"
    return int(minutes) * 60 + int(seconds) + float(f"0.{fraction}")


def _offset_s(value: str, origin: str, line_no: int, notes: _Notes, current: float) -> float:
    """LRC `[offset:ms]`: a positive value shows the lyrics earlier, so it is subtracted."""
    match = _OFFSET.match(value)
    if not match:
        notes.append((line_no, f"{origin} line {line_no}: [offset:{value}] is not a number of "
                               "milliseconds; ignored"))
        return current
    return -float(match.group(1)) / 1000


def _shifted(events: Iterable[_Event], offset_s: float, duration_s: float, origin: str,
             notes: _Notes) -> list[_Event]:
    """Events moved by the offset, clamped at 0, without those at or after the song's end."""
    kept: list[_Event] = []
    for event in events:
        time_s = event.time_s + offset_s
        where = f"{origin} line {event.line_no}: {event.stamp}"
        if time_s < 0:
            notes.append((event.line_no, f"{where} falls before the start after the offset; "
                                         "moved to 0:00.00"))
            time_s = 0.0
        if time_s >= duration_s:
            notes.append((event.line_no, f"{where} is at {clock(time_s)}, at or after the "
                                         f"song's end ({clock(duration_s)}); dropped"))
            continue
        kept.append(_Event(time_s, event.text, event.stamp, event.line_no))
    return kept


def _merged(events: Sequence[_Event]) -> list[_Event]:
    """Events in time order, those at the same millisecond joined (texts on separate lines)."""
    groups: dict[int, list[_Event]] = {}
    for event in events:
        groups.setdefault(round(event.time_s * 1000), []).append(event)
    merged = []
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda event: event.line_no)
        texts = [event.text for event in group if event.text]
        merged.append(_Event(key / 1000, "\n".join(texts), group[0].stamp, group[0].line_no))
    return merged


def _timed_lines(events: Sequence[_Event], duration_s: float) -> list[LyricLine]:
    """Each texted event lasts until the next event, `MAX_LINE_S` or the song's end."""
    lines = []
    for index, event in enumerate(events):
        if not event.text:
            continue
        following = events[index + 1].time_s if index + 1 < len(events) else math.inf
        end_s = min(following, event.time_s + MAX_LINE_S, duration_s)
        lines.append(LyricLine(event.time_s, end_s, event.text))
    return lines


# --- plain text ------------------------------------------------------------------------------


def parse_plain(text: str, *, sections: Sequence[tuple[float, float]], duration_s: float,
                origin: str = "lyrics") -> tuple[list[LyricLine], Warnings]:
    """Lines without time stamps, spread evenly over the vocal `sections`.

    Each section gets a share of the lines in proportion to its length (largest remainder), and
    its lines split it into equal parts. Without usable sections the whole song is used.

    Args:
        text: one lyric line per line; blank lines and `[Chorus]`-like labels are skipped.
        sections: `(start_s, end_s)` spans where the voice is; clipped to the song, overlaps
            merged.
        duration_s: the song's length in seconds.
        origin: how warnings and errors name the source (a file name).

    Returns:
        The lines in time order and the warnings (always one saying the timing is a guess).

    Raises:
        KantokuError: INVALID_REQUEST when `duration_s` is not positive or there is no lyric
            line (LYRICS_EMPTY).
    """
    _check_duration(duration_s)
    texts = [_clean(raw) for raw in text.removeprefix("\ufeff").splitlines()
             if not _LABEL.match(raw)]
    texts = [line for line in texts if line]
    if not texts:
        raise _no_lines(origin)
    spans = usable_sections(sections, duration_s)
    if spans:
        warnings = [f"{origin}: lyrics have no timestamps; lines were spread over the vocal "
                    f"sections ({len(spans)} sections, {sum(e - s for s, e in spans):.1f} s); add "
                    "[mm:ss.xx] stamps (LRC) for exact timing"]
    else:
        spans = [(0.0, duration_s)]
        warnings = [f"{origin}: lyrics have no timestamps and no vocal sections were found; "
                    "lines were spread over the whole song; add [mm:ss.xx] stamps (LRC) for "
                    "exact timing"]
    lines = _spread(texts, spans)
    average = sum(e - s for s, e in spans) / len(texts)
    if average < MIN_READABLE_S:
        warnings.append(f"{origin}: {len(texts)} lines share {average * len(texts):.1f} s, "
                        f"{average:.2f} s each; too fast to read")
    return lines, warnings


def usable_sections(sections: Iterable[tuple[float, float]],
                    duration_s: float) -> list[tuple[float, float]]:
    """`sections` clipped to [0, duration_s], empty ones dropped, overlaps merged, sorted."""
    clipped = sorted((max(0.0, start), min(duration_s, end)) for start, end in sections)
    spans: list[tuple[float, float]] = []
    for start, end in clipped:
        if end <= start:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _spread(texts: Sequence[str], spans: Sequence[tuple[float, float]]) -> list[LyricLine]:
    counts = _apportion(len(texts), [end - start for start, end in spans])
    lines: list[LyricLine] = []
    remaining = iter(texts)
    for (start, end), count in zip(spans, counts, strict=True):
        step = (end - start) / count if count else 0.0
        for index in range(count):
            lines.append(LyricLine(start + index * step, start + (index + 1) * step,
                                   next(remaining)))
    return lines


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainder; ties go to earlier ones)."""
    whole = sum(weights)
    quotas = [total * weight / whole for weight in weights]
    counts = [math.floor(quota) for quota in quotas]
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - quotas[i], i))
    for index in order[:total - sum(counts)]:
        counts[index] += 1
    return counts


# --- writing ---------------------------------------------------------------------------------


def write_srt(lines: Sequence[LyricLine], path: Path) -> None:
    """Write SubRip subtitles: numbered cues, `00:00:01,500 --> 00:00:04,000`, UTF-8."""
    cues = [f"{number}\n{_timestamp(line.start_s, ',')} --> {_timestamp(line.end_s, ',')}\n"
            f"{line.text}\n" for number, line in enumerate(lines, start=1)]
    write_text_atomic(Path(path), "\n".join(cues))


def write_vtt(lines: Sequence[LyricLine], path: Path) -> None:
    """Write WebVTT subtitles: `WEBVTT` header, `00:00:01.500 --> 00:00:04.000` cues, UTF-8.

    `&`, `<` and `>` in the text are escaped, as WebVTT cue text requires.
    """
    cues = [f"{_timestamp(line.start_s, '.')} --> {_timestamp(line.end_s, '.')}\n"
            f"{_vtt_escape(line.text)}\n" for line in lines]
    write_text_atomic(Path(path), "\n".join(["WEBVTT\n", *cues]))


def clock(seconds: float) -> str:
    """`m:ss.ss`, e.g. 3:05.50, the way LRC writes times."""
    hundredths = round(seconds * 100)
    minutes, rest = divmod(hundredths, 6000)
    return f"{minutes}:{rest // 100:02d}.{rest % 100:02d}"


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    whole, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- shared ----------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Control characters (terminal escapes, NUL) dropped, surrounding whitespace removed and
    inner runs of spaces made one (ideographic kept)."""
    return re.sub(r"[ \t]+", " ", _CONTROL.sub("", text)).strip()


def _check_duration(duration_s: float) -> None:
    if not duration_s > 0:
        raise invalid(f"the song lasts {duration_s} s; lyrics need a positive duration",
                      reason="DURATION_INVALID")


def _no_lines(origin: str) -> KantokuError:
    return invalid(f"{origin} has no lyric lines to show; write one line per sung line, "
                   "optionally with [mm:ss.xx] stamps (LRC)", reason="LYRICS_EMPTY",
                   origin=origin)
