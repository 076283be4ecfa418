"""The AsyncAPI document of the topics (issue 20): generated from the contracts, checked in
(libs/common/asyncapi.json) and in step with them, every topic of the registry a channel
(and its dead-letter topic), every contract a message whose payload is its envelope's
schema, every reference resolving, and who sends and reads each topic as the services
really do."""

import json
from typing import Any

import msgspec

import billing_events.entrypoints.consumer
import credit_control.credit.entrypoints.consumer
import gateway_adapter.entrypoints.consumer
import notifier.entrypoints.consumer
from common.contracts import ALL_CONTRACTS, ALL_TOPICS, asyncapi
from common.envelope import envelope_type
from common.kafka import dead_letter_topic

DOC = asyncapi.document()


def test_the_checked_in_document_is_in_step_with_the_contracts() -> None:
    assert asyncapi.DOCUMENT.read_text(encoding="utf-8") == asyncapi.rendered(), (
        "libs/common/asyncapi.json is stale: run `uv run python -m common.contracts.asyncapi`")


def test_every_topic_of_the_registry_is_a_channel_with_its_contracts() -> None:
    addresses = {ch["address"]: ch for ch in DOC["channels"].values()}
    for topic in ALL_TOPICS:
        assert topic in addresses
        assert (dead_letter_topic(topic) in addresses) == (topic not in asyncapi.FOLLOWED)
        wanted = {c.__name__ for c in ALL_CONTRACTS if c.topic == topic}
        assert set(addresses[topic]["messages"]) == wanted, topic
    assert set(addresses) == {n for topic in ALL_TOPICS for n in (topic, dead_letter_topic(topic))
                              if n not in {dead_letter_topic(t) for t in asyncapi.FOLLOWED}}


def test_each_message_is_its_envelopes_schema() -> None:
    messages = DOC["components"]["messages"]
    schemas = DOC["components"]["schemas"]
    assert set(messages) == {c.__name__ for c in ALL_CONTRACTS}
    for c in ALL_CONTRACTS:
        ref = messages[c.__name__]["payload"]["schema"]["$ref"]
        envelope = schemas[ref.rsplit("/", 1)[-1]]
        assert envelope["properties"]["type"] == {"enum": [c.event_type]}
        assert messages[c.__name__]["name"] == c.event_type
        _, same = msgspec.json.schema_components(
            [envelope_type(c)], ref_template="#/components/schemas/{name}")
        for name, schema in same.items():
            assert schemas[name] == schema, name


def test_every_reference_resolves() -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if "$ref" in node else []) + [
                r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(DOC):
        assert ref.startswith("#/"), ref
        node: Any = DOC
        for part in ref[2:].split("/"):
            node = node[part]
        assert isinstance(node, dict), ref


def test_receivers_are_the_services_consumers() -> None:
    consumers = {"billing-events": billing_events.entrypoints.consumer.TOPICS,
                 "credit-control": credit_control.credit.entrypoints.consumer.TOPICS,
                 "notifier": notifier.entrypoints.consumer.TOPICS,
                 "gateway-adapter": gateway_adapter.entrypoints.consumer.TOPICS}
    documented = {s: sorted(t for t in ALL_TOPICS
                            if s in asyncapi.RECEIVERS[t] and t not in asyncapi.FOLLOWED)
                  for s in consumers}
    assert documented == {s: sorted(topics) for s, topics in consumers.items()}
    received = {op["channel"]["$ref"].rsplit("/", 1)[-1] for op in DOC["operations"].values()
                if op["action"] == "receive"}
    assert received == {asyncapi.channel_id(t) for t in ALL_TOPICS}


def test_the_document_is_plain_json_of_asyncapi_3() -> None:
    loaded = json.loads(asyncapi.DOCUMENT.read_text(encoding="utf-8"))
    assert loaded["asyncapi"].startswith("3.") and set(loaded) >= {
        "info", "channels", "operations", "components"}
