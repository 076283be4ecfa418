"""The AsyncAPI 3.0 document of the topics, generated from the contracts (never by hand).

Channels are the topics of `ALL_TOPICS` (and each one's dead-letter topic), messages the
contracts in their envelope (`ALL_CONTRACTS`; the payload schemas are msgspec's JSON Schemas,
the same as libs/common/schemas), operations who sends and who receives each topic. Checked in
as `libs/common/asyncapi.json` for readers outside the services; credit-control serves the
same document at `/asyncapi.json` and a readable page at `/asyncapi` (no internet needed).

    uv run python -m common.contracts.asyncapi          # rewrite the file
    uv run python -m common.contracts.asyncapi --check  # exit 1 if it differs
"""

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from common.envelope import SCHEMA_VERSION, Contract, envelope_type
from common.kafka import dead_letter_topic

from . import ALL_CONTRACTS, ALL_TOPICS
from .billing import BALANCE_TOPIC
from .clock import CLOCK_TOPIC
from .credit_control import DECISIONS_TOPIC
from .gateway import COMMANDS_TOPIC, RESULTS_TOPIC
from .notifier import NOTICES_TOPIC

DOCUMENT = Path(__file__).resolve().parents[3] / "asyncapi.json"
# Who writes and who reads each topic (each service's consumer.TOPICS; a test checks them).
SENDERS = {BALANCE_TOPIC: ("billing-events",), DECISIONS_TOPIC: ("credit-control",),
           COMMANDS_TOPIC: ("credit-control",), RESULTS_TOPIC: ("gateway-adapter",),
           NOTICES_TOPIC: ("notifier",), CLOCK_TOPIC: ("credit-control",)}
# The clock topic is read by every service started with the simulation clock, without a
# consumer group (common.simulation.ClockFollower), and has no dead-letter topic.
FOLLOWED = {CLOCK_TOPIC}
RECEIVERS = {BALANCE_TOPIC: ("credit-control",),
             DECISIONS_TOPIC: ("notifier", "billing-events"),
             COMMANDS_TOPIC: ("gateway-adapter",), RESULTS_TOPIC: ("credit-control",),
             NOTICES_TOPIC: ("credit-control",),
             CLOCK_TOPIC: ("billing-events", "credit-control", "notifier", "gateway-adapter")}
KEYS = {BALANCE_TOPIC: "account_id", DECISIONS_TOPIC: "account_id",
        COMMANDS_TOPIC: "product_id", RESULTS_TOPIC: "product_id", NOTICES_TOPIC: "account_id",
        CLOCK_TOPIC: "constant `clock` (compacted)"}
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"


def channel_id(topic: str) -> str:
    """AsyncAPI ids are letters, digits, `_` and `-`: the topic with its dots as `_`."""
    return topic.replace(".", "_")


@functools.cache
def document() -> dict[str, Any]:
    contracts = sorted(ALL_CONTRACTS, key=lambda c: (ALL_TOPICS.index(c.topic), c.__name__))
    _, schemas = msgspec.json.schema_components(
        [envelope_type(c) for c in contracts], ref_template="#/components/schemas/{name}")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "信控 credit control — events",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": (
                "The Kafka topics the four services exchange, generated from "
                "libs/common/src/common/contracts by `python -m common.contracts.asyncapi`. "
                "Every message is an envelope (`type`, `event_id`, `source`, `occurred_at`, "
                "`correlation_id`, `schema_version`, `key`, `payload`) written compact by "
                "msgspec; fields are only ever added. A message a consumer cannot apply goes "
                "to the topic's `.dlq`.")},
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka",
                              "description": "`make run`'s broker (deploy/local/stack.sh)"}},
        "channels": _channels(contracts),
        "operations": _operations(contracts),
        "components": {"messages": {c.__name__: _message(c, schemas) for c in contracts},
                       "schemas": schemas},
    }


def _message(c: type[Contract], schemas: dict[str, Any]) -> dict[str, Any]:
    envelope = envelope_type(c).__name__
    return {
        "name": c.event_type, "title": f"{c.__name__} ({c.event_type})",
        "summary": _summary(c),
        "contentType": "application/json",
        "payload": {"schemaFormat": SCHEMA_FORMAT,
                    "schema": {"$ref": f"#/components/schemas/{envelope}"}},
        "bindings": {"kafka": {"key": {"type": "string",
                                       "description": f"the {KEYS[c.topic]}"}}},
    }


def _summary(c: type[Contract]) -> str:
    return " ".join((c.__doc__ or c.__name__).split("\n\n")[0].split())


def _channels(contracts: list[type[Contract]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for topic in ALL_TOPICS:
        messages = {c.__name__: {"$ref": f"#/components/messages/{c.__name__}"}
                    for c in contracts if c.topic == topic}
        out[channel_id(topic)] = {
            "address": topic, "messages": messages,
            "description": f"Keyed by {KEYS[topic]} (one partition per key keeps its order). "
                           f"Written by {', '.join(SENDERS[topic])}; read by "
                           f"{', '.join(RECEIVERS[topic])}."}
        if topic in FOLLOWED:
            out[channel_id(topic)]["description"] += (
                " Compacted, one partition: the latest record is the state; followers "
                "assign and seek, with no consumer group.")
            continue
        dlq = dead_letter_topic(topic)
        out[channel_id(dlq)] = {
            "address": dlq, "messages": dict(messages),
            "description": f"Messages of {topic} a consumer could not apply, as they came, "
                           "with the reason in the record's headers."}
    return out


def _operations(contracts: list[type[Contract]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for topic in ALL_TOPICS:
        refs = [{"$ref": f"#/channels/{channel_id(topic)}/messages/{c.__name__}"}
                for c in contracts if c.topic == topic]
        for action, services in (("send", SENDERS[topic]), ("receive", RECEIVERS[topic])):
            for service in services:
                out[f"{service}-{action}-{channel_id(topic)}"] = {
                    "action": action, "channel": {"$ref": f"#/channels/{channel_id(topic)}"},
                    "title": f"{service} {'writes' if action == 'send' else 'reads'} {topic}",
                    "messages": refs}
    return out


def rendered() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="only compare the file with the contracts; exit 1 if it differs")
    args = parser.parse_args()
    if args.check:
        same = DOCUMENT.exists() and DOCUMENT.read_text(encoding="utf-8") == rendered()
        if not same:
            print(f"{DOCUMENT} is stale: run `uv run python -m common.contracts.asyncapi`",
                  file=sys.stderr)
        sys.exit(0 if same else 1)
    DOCUMENT.write_text(rendered(), encoding="utf-8")
    print(f"wrote {DOCUMENT}")


if __name__ == "__main__":
    main()
