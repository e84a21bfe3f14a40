"""Who may write where: one job per output folder, one process per job and per folder.

An output folder belongs to the job its `job.json` names. `claim_folder` refuses a folder that
holds another job's outputs (or files that are not a job's at all), so two jobs never mix their
files and a reused folder never keeps stale ones. `hold_job` and `hold_folder` take OS file
locks under `$KANTOKU_HOME/locks/`, keyed by the job id and by the folder's path: a second
`kantoku mv`, `resume` or `edit` on the same job or folder is refused before it touches
anything. The locks are `flock` locks (through `filelock`), which the kernel drops when the
process dies, so a `kill -9` never leaves a job locked.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from kantoku.services._core.errors import invalid, unavailable
from kantoku.services._core.settings import core_settings

JOB_FILE = "job.json"
LOCKS_DIR = "locks"


def folder_job(folder: Path) -> str | None:
    """The job id `folder/job.json` names, or None when there is none (or it is unreadable)."""
    try:
        document = json.loads((Path(folder) / JOB_FILE).read_text())
    except (OSError, ValueError):
        return None
    job_id = document.get("job_id") if isinstance(document, dict) else None
    return job_id if isinstance(job_id, str) else None


def claim_folder(folder: Path, job_id: str, *, todo: str = "pass another --out") -> None:
    """Raises INVALID_REQUEST unless `folder` is missing, empty or holds `job_id`'s outputs.

    Args:
        folder: the job's output folder.
        job_id: the job that is about to write into it.
        todo: what the user should do instead, for the message.

    Raises:
        KantokuError: FOLDER_TAKEN naming the folder and the job it holds; FOLDER_NOT_EMPTY
            for a folder with files of no job; OUT_NOT_A_FOLDER for a file.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise invalid(f"{folder} is a file, not a folder; {todo}", reason="OUT_NOT_A_FOLDER",
                      path=str(folder))
    owner = folder_job(folder)
    if owner == job_id or not any(folder.iterdir()):
        return
    if owner is not None:
        raise invalid(f"{folder} holds job {owner}; {todo}, or run `kantoku resume {owner}` to "
                      "finish that job", reason="FOLDER_TAKEN", path=str(folder), job_id=owner)
    raise invalid(f"{folder} is not empty and holds no kantoku job; {todo} (a new or empty "
                  "folder)", reason="FOLDER_NOT_EMPTY", path=str(folder))


@contextmanager
def hold_job(job_id: str) -> Iterator[None]:
    """Hold job `job_id`'s lock for the block; refuse at once if another process holds it.

    Raises:
        KantokuError: UNAVAILABLE (JOB_RUNNING) naming the job and the process that runs it.
    """
    with _lock(f"job:{job_id}", job_id, "JOB_RUNNING", lambda _, pid: (
            f"job {job_id} is already running in process {pid}; wait for it or stop it")):
        yield


@contextmanager
def hold_folder(folder: Path, job_id: str) -> Iterator[None]:
    """Hold the lock of output folder `folder` for job `job_id`; refuse at once if taken.

    Raises:
        KantokuError: UNAVAILABLE (FOLDER_IN_USE) naming the folder, the job and the process
            that writes into it.
    """
    path = Path(folder).resolve()
    with _lock(f"folder:{path}", job_id, "FOLDER_IN_USE", lambda job, pid: (
            f"{path} is in use by job {job} in process {pid}; wait for it or stop it, or pass "
            "another --out")):
        yield


@contextmanager
def _lock(key: str, job_id: str, reason: str,
          message: Callable[[str, str], str]) -> Iterator[None]:
    locks = core_settings().home_dir / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(key.encode()).hexdigest()[:32]
    lock = FileLock(locks / f"{name}.lock", timeout=0)
    # The lock file itself is truncated by every attempt, so the holder is told in a sidecar.
    holder = locks / f"{name}.holder"
    try:
        lock.acquire()
    except Timeout:
        raise unavailable(message(*_holder(holder)), reason=reason) from None
    try:
        holder.write_text(json.dumps({"pid": os.getpid(), "job_id": job_id}))
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _holder(path: Path) -> tuple[str, str]:
    """(job id, process id) of the lock's holder, as it wrote them, or "unknown"."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        document = {}
    return str(document.get("job_id", "unknown")), str(document.get("pid", "unknown"))
