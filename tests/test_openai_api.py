"""The tenant API (/v1/) through the official `openai` client, against the live web process (the `stack`).

Python's resolver does not resolve *.localhost, so the client connects to 127.0.0.1 and names the tenant's
domain in the Host header, exactly as a browser or curl would send it."""

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import tenant_context
from openai.types.chat import ChatCompletionMessageParam

from audit.models import AuditEvent
from gateway.api.actions import do_create_api_key, do_revoke_api_key
from gateway.api.models import ApiKey
from gateway.models import ModelCall
from tenants.models import Tenant
from tests.conftest import Stack, make_member

pytestmark = pytest.mark.usefixtures("committed_db")

QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]


def api_client(stack: Stack, tenant_slug: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=key,
        base_url=f"http://127.0.0.1:{stack.web_port}/v1",
        default_headers={"Host": f"{tenant_slug}.localhost:{stack.web_port}"},
        max_retries=0,
        timeout=30,
    )


def raw_client(stack: Stack, tenant_slug: str, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{stack.web_port}/v1",
        headers={"Host": f"{tenant_slug}.localhost:{stack.web_port}", **(headers or {})},
        timeout=30,
    )


def new_key(tenant: Tenant, models: list[str] | None = None) -> str:
    with tenant_context(tenant):
        return do_create_api_key(name=f"test key {uuid.uuid4().hex[:6]}", models=models).secret


def recorded(tenant: Tenant, request_id: str) -> ModelCall | None:
    with tenant_context(tenant):
        return ModelCall.objects.filter(request_id=request_id).first()


