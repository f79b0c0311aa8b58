"""The screen's other checkpoints: retrieval results and exports (model-call export, prompt bundle) carrying
another tenant's canary marker never leave; the fault hooks of the rehearsals are refused outside DEBUG and off
in production settings."""

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import seal_in_chain
from audit.models import AuditEvent
from convosuite.faults import check_fault_hooks_allowed
from gateway.errors import CrossTenantBlocked
from gateway.exports import write_model_call_export
from gateway.models import ModelCall
from incidents.canaries import marker_for
from incidents.models import Incident
from knowledge.retrieval import RetrievedPassage, screen_passages
from prompts.transfer import do_export_prompts
from tenants.models import Tenant
from tests.factories import ModelCallFactory, PromptTemplateFactory, PromptVersionFactory

pytestmark = pytest.mark.usefixtures("committed_db")
ROOT = Path(__file__).resolve().parents[2]


def passage(text: str) -> RetrievedPassage:
    return RetrievedPassage(
        chunk_id=uuid.uuid4(),
        document_id=uuid.uuid4(),
        document_name="Uploaded file",
        knowledge_base_name="Shared drive",
        ordinal=0,
        score=0.9,
        text=text,
    )


def test_retrieval_drops_passages_with_another_tenants_marker_and_strips_its_own(
    new_tenant: Callable[[str], Tenant],
) -> None:
    source, receiving = new_tenant("src"), new_tenant("dst")
    foreign = marker_for(source.schema_name, "knowledge")
    own = marker_for(receiving.schema_name, "knowledge")
    leaked, mine, plain = passage(f"pasted log {foreign}"), passage(f"our note {own} end"), passage("plain")
    with tenant_context(receiving):
        kept = screen_passages([leaked, mine, plain])
    assert [p.chunk_id for p in kept] == [mine.chunk_id, plain.chunk_id]
    assert own not in kept[0].text and kept[0].text.startswith("our note")
    incident = Incident.objects.get(tenant_links__schema_name=receiving.schema_name)
    assert incident.details["where"] == "retrieval" and incident.details["chunk_ids"] == [
        str(leaked.chunk_id)
    ]


def test_a_model_call_export_carrying_another_tenants_marker_is_not_written(
    new_tenant: Callable[[str], Tenant], tmp_path: Path
) -> None:
    source, receiving = new_tenant("src"), new_tenant("dst")
    foreign = marker_for(source.schema_name, "prompt")
    out = tmp_path / "export.zip"
    with tenant_context(receiving):
        row = ModelCallFactory.create(user=None, response=f"copied {foreign}")
        seal_in_chain(ModelCall, row.pk)
        with pytest.raises(CrossTenantBlocked):
            write_model_call_export(
                out_path=str(out),
                window_start=timezone.now() - dt.timedelta(hours=1),
                window_end=timezone.now() + dt.timedelta(hours=1),
                redaction="full",
                exported_by="test",
            )
    assert not out.exists() and not Path(f"{out}.part").exists()
    assert Incident.objects.filter(
        tenant_links__schema_name=receiving.schema_name, details__where="export"
    ).exists()


def test_a_prompt_bundle_carrying_another_tenants_marker_is_refused_and_not_audited_as_exported(
    new_tenant: Callable[[str], Tenant],
) -> None:
    source, receiving = new_tenant("src"), new_tenant("dst")
    foreign = marker_for(source.schema_name, "prompt")
    with tenant_context(receiving):
        PromptVersionFactory.create(template=PromptTemplateFactory.create(), body=f"Be nice. {foreign}")
        with pytest.raises(CrossTenantBlocked):
            do_export_prompts(acting_user=None, tenant_slug=receiving.schema_name)
        assert not AuditEvent.objects.filter(kind="prompts.exported").exists()
        assert AuditEvent.objects.filter(kind="security.cross_tenant_blocked").exists()


def test_fault_hooks_are_refused_when_debug_is_off() -> None:
    with override_settings(INCIDENT_FAULT_HOOKS=True, DEBUG=False), pytest.raises(ImproperlyConfigured):
        check_fault_hooks_allowed()
    with override_settings(INCIDENT_FAULT_HOOKS=True, DEBUG=True):
        check_fault_hooks_allowed()


def test_production_settings_turn_fault_hooks_off_whatever_the_environment_says() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "convosuite.settings.production",
        "INCIDENT_FAULT_HOOKS": "true",
        "DJANGO_DEBUG": "true",
        "DJANGO_SECRET_KEY": "x" * 50,
        "OIDC_CLIENT_SECRET": "x",
        "CONVOSUITE_MASTER_KEYS": "k:dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMtISE=",
        "CONVOSUITE_SIGNING_KEY": "unused",
    }
    code = "import django; from django.conf import settings; print(settings.INCIDENT_FAULT_HOOKS, settings.DEBUG)"
    shown = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert shown.stdout.split() == ["False", "False"], shown.stderr
