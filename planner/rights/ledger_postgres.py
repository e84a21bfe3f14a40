"""The ledger in Postgres, so processes on many hosts append to one chain per job.

An append is one transaction: it takes a per-job advisory lock
(``pg_advisory_xact_lock(namespace, hashtext(job_id))``, released at commit or rollback), reads
the job's last entry, and inserts the next one. Writers of the same job, from any process or
host, queue on the lock; writers of other jobs do not wait (two jobs whose ids hash alike only
share a queue). ``PRIMARY KEY (job_id, seq)`` refuses a second entry at a seq should anything
bypass the lock, and triggers refuse UPDATE, DELETE and TRUNCATE: the table is append-only.

Entries are stored as the canonical JSON that was hashed (``body`` is TEXT, not JSONB, which
would re-encode numbers and key order), so what is read back verifies byte for byte.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kantoku.planner.rights.ledger import EntryBuilder, Ledger, LedgerEntry, canonical_json
from kantoku.services._core.errors import KantokuError, unavailable

#: First key of the advisory locks the ledger takes; other users of advisory locks in the same
#: database pick other keys.
LOCK_NAMESPACE = 0x6B616E  # "kan"
#: Seconds to wait for the server when connecting, and for a free pooled connection.
CONNECT_TIMEOUT_S = 10
#: Connections one ledger object keeps (a studio appends for several jobs at once).
POOL_MAX = 4

_SCHEMA = f"""
SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, 0);
CREATE TABLE IF NOT EXISTS kantoku_ledger (
    job_id TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE OR REPLACE FUNCTION kantoku_ledger_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only';
END $$;
CREATE OR REPLACE TRIGGER kantoku_ledger_no_change BEFORE UPDATE OR DELETE ON kantoku_ledger
    FOR EACH ROW EXECUTE FUNCTION kantoku_ledger_append_only();
CREATE OR REPLACE TRIGGER kantoku_ledger_no_truncate BEFORE TRUNCATE ON kantoku_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION kantoku_ledger_append_only();
"""


def redact(url: str) -> str:
    """`url` without its password, for messages."""
    url = re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)
    return re.sub(r"(password=)[^&]*", r"\1***", url)


class PostgresLedger(Ledger):
    """The ledger in a Postgres database (table ``kantoku_ledger``, created when missing)."""

    def __init__(self, url: str, *, setting: str = "KANTOKU_LEDGER_URL") -> None:
        """Connect, create the table when missing, and keep a small pool of connections.

        Args:
            url: a ``postgresql://`` URL (libpq's form; ``?host=/dir`` for a Unix socket).
            setting: the setting `url` came from, named in errors.

        Raises:
            KantokuError: POSTGRES_MISSING without psycopg; LEDGER_UNAVAILABLE, naming
                `setting`, when the server cannot be reached or refuses the login.
        """
        try:
            import psycopg
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError:
            raise KantokuError(f"{setting} is a Postgres URL, which needs "
                               "`pip install kantoku[postgres]`", "POSTGRES_MISSING") from None
        self.url, self.setting = url, setting
        #: What a lost or unreachable server raises.
        self._lost: tuple[type[Exception], ...] = (psycopg.OperationalError,
                                                   psycopg.InterfaceError, PoolTimeout)
        try:
            with psycopg.connect(url, autocommit=True,
                                 connect_timeout=CONNECT_TIMEOUT_S) as conn, conn.transaction():
                conn.execute(_SCHEMA)
        except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # or a bad URL
            raise self._unreachable(exc) from None
        self._pool = ConnectionPool(url, min_size=1, max_size=POOL_MAX, timeout=CONNECT_TIMEOUT_S,
                                    kwargs={"autocommit": True,
                                            "connect_timeout": CONNECT_TIMEOUT_S},
                                    check=ConnectionPool.check_connection, open=True,
                                    name="kantoku-ledger")

    def _unreachable(self, exc: BaseException) -> KantokuError:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return unavailable(f"ledger: cannot open the Postgres ledger at {redact(self.url)} "
                           f"({detail}); check {self.setting}", reason="LEDGER_UNAVAILABLE")

    def _run(self, work: Any) -> Any:
        """`work(connection)` on a pooled connection; a lost server becomes LEDGER_UNAVAILABLE."""
        try:
            with self._pool.connection() as conn:
                return work(conn)
        except self._lost as exc:
            raise self._unreachable(exc) from None

    def _append(self, job_id: str, build: EntryBuilder) -> LedgerEntry:
        def work(conn: Any) -> LedgerEntry:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                             (LOCK_NAMESPACE, job_id))
                last = conn.execute("SELECT seq, hash FROM kantoku_ledger WHERE job_id = %s "
                                    "ORDER BY seq DESC LIMIT 1", (job_id,)).fetchone()
                entry = build((int(last[0]), str(last[1])) if last else None)
                conn.execute("INSERT INTO kantoku_ledger (job_id, seq, hash, body) "
                             "VALUES (%s, %s, %s, %s)",
                             (job_id, entry.seq, entry.hash, canonical_json(entry.as_dict())))
            return entry

        result: LedgerEntry = self._run(work)
        return result

    def entries(self, job_id: str) -> list[dict[str, Any]]:
        rows = self._run(lambda conn: conn.execute(
            "SELECT body FROM kantoku_ledger WHERE job_id = %s ORDER BY seq", (job_id,)).fetchall())
        return [json.loads(body) for (body,) in rows]

    def jobs(self) -> list[str]:
        rows = self._run(lambda conn: conn.execute(
            "SELECT DISTINCT job_id FROM kantoku_ledger ORDER BY job_id").fetchall())
        return [job_id for (job_id,) in rows]

    def close(self) -> None:
        self._pool.close()
