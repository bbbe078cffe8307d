"""The SQLite store's tables, its migrations and how a connection is set up.

The schema version lives in ``PRAGMA user_version``. Each migration is one
script applied in its own transaction together with the new version number,
so a crash mid-migration leaves the previous version intact. A database
newer than this build is refused rather than guessed at.

Times are integer microseconds since the Unix epoch, UTC: plain integers
compare and index well, and one format is used everywhere.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from postroom.errors import StorageError

log = structlog.get_logger()

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_V1 = """
CREATE TABLE messages (
    queue_id       TEXT PRIMARY KEY,
    mail_from      TEXT NOT NULL,
    campaign       TEXT NOT NULL,
    submitted_by   TEXT,
    client_address TEXT NOT NULL,
    message_id     TEXT,
    accepted_at    INTEGER NOT NULL,
    size           INTEGER NOT NULL,
    raw            BLOB,
    final_at       INTEGER
);
CREATE INDEX messages_campaign ON messages (campaign);
CREATE INDEX messages_final ON messages (final_at) WHERE final_at IS NOT NULL;
CREATE INDEX messages_unpurged ON messages (final_at)
    WHERE final_at IS NOT NULL AND raw IS NOT NULL;

CREATE TABLE recipients (
    id              INTEGER PRIMARY KEY,
    queue_id        TEXT NOT NULL
                    REFERENCES messages (queue_id) ON DELETE CASCADE,
    address         TEXT NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    campaign        TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'deferred',
                    'delivered', 'bounced', 'expired', 'suppressed', 'invalid')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    accepted_at     INTEGER NOT NULL,
    next_attempt_at INTEGER,
    updated_at      INTEGER NOT NULL,
    lease_until     INTEGER,
    last_code       INTEGER,
    last_status     TEXT,
    last_reply      TEXT
);
CREATE INDEX recipients_message ON recipients (queue_id);
CREATE INDEX recipients_state ON recipients (state);
CREATE INDEX recipients_campaign_state ON recipients (campaign, state);
-- lease_due and next_due_at walk this index in time order; lease_until is
-- in it so that leased rows are skipped without reading the table. Queries
-- must repeat this exact state term for SQLite to pick the partial index.
CREATE INDEX recipients_due ON recipients (next_attempt_at, lease_until)
    WHERE state IN ('queued', 'deferred');
CREATE INDEX recipients_leased ON recipients (lease_until)
    WHERE lease_until IS NOT NULL;

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    recipient_id INTEGER NOT NULL
                 REFERENCES recipients (id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    mx_host      TEXT,
    code         INTEGER,
    status       TEXT,
    text         TEXT NOT NULL
);
CREATE INDEX attempts_recipient ON attempts (recipient_id, at);
CREATE INDEX attempts_at ON attempts (at);
CREATE INDEX attempts_deferred ON attempts (at) WHERE outcome = 'deferred';

CREATE TABLE bounce_records (
    id           INTEGER PRIMARY KEY,
    recipient_id INTEGER REFERENCES recipients (id) ON DELETE SET NULL,
    address      TEXT NOT NULL,
    campaign     TEXT,
    at           INTEGER NOT NULL,
    action       TEXT NOT NULL,
    code         INTEGER,
    status       TEXT,
    category     TEXT NOT NULL,
    hard         INTEGER NOT NULL,
    diagnostic   TEXT NOT NULL,
    remote_mta   TEXT,
    source       TEXT NOT NULL
);
CREATE INDEX bounce_records_recipient ON bounce_records (recipient_id);
CREATE INDEX bounce_records_at ON bounce_records (at);

CREATE TABLE suppressions (
    scope      TEXT NOT NULL,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, address)
) WITHOUT ROWID;

CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""

# The daily blacklist report: one row per day, claimed by one runner at a
# time (``holder`` until ``claimed_until``) and marked once sent.
_V2 = """
CREATE TABLE daily_reports (
    day           TEXT PRIMARY KEY,
    holder        TEXT,
    claimed_until INTEGER,
    sent_at       INTEGER,
    queue_id      TEXT,
    summary       TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
"""