def test_chat_completion_is_answered_and_recorded_in_the_keys_tenant(
    stack: Stack, acme: Tenant, globex: Tenant
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Paris.", prompt_tokens=14, completion_tokens=2)
    client = api_client(stack, "acme", new_key(acme))
    raw = client.chat.completions.with_raw_response.create(
        model="sim-model", messages=QUESTION, max_tokens=20
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "sim-model"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (14, 2)
    request_id = raw.headers["x-request-id"]
    record = recorded(acme, request_id)
    assert record is not None and record.status == ModelCall.Status.OK
    assert record.messages == QUESTION and record.response == "Paris."
    assert recorded(globex, request_id) is None
    (sent,) = [entry for entry in stack.simulator.requests() if entry["path"] == "/v1/chat/completions"]
    assert sent["body"]["max_tokens"] == 20


def test_streamed_completion_delivers_tokens_and_the_providers_usage(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(
        reply="Paris is the capital of France.", prompt_tokens=14, completion_tokens=6, token_delay_ms=10
    )
    client = api_client(stack, "acme", new_key(acme))
    raw = client.chat.completions.with_raw_response.create(
        model="sim-model", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Paris is the capital of France."
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (14, 6)
    record = recorded(acme, raw.headers["x-request-id"])
    assert record is not None and record.status == ModelCall.Status.OK
    assert record.response == text and record.ttft_ms is not None
    assert (record.tokens_in, record.tokens_out) == (14, 6)


def test_stream_without_usage_option_sends_no_usage_chunk(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Paris.")
    client = api_client(stack, "acme", new_key(acme))
    chunks = list(client.chat.completions.create(model="sim-model", messages=QUESTION, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)


def test_client_that_hangs_up_mid_stream_leaves_a_cut_off_record(
    stack: Stack, acme: Tenant, wait_for: Callable[..., Any]
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=" ".join(f"w{i}" for i in range(200)), token_delay_ms=30)
    key = new_key(acme)
    with raw_client(stack, "acme", {"Authorization": f"Bearer {key}"}) as client:
        body = {"model": "sim-model", "messages": QUESTION, "stream": True}
        with client.stream("POST", "/chat/completions", json=body) as response:
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            for index, _line in enumerate(response.iter_lines()):
                if index > 6:
                    break
    record = wait_for(
        # The record is claimed ('started') when the call begins and completed when the stream ends.
        lambda: (
            (found := recorded(acme, request_id))
            and found.status not in (ModelCall.Status.OK, ModelCall.Status.STARTED)
            and found
        ),
        timeout=20,
        message="the cut-off record",
    )
    assert record.status == ModelCall.Status.CUT_OFF
    assert 0 < len(record.response.split()) < 200


def test_embeddings_through_the_gateway(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    client = api_client(stack, "acme", new_key(acme))
    # The official client asks for base64 by default and decodes it: both encodings must agree.
    result = client.embeddings.create(model="sim-embedding", input=["refund policy", "opening hours"])
    assert [item.index for item in result.data] == [0, 1]
    assert all(len(item.embedding) == 384 for item in result.data)
    assert result.usage.prompt_tokens > 0
    as_floats = client.embeddings.create(
        model="sim-embedding", input=["refund policy", "opening hours"], encoding_format="float"
    )
    for decoded, plain in zip(result.data, as_floats.data, strict=True):
        assert decoded.embedding == pytest.approx(plain.embedding, abs=1e-6)
    with tenant_context(acme):
        calls = list(ModelCall.objects.filter(model_requested="sim-embedding").order_by("-created_at")[:2])
    assert all(call.status == ModelCall.Status.OK for call in calls)
    assert calls[0].messages == [
        {"role": "input", "content": "refund policy"},
        {"role": "input", "content": "opening hours"},
    ]


def test_chat_model_on_the_embeddings_endpoint_is_a_clear_bad_request(stack: Stack, acme: Tenant) -> None:
    client = api_client(stack, "acme", new_key(acme))
    with pytest.raises(openai.BadRequestError, match="not an embedding model"):
        client.embeddings.create(model="sim-model", input="hello")


def test_models_lists_the_tenants_allowed_models_and_a_scoped_key_sees_only_its_own(
    stack: Stack, acme: Tenant
) -> None:
    listed = {model.id for model in api_client(stack, "acme", new_key(acme)).models.list()}
    # acme's allow-list (tests/conftest.py); sim-fallback is priced and in the catalogue, but not allowed.
    assert listed == {"sim-model", "sim-embedding", "smollm2"}
    scoped = api_client(stack, "acme", new_key(acme, models=["sim-embedding"]))
    assert [model.id for model in scoped.models.list()] == ["sim-embedding"]
    assert scoped.models.retrieve("sim-embedding").id == "sim-embedding"
    with pytest.raises(openai.NotFoundError):
        scoped.models.retrieve("sim-model")


def test_models_and_embeddings_follow_the_tenants_allow_list(stack: Stack, acme: Tenant) -> None:
    """An admin's change to the allow-list is what the API lists and serves, at once; a model taken off it
    is refused (404, recorded) before any provider call. The shared policy is restored after the test."""
    from gateway.actions import do_set_model_allow_list

    stack.simulator.reset()
    client = api_client(stack, "acme", new_key(acme))
    with tenant_context(acme):
        do_set_model_allow_list(allowed_models=["sim-model", "sim-fallback"], actor_label="test")
    assert {model.id for model in client.models.list()} == {"sim-model", "sim-fallback"}
    with pytest.raises(openai.NotFoundError) as refused:
        client.embeddings.create(model="sim-embedding", input="hello")
    assert refused.value.code == "model_not_found"
    assert stack.simulator.requests() == []
    refusal = recorded(acme, refused.value.response.headers["x-request-id"])
    assert refusal is not None and refusal.status == ModelCall.Status.REFUSED
    assert refusal.error_code == "model_not_found"


def test_key_scoped_to_models_cannot_use_another_model(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    client = api_client(stack, "acme", new_key(acme, models=["sim-embedding"]))
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model="sim-model", messages=QUESTION)
    assert refused.value.code == "model_not_found"
    assert stack.simulator.requests() == []


def test_missing_or_wrong_credentials_get_401_in_openais_shape(stack: Stack, acme: Tenant) -> None:
    with raw_client(stack, "acme") as client:
        response = client.get("/models")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert "Authorization: Bearer" in response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

    genuine = new_key(acme)
    forged = genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB")
    for credential in (forged, "sk-not-ours", "a.b.c"):
        with pytest.raises(openai.AuthenticationError):
            api_client(stack, "acme", credential).models.list()


def test_acme_key_on_globex_domain_is_refused_with_403(stack: Stack, acme: Tenant, globex: Tenant) -> None:
    stack.simulator.reset()
    client = api_client(stack, "globex", new_key(acme))
    with pytest.raises(openai.PermissionDeniedError, match="another organisation"):
        client.chat.completions.create(model="sim-model", messages=QUESTION)
    assert stack.simulator.requests() == []
    with tenant_context(globex):
        event = AuditEvent.objects.filter(kind="security.api_key_wrong_tenant").latest("id")
    assert event.details["origin"] == "another organisation"
    assert "acme" not in json.dumps(event.details)


def test_revoked_key_is_refused(stack: Stack, acme: Tenant) -> None:
    with tenant_context(acme):
        new = do_create_api_key(name="to be revoked")
    client = api_client(stack, "acme", new.secret)
    assert client.models.list().data
    with tenant_context(acme):
        do_revoke_api_key(new.api_key)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        client.models.list()


def test_expired_key_is_refused_and_a_keys_limits_answer_429(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Paris.")
    with tenant_context(acme):
        limited = do_create_api_key(name="one a minute", requests_per_minute=1)
        soon = do_create_api_key(name="expires soon", expires_at=timezone.now() + dt.timedelta(seconds=2))
    client = api_client(stack, "acme", limited.secret)
    raw = client.chat.completions.with_raw_response.create(model="sim-model", messages=QUESTION)
    record = recorded(acme, raw.headers["x-request-id"])
    # The record names the key (the console shows its name), not "no user".
    assert record is not None and record.source == f"key:{limited.api_key.prefix}" and record.user_id is None
    with pytest.raises(openai.RateLimitError, match="This API key is sending too many requests"):
        client.chat.completions.create(model="sim-model", messages=QUESTION)
    expiring = api_client(stack, "acme", soon.secret)
    assert expiring.models.list().data
    with tenant_context(acme):
        ApiKey.objects.filter(pk=soon.api_key.pk).update(expires_at=timezone.now())
    with pytest.raises(openai.AuthenticationError, match="This API key has expired"):
        expiring.models.list()


def test_unknown_model_is_404_and_the_refusal_is_recorded(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    model = f"gpt-unknown-{uuid.uuid4().hex[:8]}"
    client = api_client(stack, "acme", new_key(acme))
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model=model, messages=QUESTION)
    assert refused.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=model, messages=QUESTION, stream=True)
    with tenant_context(acme):
        assert ModelCall.objects.filter(model_requested=model, status=ModelCall.Status.REFUSED).count() == 2
    assert stack.simulator.requests() == []


def test_provider_outage_is_503_for_plain_and_streamed_calls(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(fail="503")
    client = api_client(stack, "acme", new_key(acme))
    with pytest.raises(openai.InternalServerError) as plain:
        client.chat.completions.create(model="sim-model", messages=QUESTION)
    assert plain.value.status_code == 503 and plain.value.code == "provider_unavailable"
    with pytest.raises(openai.InternalServerError) as streamed:
        client.chat.completions.create(model="sim-model", messages=QUESTION, stream=True)
    assert streamed.value.status_code == 503


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "sim-model", "messages": []}, "'messages' must be a non-empty list"),
        ({"model": "sim-model", "messages": [{"role": "wizard", "content": "hi"}]}, "role must be one of"),
        ({"messages": QUESTION}, "'model' is required"),
        ({"model": "sim-model", "messages": QUESTION, "max_tokens": 0}, "'max_tokens' must be a positive"),
        (
            {"model": "sim-model", "messages": QUESTION, "tools": [{"type": "function"}]},
            "'tools' is not supported",
        ),
    ],
)
def test_bad_requests_get_400_with_a_clear_message(
    stack: Stack, acme: Tenant, body: dict[str, Any], message: str
) -> None:
    with raw_client(stack, "acme", {"Authorization": f"Bearer {new_key(acme)}"}) as client:
        response = client.post("/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert message in error["message"]


def test_invalid_json_and_unknown_paths(stack: Stack, acme: Tenant) -> None:
    with raw_client(stack, "acme", {"Authorization": f"Bearer {new_key(acme)}"}) as client:
        bad_json = client.post(
            "/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        unknown = client.get("/assistants")
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]["message"]
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"


def test_api_is_not_served_on_the_platform_domain(stack: Stack, acme: Tenant) -> None:
    with raw_client(stack, "acme", {"Authorization": f"Bearer {new_key(acme)}"}) as client:
        response = client.get("/models", headers={"Host": f"localhost:{stack.web_port}"})
    assert response.status_code == 404


def test_management_command_prints_a_working_key_once(stack: Stack, acme: Tenant, capsys: Any) -> None:
    call_command("create_api_key", "--tenant", "acme", "--name", "nightly job", "--models", "sim-model")
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("cs-acme.") and "cannot be shown again" in err
    assert [model.id for model in api_client(stack, "acme", key).models.list()] == ["sim-model"]
    with tenant_context(acme):
        event = AuditEvent.objects.filter(kind="api_key.created", details__name="nightly job").latest(
            "created_at"
        )
    assert event.actor_label == "manage.py create_api_key"
    assert key not in str(event.details)


# --- OIDC access tokens (client credentials) ----------------------------------------------------------

DEMO_SERVICE_SECRET = "convosuite-demo-service"  # devtools/demo_service_clients.json


def service_token(stack: Stack, client_id: str, secret: str = DEMO_SERVICE_SECRET) -> str:
    response = httpx.post(
        f"{stack.issuer}/token/",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_service_token_of_the_tenant_is_accepted_and_its_calls_recorded(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply="Hello, robot.")
    client = api_client(stack, "acme", service_token(stack, "acme-reporting"))
    assert {model.id for model in client.models.list()} >= {"sim-model"}
    raw = client.chat.completions.with_raw_response.create(model="sim-model", messages=QUESTION)
    assert raw.parse().choices[0].message.content == "Hello, robot."
    record = recorded(acme, raw.headers["x-request-id"])
    assert record is not None and record.status == ModelCall.Status.OK and record.user_id is None


def test_service_token_of_another_tenant_is_refused_with_403(
    stack: Stack, acme: Tenant, globex: Tenant
) -> None:
    stack.simulator.reset()
    client = api_client(stack, "globex", service_token(stack, "acme-reporting"))
    with pytest.raises(openai.PermissionDeniedError, match="another organisation"):
        client.chat.completions.create(model="sim-model", messages=QUESTION)
    assert stack.simulator.requests() == []
    with tenant_context(globex):
        event = AuditEvent.objects.filter(kind="security.api_token_refused").latest("id")
    # globex learns that an identity of another organisation was refused, never which one or its subject.
    assert event.details["origin"] == "another organisation"
    assert "acme" not in json.dumps(event.details)
    assert "subject" not in event.details and "token_tenant" not in event.details


def test_tampered_or_foreign_tokens_are_refused_with_401(stack: Stack, acme: Tenant) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    genuine = service_token(stack, "acme-reporting")
    header, _payload, signature = genuine.split(".")
    # acme's header and signature on globex's claims: the signature no longer matches.
    other_payload = service_token(stack, "globex-reporting").split(".")[1]
    tampered = f"{header}.{other_payload}.{signature}"
    claims = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, foreign_key, algorithm="RS256", headers={"kid": kid})
    unsigned = jwt.encode(claims, key="", algorithm="none")
    for tenant_slug, token in (("globex", tampered), ("acme", forged), ("acme", unsigned)):
        with pytest.raises(openai.AuthenticationError, match="access token"):
            api_client(stack, tenant_slug, token).models.list()


def user_access_token(stack: Stack, username: str) -> str:
    """A signed-in user's access token, from the authorization code flow (PKCE) of the web client."""
    import base64
    import hashlib
    import re
    import secrets
    from html import unescape
    from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

    from tests.conftest import TEST_CLIENT_SECRET

    redirect_uri = f"http://acme.localhost:{stack.web_port}/oidc/callback/"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code", "client_id": "convosuite-web", "redirect_uri": redirect_uri, "scope": "openid",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    with httpx.Client(timeout=10) as browser:
        login_page = browser.get(f"{stack.issuer}/authorize/?{urlencode(query)}", follow_redirects=True)
        fields = {
            name: unescape(value)
            for name, value in re.findall(
                r'<input type="hidden" name="([^"]+)" value="([^"]*)"', login_page.text
            )
        }
        response = browser.post(
            str(login_page.url), data={**fields, "username": username, "password": "convosuite-demo"}
        )
        while (
            urlsplit(response.headers.get("Location", redirect_uri)).netloc != urlsplit(redirect_uri).netloc
        ):
            response = browser.get(urljoin(str(response.url), response.headers["Location"]))
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
        tokens = browser.post(
            f"{stack.issuer}/token/",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=("convosuite-web", TEST_CLIENT_SECRET),
        )
    assert tokens.status_code == 200, tokens.text
    return str(tokens.json()["access_token"])


def test_users_own_access_token_is_accepted_and_the_call_attributed_to_them(
    stack: Stack, acme: Tenant
) -> None:
    stack.simulator.reset()
    alice_subject = "1f3c9a52-acme-alice"  # devtools/demo_users.json
    with tenant_context(acme):
        from accounts.models import User

        alice = User.objects.filter(issuer=stack.issuer, subject=alice_subject).first()
    if alice is None:
        alice = make_member(acme, issuer=stack.issuer, subject=alice_subject)
    client = api_client(stack, "acme", user_access_token(stack, "alice@acme.example"))
    raw = client.chat.completions.with_raw_response.create(model="sim-model", messages=QUESTION)
    record = recorded(acme, raw.headers["x-request-id"])
    assert record is not None and record.user_id == alice.pk
    # Carol is a globex user: her token is refused on acme's address.
    carol = api_client(stack, "acme", user_access_token(stack, "carol@globex.example"))
    with pytest.raises(openai.PermissionDeniedError):
        carol.models.list()


@pytest.mark.usefixtures("committed_db")
def test_kill_switch_cuts_a_running_api_stream(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=" ".join(f"w{i}" for i in range(100)), token_delay_ms=50)
    client = api_client(stack, "acme", new_key(acme))
    received = []
    message = (
        "The assistant has been switched off for this workspace by an administrator. "
        "Reason: Paused for the kill-switch test."
    )
    try:
        with pytest.raises(openai.APIError, match=re.escape(message)):  # noqa: PT012 - arrives mid-iteration
            for chunk in client.chat.completions.create(model="sim-model", messages=QUESTION, stream=True):
                received.append(chunk)
                if len(received) == 5:
                    set_kill_switch(acme, on=True)
    finally:
        set_kill_switch(acme, on=False)
    assert 5 <= len(received) < 100


@pytest.mark.django_db
def test_only_a_hash_of_the_key_is_stored(acme: Tenant) -> None:
    with tenant_context(acme):
        new = do_create_api_key(name="hash check", models=["sim-model"])
        new.api_key.refresh_from_db()
        assert new.secret not in {new.api_key.secret_hash, new.api_key.prefix, new.api_key.name}
        assert len(new.api_key.secret_hash) == 64 and new.api_key.prefix in new.secret
        (event,) = AuditEvent.objects.filter(kind="api_key.created", details__key_id=str(new.api_key.id))
        assert event.details["models"] == ["sim-model"]
        assert new.secret not in str(event.details)
        do_revoke_api_key(new.api_key)
        do_revoke_api_key(new.api_key)
        assert (
            AuditEvent.objects.filter(kind="api_key.revoked", details__key_id=str(new.api_key.id)).count()
            == 1
        )


def set_kill_switch(tenant: Tenant, *, on: bool) -> None:
    from gateway.actions import do_set_kill_switch

    with tenant_context(tenant):
        do_set_kill_switch(on=on, reason="Paused for the kill-switch test.", actor_label="test")
