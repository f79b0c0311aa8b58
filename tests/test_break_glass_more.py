"""Under an open break-glass grant a platform admin also reads the tenant's prompt templates (versions and
labels) and knowledge bases (documents and their state); each read is an audit event in the tenant's schema."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from audit.models import AuditEvent
from knowledge.models import Document, DocumentVersion, KnowledgeBase
from lifecycle.break_glass import do_open_break_glass_grant
from prompts.models import PRODUCTION, PromptLabel
from tenants.models import BreakGlassGrant, Tenant
from tests.conftest import client_for, make_member
from tests.factories import PromptTemplateFactory, PromptVersionFactory

pytestmark = pytest.mark.django_db
REASON = "INC-2077: customer reports the agent answers with the wrong prompt"


@pytest.fixture
def staff(tenants: dict[str, Tenant]) -> User:
    return make_member(
        tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True, email="ops2@convosuite.example"
    )


@pytest.fixture
def platform(tenants: dict[str, Tenant], staff: User) -> Any:
    return client_for(tenants["public"], staff)


@pytest.fixture
def acme_content(acme: Tenant) -> dict[str, Any]:
    with tenant_context(acme):
        template = PromptTemplateFactory.create(name="Support agent (break-glass test)")
        PromptVersionFactory.create(template=template, number=1, body="You are a terse support agent.")
        second = PromptVersionFactory.create(
            template=template, number=2, body="You are a kind support agent."
        )
        PromptLabel.objects.create(template=template, name=PRODUCTION, version=second)
        knowledge_base = KnowledgeBase.objects.create(
            name="Break-glass handbook", embedding_model="local-minilm", embedding_dimension=384
        )
        document = Document.objects.create(knowledge_base=knowledge_base, name="leave-policy.pdf")
        version = DocumentVersion.objects.create(
            document=document, number=1, file_name="leave-policy.pdf", size_bytes=5, sha256="0" * 64,
            state=DocumentVersion.State.FAILED, error="The PDF has no text layer.",
        )  # fmt: skip
        Document.objects.filter(pk=document.pk).update(latest_version=version)
    return {"template": template, "knowledge_base": knowledge_base}


def pages_for(grant: BreakGlassGrant, content: dict[str, Any]) -> list[str]:
    return [
        f"/platform/break-glass/{grant.pk}/prompts/",
        f"/platform/break-glass/{grant.pk}/prompts/{content['template'].id}/",
        f"/platform/break-glass/{grant.pk}/knowledge/",
        f"/platform/break-glass/{grant.pk}/knowledge/{content['knowledge_base'].id}/",
    ]


def reads_in(tenant: Tenant) -> list[AuditEvent]:
    with tenant_context(tenant):
        return list(AuditEvent.objects.filter(kind="break_glass.read").order_by("id"))


def test_prompts_and_documents_are_readable_under_a_grant_and_each_read_is_audited(
    acme: Tenant, staff: User, platform: Any, acme_content: dict[str, Any]
) -> None:
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=10)
    before = len(reads_in(acme))
    pages = pages_for(grant, acme_content)
    responses = [platform.get(page) for page in pages]
    assert [response.status_code for response in responses] == [200, 200, 200, 200]
    bodies = [response.content.decode() for response in responses]
    assert "Support agent (break-glass test)" in bodies[0]
    # Bodies are decrypted by the ORM fields; the production label points at version 2.
    assert "You are a terse support agent." in bodies[1] and "You are a kind support agent." in bodies[1]
    assert bodies[1].index("v2") < bodies[1].index(PRODUCTION) < bodies[1].index("v1")
    assert "Break-glass handbook" in bodies[2]
    assert "leave-policy.pdf" in bodies[3] and "Failed" in bodies[3] and "no text layer" in bodies[3]
    assert f'href="/platform/break-glass/{grant.pk}/prompts/"' in bodies[3]

    reads = reads_in(acme)[before:]
    assert [event.details["path"] for event in reads] == pages
    assert [event.details["what"] for event in reads] == [
        "prompts.list", "prompts.detail", "knowledge.list", "knowledge.detail"
    ]  # fmt: skip
    assert reads[1].details["prompt_template"] == str(acme_content["template"].id)
    assert reads[3].details["knowledge_base"] == str(acme_content["knowledge_base"].id)
    assert {event.details["grant"] for event in reads} == {grant.pk}


def test_another_staff_members_grant_gives_404_on_the_new_pages(
    acme: Tenant, tenants: dict[str, Tenant], staff: User, acme_content: dict[str, Any]
) -> None:
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=10)
    colleague = make_member(tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True)
    colleague_client = client_for(tenants["public"], colleague)
    before = len(reads_in(acme))
    assert [colleague_client.get(page).status_code for page in pages_for(grant, acme_content)] == [404] * 4
    assert len(reads_in(acme)) == before


@pytest.mark.parametrize("ending", ["expired", "closed"])
def test_ended_grant_gives_403_on_the_new_pages_and_reads_nothing(
    acme: Tenant, staff: User, platform: Any, acme_content: dict[str, Any], ending: str
) -> None:
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=10)
    if ending == "expired":
        BreakGlassGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    else:
        assert platform.post(f"/platform/break-glass/{grant.pk}/close/").status_code == 302
    before = len(reads_in(acme))
    assert [platform.get(page).status_code for page in pages_for(grant, acme_content)] == [403] * 4
    assert len(reads_in(acme)) == before


def test_a_template_of_another_tenant_is_not_found_under_the_grant(
    acme: Tenant, globex: Tenant, staff: User, platform: Any
) -> None:
    with tenant_context(globex):
        globex_template = PromptTemplateFactory.create(name="Globex secret agent")
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=10)
    response = platform.get(f"/platform/break-glass/{grant.pk}/prompts/{globex_template.id}/")
    assert response.status_code == 404 and "Globex secret agent" not in response.content.decode()
