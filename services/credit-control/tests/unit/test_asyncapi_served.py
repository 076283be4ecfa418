"""credit-control serves the topics' AsyncAPI document (issue 20): `/asyncapi.json` is the
checked-in, generated document; `/asyncapi` a page listing every topic and message, with no
script and nothing from the internet. Both open, like `/docs`."""

import json

from fastapi.testclient import TestClient

import credit_control.bootstrap
from common.contracts import ALL_CONTRACTS, ALL_TOPICS, asyncapi
from common.testing.apps import built_in_process


def test_the_document_and_its_page_are_served_offline() -> None:
    # No lifespan: nothing starts.
    client = TestClient(built_in_process(credit_control.bootstrap.bootstrap))
    served = client.get("/asyncapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(asyncapi.DOCUMENT.read_text(encoding="utf-8"))
    page = client.get("/asyncapi")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for topic in ALL_TOPICS:
        assert f"<code>{topic}</code>" in page.text
    for contract in ALL_CONTRACTS:
        assert f'id="message-{contract.__name__}"' in page.text
    assert "<script" not in page.text and "http://" not in page.text
    assert "https://" not in page.text
