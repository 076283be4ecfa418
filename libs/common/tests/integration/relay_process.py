"""A relay in a process of its own, for the test that kills it mid-run (SIGKILL: no cleanup,
no rollback but the server's): python relay_process.py DATABASE_URL BOOTSTRAP SCHEMA."""

import asyncio
import sys

from sqlalchemy import MetaData

from common.db import make_engine
from common.kafka import Publisher
from common.outbox import Outbox, OutboxRelay
from common.plumbing import outbox_table


async def main(url: str, bootstrap: str, schema: str) -> None:
    engine = make_engine(url)
    publisher = Publisher(bootstrap, "relay-to-kill")
    await publisher.start()
    relay = OutboxRelay(engine, Outbox(outbox_table(MetaData(schema=schema))), publisher,
                        batch_size=50, pipeline=4, batches_per_step=1)
    print("relaying", flush=True)
    await relay.run(asyncio.Event())  # until killed


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
