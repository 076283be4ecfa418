"""Tables every service has in its own schema: outbox, inbox and idempotency keys.

They are defined once here; each service's first migration creates them in its schema (the
shape of version 1, `plumbing_metadata_v1`), later migrations bring them to this shape
(`common.migrations.outbox_v2`).

The outbox (version 2) is written once and never updated: which rows still wait for the relay
is the narrow `outbox_pending` (ids only), filled by a statement trigger on the outbox, so
every writer (`common.outbox.add_rows`, a set-based INSERT … SELECT, a test's INSERT) queues
its rows without knowing it; the relay deletes a row's id once Kafka acknowledged it.
Marking ~1 KB rows published by an UPDATE copied each of them (docs/benchmarks.md
"Outbox relay" has the measurements).

Version 3 adds the view `outbox_messages` (a row's messages, one view row each: a group's
from its JSON array, `common.outbox`), the way to read an outbox by message (its event id,
key, type, bytes), and stores payloads over ~2 KB (groups) compressed by lz4, not pglz.
"""

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB


def outbox_table(metadata: MetaData) -> Table:
    """The outbox as it is now (version 2), with its pending queue and the trigger filling it
    (created with the table by `create_all`, as in the tests' own schemas)."""
    table = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        # The serialised envelope, sent as is; or a group of them (common.outbox.packed).
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    outbox_pending_table(metadata)
    schema = metadata.schema or "public"
    for statement in [*outbox_queue_ddl(schema), *outbox_messages_ddl(schema)]:
        event.listen(table, "after_create", DDL(statement))  # type: ignore[no-untyped-call]
    return table


def outbox_pending_table(metadata: MetaData) -> Table:
    """The ids of outbox rows not yet acknowledged by Kafka, nothing else."""
    return Table("outbox_pending", metadata, Column("id", BigInteger, primary_key=True))


def outbox_queue_ddl(schema: str) -> list[str]:
    """The statement trigger that queues every inserted outbox row. A statement trigger with
    a transition table costs one INSERT … SELECT per statement (a COPY of 100,000 rows
    included), not one call per row."""
    s = f'"{schema}"'
    return [
        f"""CREATE OR REPLACE FUNCTION {s}.outbox_queue() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO {s}.outbox_pending (id) SELECT id FROM new_rows;
              RETURN NULL;
            END $$""",
        f"""CREATE TRIGGER outbox_queue AFTER INSERT ON {s}.outbox
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.outbox_queue()""",
    ]


def outbox_messages_ddl(schema: str) -> list[str]:
    """Outbox version 3: the view of every row's messages, and lz4 for the payloads PostgreSQL
    compresses (only those over ~2 KB: groups of messages).

    A row that is one message is its own view row (`position` 1); a group (its payload a JSON
    array, `common.outbox.packed` or the month-end sweep's) gives one view row per message,
    in order, with the event id, key and type its envelope names and its bytes as written
    (`json_array_elements` returns each element's text as it is). Readers that ask about
    messages (a key's events, an event id's row) read the view: a group row's own `event_id`
    and `key` are only its first message's (its key empty when its messages' keys differ).

    lz4 compresses a group of 16 envelopes several times faster than pglz at about the same
    size (docs/benchmarks.md, nineteenth session); a PostgreSQL built without lz4 keeps pglz."""
    s = f'"{schema}"'
    return [
        f"""CREATE OR REPLACE VIEW {s}.outbox_messages AS
            SELECT o.id, 1::bigint AS position, o.event_id, o.topic, o.key, o.event_type,
                   o.payload, o.created_at
              FROM {s}.outbox o WHERE left(o.payload, 1) <> '['
            UNION ALL
            SELECT o.id, m.position, (m.message ->> 'event_id')::uuid, o.topic,
                   m.message ->> 'key', m.message ->> 'type', m.message::text, o.created_at
              FROM {s}.outbox o CROSS JOIN LATERAL json_array_elements(o.payload::json)
                   WITH ORDINALITY AS m(message, position)
             WHERE left(o.payload, 1) = '['""",
        f"""DO $$ BEGIN
              ALTER TABLE {s}.outbox ALTER COLUMN payload SET COMPRESSION lz4;
            EXCEPTION WHEN feature_not_supported THEN NULL;
            END $$""",
    ]


def outbox_table_v1(metadata: MetaData) -> Table:
    """Version 1, frozen: what every service's first migration created."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("topic", Text, nullable=False),
        Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("scope", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("request_hash", Text, nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("response", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("scope", "key"),
    )


def plumbing_metadata_v1(schema: str) -> MetaData:
    """The plumbing tables as the first migrations created them (frozen)."""
    metadata = MetaData(schema=schema)
    outbox_table_v1(metadata)
    inbox_table(metadata)
    idempotency_table(metadata)
    return metadata