# Reports that arrive at the inbound listener (DSNs, complaints, mail to
# postmaster), kept with what was made of them.
_V3 = """
CREATE TABLE inbound_reports (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    peer         TEXT NOT NULL,
    mail_from    TEXT NOT NULL,
    rcpts        TEXT NOT NULL,   -- one address a line
    size         INTEGER NOT NULL,
    raw          BLOB NOT NULL,
    kind         TEXT,
    outcome      TEXT NOT NULL DEFAULT 'pending',
    recipient_id INTEGER REFERENCES recipients (id) ON DELETE SET NULL,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX inbound_reports_outcome ON inbound_reports (outcome);
CREATE INDEX inbound_reports_received ON inbound_reports (received_at);
CREATE INDEX messages_message_id ON messages (message_id)
    WHERE message_id IS NOT NULL;
"""

# Results pages and metrics read recipient counts per campaign and state
# from ``campaign_counts``, kept by triggers in the transaction of every
# change: counting a million index entries takes SQLite about half a second,
# reading these rows takes microseconds. ``webhook_outbox`` holds each event
# to post, one row per endpoint, until the endpoint takes it.
_V4 = """
CREATE TABLE campaign_counts (
    campaign TEXT NOT NULL,
    state    TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (campaign, state)
) WITHOUT ROWID;
INSERT INTO campaign_counts (campaign, state, n)
    SELECT campaign, state, COUNT(*) FROM recipients GROUP BY campaign, state;

CREATE TRIGGER campaign_counts_insert AFTER INSERT ON recipients BEGIN
    INSERT INTO campaign_counts (campaign, state, n)
        VALUES (new.campaign, new.state, 1)
        ON CONFLICT (campaign, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER campaign_counts_update AFTER UPDATE OF state, campaign ON recipients
    WHEN old.state IS NOT new.state OR old.campaign IS NOT new.campaign BEGIN
    UPDATE campaign_counts SET n = n - 1
        WHERE campaign = old.campaign AND state = old.state;
    INSERT INTO campaign_counts (campaign, state, n)
        VALUES (new.campaign, new.state, 1)
        ON CONFLICT (campaign, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER campaign_counts_delete AFTER DELETE ON recipients BEGIN
    UPDATE campaign_counts SET n = n - 1
        WHERE campaign = old.campaign AND state = old.state;
END;

CREATE INDEX messages_campaign_accepted ON messages (campaign, accepted_at);

CREATE TABLE webhook_outbox (
    id              INTEGER PRIMARY KEY,
    endpoint        TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at);
"""

# A recipient complains about one message once: ``complained_at`` marks the
# first complaint, so a report sent again is known as a repeat.
_V5 = """
ALTER TABLE recipients ADD COLUMN complained_at INTEGER;
"""

# Index i holds the script that takes the schema from version i to i + 1.
# Append only: a released migration is never edited.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)


def to_db(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch, UTC."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; the store keeps UTC")
    return (moment - _EPOCH) // _MICROSECOND


def from_db(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def from_db_or_none(value: int | None) -> datetime | None:
    return None if value is None else from_db(value)


def address_key(address: str) -> str:
    """The form in which addresses are compared for suppression."""
    # RFC 5321 section 2.4 lets a server treat local parts case-sensitively,
    # but no mailbox provider does, and a suppression must not be dodged by
    # a change of case.
    return address.lower()


def connect(path: Path, *, max_pages: int | None = None) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL,
    ``synchronous=FULL`` so that every commit is on disk before it returns."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    try:
        conn.row_factory = sqlite3.Row
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError(f"{path}: could not switch to WAL mode ({mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        if max_pages is not None:
            conn.execute(f"PRAGMA max_page_count = {int(max_pages)}")
        conn.create_function("address_key", 1, address_key, deterministic=True)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the schema to the newest version; the version it is at now."""
    current: int = conn.execute("PRAGMA user_version").fetchone()[0]
    latest = len(MIGRATIONS)
    if current > latest:
        raise StorageError(
            f"{path} has schema version {current}, newer than the {latest} this "
            "build knows; refusing to use it"
        )
    for version in range(current + 1, latest + 1):
        script = MIGRATIONS[version - 1]
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("store.migrated", path=str(path), version=version)
    return latest
