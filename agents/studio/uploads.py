"""A new job's uploads: the brief, song, lyrics and reference pictures of a multipart form, each
checked by its content (never by its name) and within its size limit before the job starts.

A refused upload leaves nothing behind: the caller removes the job's upload folder.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData, UploadFile

from kantoku.agents.studio.errors import ApiError, status_of
from kantoku.planner.planning.brief import MAX_BRIEF_BYTES, Brief, brief_from_text, parse_brief
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.inputs import image_bytes

#: Largest song upload (a few minutes of lossless audio).
MAX_SONG_BYTES = 200 << 20
MAX_LYRICS_BYTES = 1 << 20
#: Reference pictures per job, and the size of each.
MAX_REFERENCES = 8
MAX_REFERENCE_BYTES = 20 << 20
#: Whole request: the files and the form's framing.
MAX_REQUEST_BYTES = (MAX_SONG_BYTES + MAX_LYRICS_BYTES + MAX_BRIEF_BYTES
                     + MAX_REFERENCES * MAX_REFERENCE_BYTES + (1 << 20))
#: Files a form may carry: brief, song, lyrics and the references.
MAX_FILES = 3 + MAX_REFERENCES
PLANNERS = ("heuristic", "llm")

_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,5}$")
#: A reference's file name: letters (any script), digits, spaces and . _ - ( ); no path.
_REFERENCE_NAME = re.compile(r"^[^\W_][\w .()-]{0,120}$")


@dataclass
class NewJob:
    """What a job starts from, every part checked."""

    brief: Brief
    planner: str = "heuristic"
    song: Path | None = None
    lyrics: Path | None = None
    #: The song as analysed at upload (the job does not analyse it again).
    song_document: dict[str, Any] | None = None


def brief_without_uploads(data: Any) -> Brief:
    """A brief sent as JSON: its reference pictures must come as files, in a form."""
    brief = parse_brief(data, "brief")
    for index, character in enumerate(brief.characters):
        if character.reference is not None:
            raise ApiError(400, f"brief: characters[{index}].reference: send the picture with "
                           "the brief as a multipart form (field `references`, named as "
                           "reference.path names it)", "REFERENCE_NOT_UPLOADED",
                           field=f"characters[{index}].reference")
    return brief


async def read_job_form(form: FormData, folder: Path) -> NewJob:
    """The brief, planner, song, lyrics and references of a multipart form; the files are kept
    in `folder`.

    Raises:
        ApiError: 400/413 naming the form field (and the brief field) at fault.
    """
    if "brief" not in form:
        raise ApiError(400, "brief: required (a YAML or JSON file)", "BRIEF_MISSING",
                       field="brief")
    brief_bytes = await _read(form["brief"], "brief", MAX_BRIEF_BYTES)
    try:
        text = brief_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "brief: not UTF-8 text; save the brief as UTF-8 YAML or JSON",
                       "BRIEF_INVALID", field="brief") from None
    brief = brief_from_text(text, "brief")
    planner = form.get("planner") or "heuristic"
    if planner not in PLANNERS:
        raise ApiError(400, f"planner: {planner!r} is not heuristic or llm", "PLANNER_INVALID",
                       field="planner")
    job = NewJob(brief, str(planner))
    for name, limit in (("song", MAX_SONG_BYTES), ("lyrics", MAX_LYRICS_BYTES)):
        value = form.get(name)
        if value is None or value == "":
            continue
        data = await _read(value, name, limit)
        suffix = Path(_file_name(value, name)).suffix.lower()
        path = _save(folder, name + (suffix if _SUFFIX.match(suffix) else ""), data)
        if name == "song":
            job.song = path
        else:
            job.lyrics = path
    if job.lyrics is not None and job.song is None:
        raise ApiError(400, "lyrics: send the song too; lyrics are placed on it", "SONG_MISSING",
                       field="lyrics")
    await _attach_references(job.brief, form.getlist("references"), folder / "references")
    if job.song is not None:
        job.song_document = await _check_song(job.song, job.lyrics, job.brief)
    return job


async def _attach_references(brief: Brief, values: list[Any], folder: Path) -> None:
    """Each uploaded picture, checked by content, becomes the reference of the character whose
    `reference.path` names it; a picture no character names, or a name no picture answers, is
    refused."""
    if len(values) > MAX_REFERENCES:
        raise ApiError(413, f"references: {len(values)} pictures is over the limit of "
                       f"{MAX_REFERENCES}", "UPLOAD_TOO_LARGE", field="references")
    uploaded: dict[str, Path] = {}
    for value in values:
        data = await _read(value, "references", MAX_REFERENCE_BYTES)
        name = _file_name(value, "references")
        if not _REFERENCE_NAME.match(name):
            raise ApiError(400, f"references: {name!r} is not a usable file name; name the "
                           "picture with letters, digits, spaces, '.', '_', '-' or brackets",
                           "UPLOAD_NAME_INVALID", field="references")
        if name in uploaded:
            raise ApiError(400, f"references: {name} was sent twice", "UPLOAD_DUPLICATE",
                           field="references")
        path = _save(folder, name, data)
        try:
            image_bytes(path, "references")
        except KantokuError as exc:
            raise ApiError(status_of(exc), exc.message.replace(str(path), name), exc.reason,
                           field="references") from None
        uploaded[name] = path
    named = set()
    for index, character in enumerate(brief.characters):
        if character.reference is None:
            continue
        name = Path(str(character.reference.path)).name
        field = f"characters[{index}].reference.path"
        if name not in uploaded:
            raise ApiError(400, f"brief: {field}: {name} was not uploaded; add the picture to "
                           "the form's `references` field", "REFERENCE_NOT_UPLOADED",
                           field=field)
        character.reference.path = uploaded[name]
        named.add(name)
    unused = sorted(set(uploaded) - named)
    if unused:
        raise ApiError(400, f"references: {', '.join(unused)} is named by no character's "
                       "reference.path in the brief", "REFERENCE_UNUSED", field="references")


def _file_name(value: Any, field: str) -> str:
    """The bare name a file was sent under; a name with a path in it is refused."""
    name = value.filename if isinstance(value, UploadFile) else None
    name = name or ""
    if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise ApiError(400, f"{field}: the file name {name!r} holds a path; send the file "
                       "under its bare name", "UPLOAD_NAME_INVALID", field=field)
    return name


async def _read(value: Any, field: str, limit: int) -> bytes:
    if isinstance(value, str):
        data = value.encode()
    elif isinstance(value, UploadFile):
        data = await value.read(limit + 1)
    else:
        raise ApiError(400, f"{field}: send a file", "UPLOAD_INVALID", field=field)
    if len(data) > limit:
        raise ApiError(413, f"{field}: over the limit of {limit} bytes", "UPLOAD_TOO_LARGE",
                       field=field)
    if not data:
        raise ApiError(400, f"{field}: the file is empty", "UPLOAD_EMPTY", field=field)
    return data


def _save(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _named(exc: KantokuError, path: Path, field: str) -> ApiError:
    """The error about an uploaded file, naming the form field instead of where it was saved."""
    message = exc.message.replace(str(path), field)
    if not message.startswith(field):
        message = f"{field}: {message}"
    return ApiError(status_of(exc), message, exc.reason, field=field)


async def _check_song(song: Path, lyrics: Path | None, brief: Brief) -> dict[str, Any]:
    """The song read as the planner reads it (decoded, analysed), and the lyrics placed."""
    from kantoku.planner.music.song import analyze_song
    from kantoku.planner.music.steps import read_song

    try:
        analysis = await asyncio.to_thread(analyze_song, song)
    except KantokuError as exc:
        raise _named(exc, song, "song") from None
    try:
        return await read_song(song, lyrics, brief, analysis)
    except KantokuError as exc:
        raise _named(exc, lyrics or song, "lyrics" if lyrics else "song") from None
