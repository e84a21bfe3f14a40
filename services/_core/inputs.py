"""Files a user hands in, checked at the door.

A reference picture named in a brief must lie inside the brief's folder or one of the folders in
`KANTOKU_REFERENCE_ROOTS` (`os.pathsep`-separated), judged after every symlink is followed, so a
`../` path or a link that leads out is refused. Every input file must be a regular file (not a
device, a FIFO or a folder), and a picture must be one by its content: Pillow reads and verifies
it, within a byte and pixel limit, so neither `/etc/passwd` nor a decompression bomb gets in.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from kantoku.services._core.errors import invalid, not_found

#: Folders (besides the brief's own) that references may come from.
REFERENCE_ROOTS_ENV = "KANTOKU_REFERENCE_ROOTS"
#: Largest reference picture, in bytes and in pixels (a 6000×6000 photo fits).
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
#: What a reference picture may be.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")


def regular_file(path: Path, field: str) -> Path:
    """`path` with every symlink followed, when what it names is a regular file.

    Raises:
        KantokuError: NOT_FOUND when nothing is there; INVALID_ARGUMENT (`NOT_A_FILE`) for a
            folder, a device, a FIFO or a socket, which could hang or leak when read.
    """
    try:
        real = Path(path).expanduser().resolve(strict=True)
        mode = real.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise not_found(f"{field}: {path} does not exist; check the path",
                        reason="FILE_NOT_FOUND", path=str(path)) from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a permission error
        raise invalid(f"{field}: {path} cannot be read ({exc.__class__.__name__}); check the path",
                      reason="NOT_A_FILE", path=str(path)) from None
    if not stat.S_ISREG(mode):
        raise invalid(f"{field}: {path} is not a regular file (a folder, device or pipe); pass "
                      "a file", reason="NOT_A_FILE", path=str(path))
    return real


def reference_roots(folder: Path | None) -> list[Path]:
    """Where reference pictures may come from: `folder` and `KANTOKU_REFERENCE_ROOTS`."""
    roots = [folder] if folder is not None else []
    roots += [Path(p) for p in os.environ.get(REFERENCE_ROOTS_ENV, "").split(os.pathsep) if p]
    return [r.expanduser().resolve() for r in roots]


def inside_roots(path: Path, field: str, roots: list[Path]) -> Path:
    """The real path of `path` when it is a regular file inside one of `roots`.

    Raises:
        KantokuError: INVALID_ARGUMENT (`REFERENCE_OUTSIDE_ROOTS`) naming `field` and the rule.
    """
    real = regular_file(path, field)
    if not any(real.is_relative_to(root) for root in roots):
        raise invalid(f"{field}: {path} is outside the brief's folder (symlinks followed); move "
                      f"the picture beside the brief or add its folder to {REFERENCE_ROOTS_ENV}",
                      reason="REFERENCE_OUTSIDE_ROOTS", path=str(path))
    return real


def image_bytes(path: Path, field: str) -> tuple[bytes, str]:
    """The bytes and media type of the picture at `path`, once Pillow has read and verified them.

    Raises:
        KantokuError: INVALID_ARGUMENT naming `field`: `NOT_A_FILE`, `IMAGE_TOO_LARGE` (bytes or
            pixels over the limit) or `NOT_AN_IMAGE` (not a PNG, JPEG or WebP, or damaged).
    """
    real = regular_file(path, field)
    if real.stat().st_size > MAX_IMAGE_BYTES:
        raise invalid(f"{field}: {path} is over {MAX_IMAGE_BYTES // 2**20} MB; pass a smaller "
                      "picture", reason="IMAGE_TOO_LARGE", path=str(path))
    data = real.read_bytes()
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            width, height = image.size
            media_type = Image.MIME.get(image.format or "", "application/octet-stream")
            if width * height > MAX_IMAGE_PIXELS:
                raise invalid(f"{field}: {path} is {width}×{height} pixels, over the limit of "
                              f"{MAX_IMAGE_PIXELS:,}; pass a smaller picture",
                              reason="IMAGE_TOO_LARGE", path=str(path))
            image.verify()
    except Image.DecompressionBombError:  # Pillow's own limit, met before ours
        raise invalid(f"{field}: {path} has more pixels than Pillow will decode (a "
                      f"decompression bomb?); the limit is {MAX_IMAGE_PIXELS:,}",
                      reason="IMAGE_TOO_LARGE", path=str(path)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise invalid(f"{field}: {path} is not a {', '.join(IMAGE_FORMATS)} picture (or it is "
                      "damaged); pass an image file", reason="NOT_AN_IMAGE",
                      path=str(path)) from None
    return data, media_type
