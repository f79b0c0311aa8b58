"""The chat says the assistant is off before anyone types (kill switch), on the start page and in a
conversation. Committed, not in a test transaction: the switch reaches Redis when its transaction commits."""

import pytest
from django_tenants.utils import tenant_context

from gateway.actions import do_set_kill_switch
from tenants.models import Tenant
from tests.conftest import client_for, make_member
from tests.factories import ConversationFactory

pytestmark = pytest.mark.usefixtures("committed_db")


def test_chat_pages_say_when_the_assistant_is_switched_off(acme: Tenant) -> None:
    alice = make_member(acme)
    client = client_for(acme, alice)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice)
        do_set_kill_switch(on=True, reason="Budget review until noon.", actor_label="test")
    try:
        for path in ("/chat/", f"/chat/{conversation.id}/"):
            page = client.get(path).content.decode()
            assert 'id="assistant-unavailable"' in page, path
            assert "Budget review until noon." in page
            assert 'id="message-input"' in page and "disabled" in page.split('id="message-input"')[1][:300]
    finally:
        with tenant_context(acme):
            do_set_kill_switch(on=False, actor_label="test")
    assert 'id="assistant-unavailable"' not in client.get("/chat/").content.decode()
