"""Append-only, hash-chained provenance ledger of every job, in SQLite or Postgres.

Each job has its own chain. An entry holds what one step did (usually a service's
ProvenanceRecord as a JSON dict) and is linked to the entry before it:

* ``seq`` counts the job's entries from 1;
* ``prev_hash`` is the previous entry's ``hash`` (64 zeros for the first entry);
* ``hash`` is the sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of every other
  field of the entry.

Editing an entry breaks its hash; removing or reordering entries breaks the ``prev_hash`` link
of the entry after the gap. Removing entries at the end of a chain leaves it intact, so the last
hash must be anchored elsewhere (the ``sign`` step signs it).

Entry kinds are free strings; kantoku writes the ones in :data:`KINDS`.

:class:`Ledger` is the one API; :func:`open_ledger` picks its store from ``KANTOKU_LEDGER_URL``:
a ``postgresql://`` URL gives :class:`~kantoku.planner.rights.ledger_postgres.PostgresLedger`
(many hosts, one chain per job), anything else the :class:`SqliteLedger` file (one host).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic_settings import BaseSettings, SettingsConfigDict

from kantoku.services._core.errors import invalid
from kantoku.services._core.settings import core_settings

#: Kinds kantoku writes, with what each entry's ``record`` / ``data`` holds:
#: plan (``data["plan"]``: the Plan as JSON), llm_call (model, prompt and response digests),
#: plan_gate (one quality-gate round of an LLM plan: each check, passed or its problems),
#: policy (the PolicyReport), image, video, tts, motion (a service's ProvenanceRecord),
#: assemble (the final edit's record), sign (the signature over the chain's last hash),
#: song (the song file and its rights), repair (a plan repair), fallback (a model replaced by
#: another), cache (an asset reused from the cache).
KINDS: tuple[str, ...] = ("plan", "llm_call", "plan_gate", "policy", "image", "video", "tts",
                          "motion", "assemble", "sign", "song", "repair", "fallback", "cache",
                          "plan_edit")
GENESIS_HASH = "0" * 64
#: Seconds a writer waits for another writer (another thread or process) to commit.
BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""


@dataclass(frozen=True)
class LedgerEntry:
    """One link of a job's chain; ``as_dict()`` is what is stored, exported and verified."""

    job_id: str
    seq: int
    timestamp: str
    kind: str
    shot_id: str | None
    cache_hit: bool
    record: dict[str, Any] | None
    data: dict[str, Any] | None
    prev_hash: str
    hash: str = field(default="")

    def as_dict(self) -> dict[str, Any]:
        """The entry as a plain JSON-ready dict, ``hash`` included."""
        return asdict(self)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 characters kept, NaN and infinities refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of every field of `entry` except ``hash``.

    Args:
        entry: a ledger entry as a dict.

    Returns:
        The lowercase hex digest the entry's ``hash`` field must hold.
    """
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


#: Builds the next entry from the job's last ``(seq, hash)`` (None: the chain is empty).
EntryBuilder = Callable[[tuple[int, str] | None], LedgerEntry]


class Ledger(ABC):
    """The ledger API every store implements; one object serves threads and asyncio tasks.

    A store's :meth:`_append` must, in one transaction that excludes every other writer of the
    same job (other threads, processes or hosts), read the job's last entry, build the next one
    from it and insert it; then concurrent appends each get a distinct ``seq`` and the chain
    stays unbroken.
    """

    def append(self, job_id: str, kind: str, *, shot_id: str | None = None,
               cache_hit: bool = False, record: dict[str, Any] | None = None,
               data: dict[str, Any] | None = None) -> LedgerEntry:
        """Add one entry at the end of `job_id`'s chain.

        Args:
            job_id: the job the entry belongs to.
            kind: what happened (see :data:`KINDS`; any non-empty string is accepted).
            shot_id: the shot the step worked on, when it worked on one.
            cache_hit: the output was reused from the cache rather than made again.
            record: the step's ProvenanceRecord as ``json_format.MessageToDict`` returns it.
            data: any other JSON-ready facts about the step.

        Returns:
            The stored entry, with its ``seq``, ``prev_hash`` and ``hash``.

        Raises:
            KantokuError: INVALID_REQUEST when `job_id` or `kind` is empty or `record`/`data`
                is not JSON-serializable; UNAVAILABLE when the store cannot be reached.
        """
        if not job_id or not kind:
            raise invalid("ledger: job_id and kind must not be empty", reason="LEDGER_INVALID")
        try:  # a JSON round trip first, so what is hashed is exactly what is read back
            record, data = json.loads(json.dumps([record, data], allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise invalid(f"ledger: the {kind} entry is not JSON-serializable ({exc})",
                          reason="LEDGER_INVALID") from None

        def build(last: tuple[int, str] | None) -> LedgerEntry:
            seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
            entry = LedgerEntry(job_id=job_id, seq=seq, kind=kind, shot_id=shot_id,
                                cache_hit=bool(cache_hit), record=record, data=data,
                                prev_hash=prev_hash,
                                timestamp=datetime.now(UTC).isoformat(timespec="microseconds"))
            return replace(entry, hash=entry_hash(entry.as_dict()))

        return self._append(job_id, build)

    async def append_async(self, job_id: str, kind: str, *, shot_id: str | None = None,
                           cache_hit: bool = False, record: dict[str, Any] | None = None,
                           data: dict[str, Any] | None = None) -> LedgerEntry:
        """:meth:`append` in a worker thread, so waiting for the write lock blocks no event loop."""
        return await asyncio.to_thread(self.append, job_id, kind, shot_id=shot_id,
                                       cache_hit=cache_hit, record=record, data=data)

    @abstractmethod
    def _append(self, job_id: str, build: EntryBuilder) -> LedgerEntry:
        """Lock `job_id`'s chain, build the next entry from its last one, store it, unlock."""

    @abstractmethod
    def entries(self, job_id: str) -> list[dict[str, Any]]:
        """Every entry of `job_id` in chain order, as stored (empty for an unknown job)."""

    @abstractmethod
    def jobs(self) -> list[str]:
        """Ids of every job with at least one entry."""

    def export_jsonl(self, job_id: str, path: Path) -> int:
        """Write `job_id`'s chain to `path`, one canonical JSON entry a line.

        Args:
            job_id: the job to export.
            path: the JSONL file to write (replaced when it exists).

        Returns:
            How many entries were written.
        """
        entries = self.entries(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(canonical_json(e) + "\n" for e in entries), encoding="utf-8")
        return len(entries)

    def close(self) -> None:  # noqa: B027 (a store without connections has nothing to close)
        """Release the store's connections (the object is not used again)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class SqliteLedger(Ledger):
    """The ledger in one SQLite file, for one host; every method opens its own connection.

    Appends take SQLite's write lock first (``BEGIN IMMEDIATE``), read the job's last entry and
    insert the next one in the same transaction, so concurrent writers from threads, asyncio
    tasks (:meth:`append_async`) or other processes on the host each get a distinct ``seq``.
    """

    def __init__(self, path: Path | None = None) -> None:
        """Open (and create when missing) the ledger.

        Args:
            path: the SQLite file; ``$KANTOKU_HOME/ledger.sqlite`` when not given.
        """
        self.path = path if path is not None else core_settings().home_dir / "ledger.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def _append(self, job_id: str, build: EntryBuilder) -> LedgerEntry:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                last = conn.execute("SELECT seq, hash FROM entries WHERE job_id = ? "
                                    "ORDER BY seq DESC LIMIT 1", (job_id,)).fetchone()
                entry = build((int(last[0]), str(last[1])) if last else None)
                conn.execute("INSERT INTO entries (job_id, seq, hash, body) VALUES (?, ?, ?, ?)",
                             (job_id, entry.seq, entry.hash, canonical_json(entry.as_dict())))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return entry

    def entries(self, job_id: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT body FROM entries WHERE job_id = ? ORDER BY seq",
                                (job_id,)).fetchall()
        return [json.loads(body) for (body,) in rows]

    def jobs(self) -> list[str]:
        with self._connect() as conn:
            rows = conn.execute("SELECT DISTINCT job_id FROM entries ORDER BY job_id").fetchall()
        return [job_id for (job_id,) in rows]


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KANTOKU_", extra="ignore")

    #: `postgresql://...` for one ledger shared by many hosts; a file path for SQLite; empty:
    #: the checkpoint URL when that is a Postgres one, else ledger.sqlite under KANTOKU_HOME.
    ledger_url: str = ""
    #: The job checkpoints' store (see planner.jobs.JobSettings).
    checkpoint_url: str = ""


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def ledger_location(settings: LedgerSettings | None = None) -> tuple[str, str]:
    """Where the ledger lives and the setting that says so: ``(url or path, setting name)``.

    A Postgres checkpoint URL is the ledger's too unless KANTOKU_LEDGER_URL says otherwise:
    hosts that share checkpoints but keep the ledger in a file of their own would each write
    part of a job's chain.
    """
    settings = settings or LedgerSettings()
    if settings.ledger_url:
        return settings.ledger_url, "KANTOKU_LEDGER_URL"
    if is_postgres_url(settings.checkpoint_url):
        return settings.checkpoint_url, "KANTOKU_CHECKPOINT_URL"
    return str(core_settings().home_dir / "ledger.sqlite"), "KANTOKU_HOME"


def open_ledger(url: str = "") -> Ledger:
    """The ledger this installation is configured for; everything that writes or reads it
    opens it here.

    Args:
        url: a ``postgresql://`` URL or a SQLite file path; empty: the settings decide (see
            :func:`ledger_location`).

    Returns:
        A :class:`PostgresLedger` for a Postgres URL, else a :class:`SqliteLedger`.

    Raises:
        KantokuError: UNAVAILABLE naming the setting when the Postgres server cannot be
            reached; POSTGRES_MISSING when psycopg is not installed.
    """
    location, setting = (url, "url") if url else ledger_location()
    if is_postgres_url(location):
        from kantoku.planner.rights.ledger_postgres import PostgresLedger

        return PostgresLedger(location, setting=setting)
    return SqliteLedger(Path(location))


def chain_head(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`{"seq", "hash"}` of the last entry, what a signature anchors the chain to (None: none)."""
    return {"seq": entries[-1]["seq"], "hash": entries[-1]["hash"]} if entries else None


