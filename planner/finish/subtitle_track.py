"""Lyrics as soft subtitles: a `mov_text` (3GPP timed text) track inside the MP4.

Players show the track when captions are turned on, and the picture stays clean. Each lyric
line is one cue from its start to its end, clipped to the video and to the next line's start (a
track shows one cue at a time; kantoku's own lyrics never overlap); an original line and its
translation sharing a stamp make one two-line cue. The track's language is the brief's, written
as the ISO 639-2 code MP4 stores ("ja" → "jpn", "en-US" → "eng"), or "und" when unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import langcodes
from av.container import OutputContainer
from av.packet import Packet
from av.subtitles.stream import SubtitleStream
from av.subtitles.subtitle import SubtitleSet

from kantoku.planner.music.lyrics import LyricLine

#: Cue times are in milliseconds.
TIME_BASE = Fraction(1, 1000)
UNDETERMINED = "und"
#: The ASS header the mov_text encoder takes its default style from: white Noto Sans JP,
#: centred at the bottom.
_HEADER = (
    b"[Script Info]\r\nScriptType: v4.00+\r\nPlayResX: 384\r\nPlayResY: 288\r\n\r\n"
    b"[V4+ Styles]\r\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, "
    b"OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, "
    b"Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\r\n"
    b"Style: Default,Noto Sans JP,18,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,"
    b"10,10,10,0\r\n\r\n"
    b"[Events]\r\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
    b"Text\r\n")


@dataclass(frozen=True)
class SubtitleTrack:
    """Lyric lines to carry as a subtitle track, and their language (a tag like the brief's)."""

    lines: Sequence[LyricLine]
    language: str


def mp4_language(tag: str) -> str | None:
    """The ISO 639-2/T code of a language tag ("ja" → "jpn"), or None when it names none."""
    try:
        return str(langcodes.Language.get(tag).to_alpha3())
    except (LookupError, ValueError):
        return None


class SubtitleMuxer:
    """Adds the track to an output container and hands out its cues in time order."""

    def __init__(self, container: OutputContainer, track: SubtitleTrack, duration_s: float,
                 notes: list[str]) -> None:
        """Adds the stream; call before anything is muxed.

        Args:
            container: the MP4 being written.
            track: the lines and their language.
            duration_s: the video's length; cues are clipped to it.
            notes: receives a line when the language has no ISO 639-2 code.
        """
        self.stream: SubtitleStream = container.add_stream("mov_text")
        self.stream.codec_context.subtitle_header = _HEADER
        language = mp4_language(track.language)
        if language is None:
            notes.append(f"lyrics track: the brief's language {track.language!r} has no ISO "
                         f"639-2 code; tagged {UNDETERMINED!r}")
        self.stream.metadata["language"] = language or UNDETERMINED
        self._cues = list(_cues(track.lines, duration_s))

    def until(self, time_s: float) -> list[Packet]:
        """The packets of the cues starting before `time_s` not handed out yet."""
        packets: list[Packet] = []
        while self._cues and self._cues[0][0] < time_s:
            start_s, end_s, text = self._cues.pop(0)
            packets.append(self._packet(start_s, end_s, text))
        return packets

    def _packet(self, start_s: float, end_s: float, text: str) -> Packet:
        start, end = round(start_s * 1000), round(end_s * 1000)
        dialogue = f"0,0,Default,,0,0,0,,{text.replace(chr(10), chr(92) + 'N')}"
        cue = SubtitleSet.create(dialogue.encode(), 0, end - start, pts=start)
        packet = self.stream.codec_context.encode_subtitle(cue)
        packet.stream = self.stream
        packet.time_base = TIME_BASE
        return packet


def _cues(lines: Sequence[LyricLine], duration_s: float) -> list[tuple[float, float, str]]:
    """(start, end, text) per line in time order, clipped to the video and the next line."""
    ordered = sorted(lines, key=lambda line: line.start_s)
    cues = []
    for index, line in enumerate(ordered):
        following = ordered[index + 1].start_s if index + 1 < len(ordered) else duration_s
        end_s = min(line.end_s, following, duration_s)
        if end_s > line.start_s:
            cues.append((line.start_s, end_s, line.text))
    return cues
