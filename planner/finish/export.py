"""`kantoku export`: a job's timeline as the project file an editor opens, via the OTIO adapters.

Formats (adapter on PyPI → file → editors; `FORMATS` holds the same):

- `fcp7`: otio-fcp-adapter → `timeline.xml` → Premiere Pro, DaVinci Resolve, Final Cut Pro 7
- `fcpx`: otio-fcpx-xml-adapter → `timeline.fcpxml` → Final Cut Pro, DaVinci Resolve
- `aaf`: otio-aaf-adapter → `timeline.aaf` → Avid Media Composer, DaVinci Resolve, Premiere Pro
- `edl`: otio-cmx3600-adapter → `timeline.edl`, `timeline.A1.edl`, ... (CMX 3600 holds one
  track per file) → any editor
- `kdenlive`: otio-kdenlive-adapter → `timeline.kdenlive` → Kdenlive (25.04 and later also
  open `timeline.otio` itself)

Media references are made absolute `file://` URLs of the files in the job folder as it is now
(editors want absolute paths; timeline.otio keeps relative ones, so the folder can move and be
exported again). Where an adapter has no place for the frame size or assumes 1920x1080, the
written file is corrected afterwards (FCPXML `<format width height>`, the Kdenlive profile).
"""

from __future__ import annotations

import contextlib
import io
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import opentimelineio as otio

from kantoku.planner.finish.timeline import METADATA_KEY, read_timeline
from kantoku.services._core.errors import invalid, not_found


@dataclass(frozen=True)
class ExportFormat:
    adapter: str
    suffix: str
    editors: str
    fix: Callable[[Path, int, int], None] | None = None
    #: Extra arguments for the adapter's writer.
    options: dict[str, object] = field(default_factory=dict)


def _fix_fcpx(path: Path, width: int, height: int) -> None:
    """FCPXML formats need width and height; without ffprobe the adapter writes neither."""
    tree = ET.parse(path)
    for element in tree.getroot().iter("format"):
        element.set("width", str(width))
        element.set("height", str(height))
        if not element.get("name"):
            element.set("name", "FFVideoFormatRateUndefined")
    _write_xml(tree.getroot(), path, doctype="<!DOCTYPE fcpxml>")


def _fix_kdenlive(path: Path, width: int, height: int) -> None:
    """The Kdenlive adapter writes a fixed 1920x1080 16:9 profile; write the video's own."""
    tree = ET.parse(path)
    divisor = gcd(width, height)
    for profile in tree.getroot().iter("profile"):
        fps = profile.get("frame_rate_num", "")
        profile.set("description", f"{width}x{height} {fps} fps")
        profile.set("width", str(width))
        profile.set("height", str(height))
        profile.set("display_aspect_num", str(width // divisor))
        profile.set("display_aspect_den", str(height // divisor))
    _write_xml(tree.getroot(), path)


def _write_xml(root: ET.Element, path: Path, doctype: str = "") -> None:
    body = ET.tostring(root, encoding="unicode")
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n{body}\n'
                    if doctype else f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n',
                    encoding="utf-8")


FORMATS: dict[str, ExportFormat] = {
    "fcp7": ExportFormat("fcp_xml", ".xml", "Premiere Pro, DaVinci Resolve, Final Cut Pro 7"),
    "fcpx": ExportFormat("fcpx_xml", ".fcpxml", "Final Cut Pro, DaVinci Resolve", _fix_fcpx),
    # The media are not AAF files with mob ids of their own: the adapter mints new ones.
    "aaf": ExportFormat("AAF", ".aaf", "Avid Media Composer, DaVinci Resolve, Premiere Pro",
                        options={"use_empty_mob_ids": True}),
    "edl": ExportFormat("cmx_3600", ".edl", "any editor (CMX 3600: one file per track)"),
    "kdenlive": ExportFormat("kdenlive", ".kdenlive", "Kdenlive", _fix_kdenlive),
}


def export_timeline(job_dir: Path, fmt: str, out: Path | None = None) -> list[Path]:
    """Write the job's timeline for an editor; returns the files written.

    Args:
        job_dir: a finished job's output folder (it holds timeline.otio and the media).
        fmt: one of `FORMATS`.
        out: the file to write (for `edl`, the video track's; audio tracks get `.A1.edl`, ...);
            default `JOB_DIR/export/timeline.SUFFIX`.

    Raises:
        KantokuError: INVALID_REQUEST for an unknown format or a timeline an adapter cannot
            write; NOT_FOUND when a media file the timeline names is missing.
    """
    if fmt not in FORMATS:
        raise invalid(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}",
                      reason="EXPORT_FORMAT_UNKNOWN")
    spec = FORMATS[fmt]
    job_dir = Path(job_dir)
    timeline = read_timeline(job_dir / "timeline.otio")
    _absolute_media(timeline, job_dir)
    size = timeline.metadata.get(METADATA_KEY, {})
    width, height = int(size.get("width_px", 1920)), int(size.get("height_px", 1080))
    out = Path(out) if out else job_dir / "export" / f"timeline{spec.suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with quiet_adapters():
            written = (_write_edls(timeline, out) if fmt == "edl" else
                       _write_one(timeline, out, spec))
    except (otio.exceptions.OTIOError, ValueError, TypeError, AttributeError) as exc:
        raise invalid(f"the {fmt} adapter could not write {out.name} ({type(exc).__name__}: "
                      f"{exc}); export another format or report it",
                      reason="EXPORT_FAILED") from None
    if spec.fix is not None:
        spec.fix(out, width, height)
    return written


def _absolute_media(timeline: otio.schema.Timeline, job_dir: Path) -> None:
    for clip in timeline.find_clips():
        reference = clip.media_reference
        if not isinstance(reference, otio.schema.ExternalReference):
            continue
        path = (job_dir / reference.target_url).resolve()
        if not path.is_file():
            raise not_found(f"{path}: the timeline names it but it is not in the job folder; "
                            "run `kantoku resume` for the job, or export from its folder",
                            reason="EXPORT_MEDIA_MISSING", path=str(path))
        reference.target_url = path.as_uri()


def _write_one(timeline: otio.schema.Timeline, out: Path, spec: ExportFormat) -> list[Path]:
    otio.adapters.write_to_file(timeline, str(out), adapter_name=spec.adapter, **spec.options)
    return [out]


def _write_edls(timeline: otio.schema.Timeline, out: Path) -> list[Path]:
    """One CMX 3600 EDL per track (the format holds one): video, then A1, A2, ..."""
    from otio_cmx3600_adapter import cmx_3600

    written = []
    audio = 0
    for track in timeline.tracks:
        if not track.find_clips():
            continue
        single = otio.schema.Timeline(name=timeline.name,
                                      global_start_time=timeline.global_start_time)
        single.tracks.append(track.deepcopy())
        if track.kind == otio.schema.TrackKind.Video:
            path = out
        else:
            audio += 1
            path = out.with_name(f"{out.stem}.A{audio}{out.suffix}")
        writer = cmx_3600.EDLWriter(tracks=single.tracks, rate=track.duration().rate,
                                    style="avid")
        path.write_text(writer.get_content_for_track_at_index(0, title=timeline.name),
                        encoding="utf-8")
        written.append(path)
    return written


@contextlib.contextmanager
def quiet_adapters() -> Iterator[None]:
    """Adapters print deprecation banners on stdout; keep the CLI's output clean."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield None