def verify_entries(entries: list[dict[str, Any]]) -> list[str]:
    """Check one job's chain.

    Args:
        entries: the job's entries in order, as :meth:`Ledger.entries` returns them.

    Returns:
        One line per problem, naming the entry's seq and what is wrong; empty when intact.
    """
    problems: list[str] = []
    prev_hash, prev_seq, job_id = GENESIS_HASH, 0, None
    for index, entry in enumerate(entries):
        seq = entry.get("seq")
        where = f"seq {seq}" if isinstance(seq, int) else f"entry {index + 1} (no seq)"
        problems.extend(f"{where}: {p}" for p in _entry_problems(entry, prev_hash, prev_seq))
        if job_id is None:
            job_id = entry.get("job_id")
        elif entry.get("job_id") != job_id:
            problems.append(f"{where}: job_id {entry.get('job_id')!r} differs from {job_id!r}; "
                            "entries of another job were mixed in")
        prev_hash = str(entry.get("hash", ""))
        prev_seq = seq if isinstance(seq, int) else prev_seq + 1
    return problems


def _entry_problems(entry: dict[str, Any], prev_hash: str, prev_seq: int) -> list[str]:
    problems = []
    try:
        digest = entry_hash(entry)
    except (TypeError, ValueError):
        digest = ""
    if entry.get("hash") != digest:
        problems.append("hash mismatch: the entry was edited after it was written")
    if entry.get("seq") != prev_seq + 1:
        problems.append(f"seq should be {prev_seq + 1}: an entry is missing or out of order")
    if entry.get("prev_hash") != prev_hash:
        before = f"seq {prev_seq}" if prev_seq else "the start of the chain"
        problems.append(f"prev_hash does not match the hash of {before}: an entry before it "
                        "was removed, inserted or reordered")
    return problems


def verify_jsonl(path: Path) -> list[str]:
    """Check a chain exported by :meth:`Ledger.export_jsonl`.

    Args:
        path: the JSONL file.

    Returns:
        The problems :func:`verify_entries` finds, plus lines that are not JSON objects
        (named by line number); empty when the chain is intact.
    """
    entries, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            problems.append(f"line {number}: not a ledger entry (a JSON object)")
            continue
        entries.append(value)
    return problems + verify_entries(entries)
