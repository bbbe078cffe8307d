"""The PostgreSQL store's tables and their versioned migrations.

The versions applied are rows of ``schema_migrations``. Migrating takes a
transaction-scoped advisory lock first, so two nodes that start at once
do not both apply a migration: the second waits, then finds nothing left
to do. Every migration of one run commits together with its version rows
(PostgreSQL's DDL is transactional), so a failure leaves the schema as it
was. A database whose newest version is past this build's is refused,
never touched.

Times are ``timestamptz`` (microseconds, UTC); message bodies are
``bytea`` in the database, so every node can deliver every message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import structlog

from postroom.errors import StorageError

if TYPE_CHECKING:
    from postroom.queue.postgres_sql import Conn

log = structlog.get_logger()

# The advisory lock key that serialises migrations cluster-wide; any fixed
# 64-bit number works as long as nothing else in the database uses it.
MIGRATION_LOCK = 0x706F7374726F6F6D  # "postroom"

_V1 = """
CREATE TABLE messages (
    queue_id       text PRIMARY KEY,
    mail_from      text NOT NULL,
    campaign       text NOT NULL,
    submitted_by   text,
    client_address text NOT NULL,
    message_id     text,
    accepted_at    timestamptz NOT NULL,
    size           integer NOT NULL,
    raw            bytea,
    final_at       timestamptz
);
CREATE INDEX messages_campaign ON messages (campaign);
CREATE INDEX messages_final ON messages (final_at) WHERE final_at IS NOT NULL;
CREATE INDEX messages_message_id ON messages (message_id)
    WHERE message_id IS NOT NULL;

CREATE TABLE recipients (
    id              bigserial PRIMARY KEY,
    queue_id        text NOT NULL
                    REFERENCES messages (queue_id) ON DELETE CASCADE,
    address         text NOT NULL,
    address_key     text NOT NULL,  -- the form suppressions are matched in
    display_name    text NOT NULL DEFAULT '',
    campaign        text NOT NULL,
    state           text NOT NULL CHECK (state IN ('queued', 'deferred',
                    'delivered', 'bounced', 'expired', 'suppressed', 'invalid')),
    attempts        integer NOT NULL DEFAULT 0,
    accepted_at     timestamptz NOT NULL,
    next_attempt_at timestamptz,
    updated_at      timestamptz NOT NULL,
    lease_until     timestamptz,
    lease_holder    text,          -- the node id that leased it
    last_code       integer,
    last_status     text,
    last_reply      text
);
CREATE INDEX recipients_message ON recipients (queue_id);
CREATE INDEX recipients_campaign_state ON recipients (campaign, state);
CREATE INDEX recipients_state ON recipients (state);
CREATE INDEX recipients_due ON recipients (next_attempt_at)
    WHERE state IN ('queued', 'deferred');
CREATE INDEX recipients_leased ON recipients (lease_until)
    WHERE lease_until IS NOT NULL;

CREATE TABLE attempts (
    id           bigserial PRIMARY KEY,
    recipient_id bigint NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    outcome      text NOT NULL,
    mx_host      text,
    code         integer,
    status       text,
    text         text NOT NULL
);
CREATE INDEX attempts_recipient ON attempts (recipient_id, at);
CREATE INDEX attempts_at ON attempts (at);

CREATE TABLE bounce_records (
    id           bigserial PRIMARY KEY,
    recipient_id bigint REFERENCES recipients (id) ON DELETE SET NULL,
    address      text NOT NULL,
    campaign     text,
    at           timestamptz NOT NULL,
    action       text NOT NULL,
    code         integer,
    status       text,
    category     text NOT NULL,
    hard         boolean NOT NULL,
    diagnostic   text NOT NULL,
    remote_mta   text,
    source       text NOT NULL
);
CREATE INDEX bounce_records_recipient ON bounce_records (recipient_id);
CREATE INDEX bounce_records_at ON bounce_records (at);

CREATE TABLE suppressions (
    scope      text NOT NULL,
    address    text NOT NULL,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (scope, address)
);

CREATE TABLE secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE daily_reports (
    day           text PRIMARY KEY,
    holder        text,
    claimed_until timestamptz,
    sent_at       timestamptz,
    queue_id      text,
    summary       text NOT NULL DEFAULT ''
);

CREATE TABLE inbound_reports (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    peer         text NOT NULL,
    mail_from    text NOT NULL,
    rcpts        text NOT NULL,   -- one address a line
    size         integer NOT NULL,
    raw          bytea NOT NULL,
    kind         text,
    outcome      text NOT NULL DEFAULT 'pending',
    recipient_id bigint REFERENCES recipients (id) ON DELETE SET NULL,
    detail       text NOT NULL DEFAULT ''
);
CREATE INDEX inbound_reports_outcome ON inbound_reports (outcome);
CREATE INDEX inbound_reports_received ON inbound_reports (received_at);
"""

# Results pages and metrics read recipient counts per campaign and state
# from ``campaign_counts``, written by triggers in the transaction of every
# change to ``recipients``. Counting a campaign of a million rows would scan
# a million index entries.
#
# The triggers only ever insert signed deltas, never update a counter in
# place: one counter row per (campaign, state) would be locked by every
# accept and every attempt of that campaign until its commit, so nodes
# would deliver one recipient at a time per campaign and concurrent accepts
# could no longer share a WAL flush. Deltas are summed when read and folded
# into one row per (campaign, state) from time to time (see
# `postroom.queue.postgres_results.fold_counts`).
#
# The triggers are created before the counts are taken: creating them
# locks ``recipients`` against writers until this migration commits, so no
# change can fall between the count and the first trigger.
#
# ``webhook_outbox`` holds each event to post, one row per endpoint, until
# the endpoint takes it.
_V2 = """
CREATE TABLE campaign_counts (
    campaign text NOT NULL,
    state    text NOT NULL,
    n        bigint NOT NULL
);
CREATE INDEX campaign_counts_campaign ON campaign_counts (campaign, state);

CREATE FUNCTION campaign_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_counts (campaign, state, n)
        SELECT campaign, state, count(*) FROM added GROUP BY campaign, state;
    RETURN NULL;
END
$$;
CREATE TRIGGER campaign_counts_insert AFTER INSERT ON recipients
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_counts_added();

CREATE FUNCTION campaign_counts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_counts (campaign, state, n)
        SELECT campaign, state, -count(*) FROM removed GROUP BY campaign, state;
    RETURN NULL;
END
$$;
CREATE TRIGGER campaign_counts_delete AFTER DELETE ON recipients
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_counts_removed();

-- Per row, and only for a real change: recipients change state one at a
-- time, and most updates (leases, retry times) leave the state alone.
CREATE FUNCTION campaign_counts_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_counts (campaign, state, n)
        VALUES (old.campaign, old.state, -1), (new.campaign, new.state, 1);
    RETURN NULL;
END
$$;
CREATE TRIGGER campaign_counts_update AFTER UPDATE OF state, campaign ON recipients
    FOR EACH ROW WHEN (old.state IS DISTINCT FROM new.state
                       OR old.campaign IS DISTINCT FROM new.campaign)
    EXECUTE FUNCTION campaign_counts_moved();

INSERT INTO campaign_counts (campaign, state, n)
    SELECT campaign, state, count(*) FROM recipients GROUP BY campaign, state;

CREATE INDEX messages_campaign_accepted ON messages (campaign, accepted_at);

CREATE TABLE webhook_outbox (
    id              bigserial PRIMARY KEY,
    endpoint        text NOT NULL,
    event_id        text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at, id);
"""

# A recipient complains about one message once: ``complained_at`` marks the
# first complaint, so a report sent again is known as a repeat.
_V3 = """
ALTER TABLE recipients ADD COLUMN complained_at timestamptz;
"""

# Index i holds the script that takes the schema from version i to i + 1.
# Append only: a released migration is never edited.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)

_CREATE_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def schema_version(conn: Conn) -> int:
    """The newest migration applied to the database (0 for an empty one)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations')")
    if exists is None:
        return 0
    version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
    return int(version or 0)


async def migrate(conn: Conn, where: str) -> int:
    """Bring the schema to the newest version; the version it is at now.

    Raises `StorageError` for a database newer than this build, without
    changing it. ``where`` names the database in messages and logs.
    """
    latest = len(MIGRATIONS)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(_CREATE_VERSIONS)
        current = await schema_version(conn)
        if current > latest:
            raise StorageError(
                f"{where} has schema version {current}, newer than the {latest} "
                "this build knows; refusing to use it"
            )
        for version in range(current + 1, latest + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)", version
            )
            log.info("store.migrated", database=where, version=version)
    return latest


async def migrate_database(url: str, where: str) -> tuple[int, int]:
    """Connect to ``url`` and migrate; the versions before and after.

    Driver and connection errors leave as `StorageError`.
    """
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise StorageError(f"cannot connect to {where}: {exc}") from exc
    try:
        before = await schema_version(conn)
        after = await migrate(conn, where)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StorageError(f"cannot migrate {where}: {exc}") from exc
    finally:
        await conn.close()
    return before, after
