"""End-to-end tests of the development OpenID Connect provider (devtools/idp), run as a subprocess.

No Django database of the main project is involved:
    .venv/bin/python -m pytest tests/devtools/test_idp.py -p no:django -q
"""

import base64
import hashlib
import json
import re
import secrets
import socket
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from jwcrypto import jwk, jwt

from devtools.idp.testing import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_USERS_FILE,
    idp_output,
    start_idp,
    stop_idp,
)

REDIRECT_URI = "http://acme.localhost:8000/oidc/callback/"
OTHER_REDIRECT_URI = "http://globex.localhost:8000/oidc/callback/"
POST_LOGOUT_URI = "http://acme.localhost:8000/"
SERVICE_CLIENT, SERVICE_SECRET = "acme-ops-bot", "ops-bot-secret"
API_AUDIENCE = "convosuite-api"
ALICE = {
    "sub": "1f3c9a52-acme-alice",
    "username": "alice@acme.example",
    "email": "alice@acme.example",
    "name": "Alice Archer",
    "tenant": "acme",
    "roles": ["end_user"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    proc, issuer = start_idp(
        free_port(),
        tmp_path_factory.mktemp("idp"),
        [REDIRECT_URI, OTHER_REDIRECT_URI],
        [POST_LOGOUT_URI],
        service_clients=[f"{SERVICE_CLIENT}:{SERVICE_SECRET}:acme:tenant_admin,end_user"],
    )
    try:
        yield issuer
    finally:
        stop_idp(proc)


@pytest.fixture(scope="module")
def discovery(idp):
    response = requests.get(f"{idp}/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    return response.json()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(discovery, **overrides) -> str:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
    }
    params.update(overrides)
    return f"{discovery['authorization_endpoint']}?{urlencode({k: v for k, v in params.items() if v is not None})}"


def hidden_inputs(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = unescape(value.group(1)) if value else ""
    return fields


def submit_login(session: requests.Session, login_page: requests.Response, username, password):
    assert 'name="username" id="username"' in login_page.text
    data = {**hidden_inputs(login_page.text), "username": username, "password": password}
    assert data.get("csrfmiddlewaretoken"), "login form must carry a CSRF token"
    return session.post(login_page.url, data=data, allow_redirects=False, timeout=10)


def follow_until_callback(session: requests.Session, response: requests.Response) -> requests.Response:
    """Follow IdP-internal redirects; stop at the first redirect that leaves the IdP."""
    idp_netloc = urlsplit(response.url).netloc
    while response.is_redirect:
        location = requests.compat.urljoin(response.url, response.headers["Location"])
        if urlsplit(location).netloc != idp_netloc:
            return response
        response = session.get(location, allow_redirects=False, timeout=10)
    return response


def callback_params(response: requests.Response, expected_uri=REDIRECT_URI) -> dict[str, str]:
    assert response.status_code == 302, response.text[:500]
    location = response.headers["Location"]
    assert location.split("?")[0] == expected_uri
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(
    session, discovery, username=ALICE["username"], password=DEMO_PASSWORD, expected_uri=REDIRECT_URI, **params
):
    """Authorization request + login; returns (callback query, state, nonce, code_verifier)."""
    verifier, challenge = pkce_pair()
    url = authorize_url(discovery, code_challenge=challenge, code_challenge_method="S256", **params)
    state = parse_qs(urlsplit(url).query)["state"][0]
    nonce = parse_qs(urlsplit(url).query)["nonce"][0]
    login_page = session.get(url, timeout=10)
    assert login_page.status_code == 200
    response = follow_until_callback(session, submit_login(session, login_page, username, password))
    return callback_params(response, expected_uri), state, nonce, verifier


def exchange(discovery, code, verifier, redirect_uri=REDIRECT_URI) -> requests.Response:
    return requests.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )


def verified_claims(discovery, id_token: str) -> dict:
    jwks = jwk.JWKSet.from_json(requests.get(discovery["jwks_uri"], timeout=10).text)
    token = jwt.JWT(
        jwt=id_token,
        key=jwks,
        algs=["RS256"],
        check_claims={"iss": discovery["issuer"], "aud": CLIENT_ID, "exp": None},
    )
    assert json.loads(token.header)["alg"] == "RS256"
    return json.loads(token.claims)


def assert_user_claims(claims: dict, user: dict, tenant_claim="tenant", roles_claim="roles"):
    assert claims["sub"] == user["sub"]
    assert claims["email"] == user["email"]
    assert claims["email_verified"] is True
    assert claims["name"] == user["name"]
    assert claims["preferred_username"] == user["username"]
    assert claims[tenant_claim] == user["tenant"]
    assert claims[roles_claim] == user["roles"]


def test_discovery_document(idp, discovery):
    assert discovery["issuer"] == idp
    assert discovery["authorization_endpoint"] == f"{idp}/authorize/"
    assert discovery["token_endpoint"] == f"{idp}/token/"
    assert discovery["userinfo_endpoint"] == f"{idp}/userinfo/"
    assert discovery["jwks_uri"] == f"{idp}/.well-known/jwks.json"
    assert discovery["end_session_endpoint"] == f"{idp}/logout/"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    assert {"tenant", "roles", "email", "name", "preferred_username"} <= set(discovery["claims_supported"])


@pytest.mark.parametrize("scope", ["openid", "openid email profile"])
def test_authorization_code_flow_with_pkce(idp, discovery, scope):
    session = requests.Session()
    params, state, nonce, verifier = sign_in(session, discovery, scope=scope)
    assert params["state"] == state
    assert params["iss"] == idp  # RFC 9207
    assert params["code"]

    response = exchange(discovery, params["code"], verifier)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"

    claims = verified_claims(discovery, tokens["id_token"])
    assert claims["iss"] == idp
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == nonce
    assert_user_claims(claims, ALICE)

    userinfo = requests.get(
        discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert userinfo.status_code == 200, userinfo.text
    assert_user_claims(userinfo.json(), ALICE)

    # A code is single-use.
    assert exchange(discovery, params["code"], verifier).status_code == 400


def test_platform_staff_have_empty_tenant(discovery):
    params, _, _, verifier = sign_in(requests.Session(), discovery, username="ops@convosuite.example")
    claims = verified_claims(discovery, exchange(discovery, params["code"], verifier).json()["id_token"])
    assert claims["sub"] == "0c5b7e93-platform-ops"
    assert claims["tenant"] == ""
    assert claims["roles"] == ["platform_admin"]


def test_code_requires_the_matching_verifier(discovery):
    params, _, _, _ = sign_in(requests.Session(), discovery)
    response = exchange(discovery, params["code"], secrets.token_urlsafe(48))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_redirect_uri(discovery):
    params, _, _, verifier = sign_in(requests.Session(), discovery)
    assert exchange(discovery, params["code"], verifier, redirect_uri=OTHER_REDIRECT_URI).status_code == 400


def test_authorize_without_code_challenge_is_refused(discovery):
    response = requests.get(authorize_url(discovery), allow_redirects=False, timeout=10)
    params = callback_params(response)
    assert params["error"] == "invalid_request"
    assert "code" not in params


def test_plain_code_challenge_is_refused(discovery):
    session = requests.Session()
    sign_in(session, discovery)  # signed in, so the request reaches code issuance
    verifier, _ = pkce_pair()
    url = authorize_url(discovery, code_challenge=verifier, code_challenge_method="plain")
    params = callback_params(session.get(url, allow_redirects=False, timeout=10))
    assert params["error"] == "invalid_request"
    assert "code" not in params


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "http://evil.localhost:8000/oidc/callback/"},
        {"redirect_uri": REDIRECT_URI + "extra/"},
        {"client_id": "not-a-client"},
    ],
)
def test_authorize_with_unknown_client_or_redirect_uri_shows_error(discovery, overrides):
    _, challenge = pkce_pair()
    url = authorize_url(discovery, code_challenge=challenge, code_challenge_method="S256", **overrides)
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code in (400, 401)
    assert "Location" not in response.headers


def test_wrong_password_shows_error_and_issues_no_code(discovery):
    session = requests.Session()
    _, challenge = pkce_pair()
    login_page = session.get(
        authorize_url(discovery, code_challenge=challenge, code_challenge_method="S256"), timeout=10
    )
    assert login_page.status_code == 200
    assert "ConvoSuite" in login_page.text and "Development identity provider" in login_page.text
    assert (
        'type="password"' in login_page.text and '<button type="submit">Sign in</button>' in login_page.text
    )

    response = submit_login(session, login_page, ALICE["username"], "not-the-password")
    assert response.status_code == 200
    assert "Wrong username or password." in response.text
    assert "Location" not in response.headers
    assert "code=" not in response.text


def test_login_requires_csrf_token(discovery):
    session = requests.Session()
    _, challenge = pkce_pair()
    login_page = session.get(
        authorize_url(discovery, code_challenge=challenge, code_challenge_method="S256"), timeout=10
    )
    data = {**hidden_inputs(login_page.text), "username": ALICE["username"], "password": DEMO_PASSWORD}
    del data["csrfmiddlewaretoken"]
    response = session.post(login_page.url, data=data, allow_redirects=False, timeout=10)
    assert response.status_code == 403


def test_silent_authorization_without_session_returns_login_required(discovery):
    _, challenge = pkce_pair()
    url = authorize_url(discovery, code_challenge=challenge, code_challenge_method="S256", prompt="none")
    params = callback_params(requests.get(url, allow_redirects=False, timeout=10))
    assert params["error"] == "login_required"


def test_end_session_redirects_to_registered_uri_and_ends_idp_session(discovery):
    session = requests.Session()
    params, _, _, verifier = sign_in(session, discovery)
    id_token = exchange(discovery, params["code"], verifier).json()["id_token"]

    response = session.get(
        discovery["end_session_endpoint"],
        params={"id_token_hint": id_token, "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "bye"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:500]
    assert response.headers["Location"] == f"{POST_LOGOUT_URI}?state=bye"

    # The IdP session is gone: a new authorization request asks for the password again.
    _, challenge = pkce_pair()
    again = session.get(
        authorize_url(discovery, code_challenge=challenge, code_challenge_method="S256"),
        allow_redirects=False,
        timeout=10,
    )
    assert again.status_code == 302
    assert "/login/" in again.headers["Location"]


def test_end_session_refuses_unregistered_redirect(discovery):
    session = requests.Session()
    params, _, _, verifier = sign_in(session, discovery)
    id_token = exchange(discovery, params["code"], verifier).json()["id_token"]

    response = session.get(
        discovery["end_session_endpoint"],
        params={"id_token_hint": id_token, "post_logout_redirect_uri": "http://evil.localhost:8000/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_end_session_as_the_main_app_sends_it_tolerates_a_stale_hint(discovery):
    """The main app sends client_id too; a hint revoked by an earlier logout must not strand the user."""
    session = requests.Session()
    params, _, _, verifier = sign_in(session, discovery)
    id_token = exchange(discovery, params["code"], verifier).json()["id_token"]
    logout = {"id_token_hint": id_token, "post_logout_redirect_uri": POST_LOGOUT_URI, "client_id": CLIENT_ID}
    for _ in range(2):  # the first logout revokes the token used as the hint the second time
        response = session.get(
            discovery["end_session_endpoint"], params=logout, allow_redirects=False, timeout=10
        )
        assert response.status_code == 302
        assert response.headers["Location"] == POST_LOGOUT_URI

    # Without client_id an unknown hint leaves no way to identify the client: refused.
    del logout["client_id"]
    response = session.get(
        discovery["end_session_endpoint"], params=logout, allow_redirects=False, timeout=10
    )
    assert response.status_code == 400


def test_end_session_with_unknown_client_is_refused(discovery):
    response = requests.get(
        discovery["end_session_endpoint"],
        params={"client_id": "not-a-client", "post_logout_redirect_uri": POST_LOGOUT_URI},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_end_session_without_redirect_shows_signed_out_page(discovery):
    session = requests.Session()
    sign_in(session, discovery)
    response = session.get(discovery["end_session_endpoint"], allow_redirects=False, timeout=10)
    assert response.status_code == 200
    assert "You are signed out." in response.text


def test_restart_keeps_keys_and_applies_changed_claims(tmp_path):
    users = json.loads(DEMO_USERS_FILE.read_text())
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps(users))
    data_dir = tmp_path / "idp"
    port = free_port()

    proc, issuer = start_idp(port, data_dir, [REDIRECT_URI], [POST_LOGOUT_URI], users_file)
    try:
        jwks_before = requests.get(f"{issuer}/.well-known/jwks.json", timeout=10).json()
    finally:
        stop_idp(proc)
    assert proc.returncode == 0, idp_output(proc)

    for user in users["users"]:
        if user["sub"] == ALICE["sub"]:
            user["roles"] = ["tenant_admin", "end_user"]
            user["name"] = "Alice A. Archer"
    users_file.write_text(json.dumps(users))

    # Same data dir, custom claim names: the keys must survive, the claims must follow the file.
    proc, issuer = start_idp(
        port,
        data_dir,
        [REDIRECT_URI],
        [POST_LOGOUT_URI],
        users_file,
        env={"IDP_TENANT_CLAIM": "org", "IDP_ROLES_CLAIM": "groups"},
    )
    try:
        disc = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        assert requests.get(disc["jwks_uri"], timeout=10).json() == jwks_before
        params, _, _, verifier = sign_in(requests.Session(), disc)
        claims = verified_claims(disc, exchange(disc, params["code"], verifier).json()["id_token"])
        expected = {**ALICE, "name": "Alice A. Archer", "roles": ["tenant_admin", "end_user"]}
        assert_user_claims(claims, expected, tenant_claim="org", roles_claim="groups")
        assert "tenant" not in claims and "roles" not in claims
    finally:
        stop_idp(proc)


def test_start_idp_reports_startup_failure(tmp_path):
    with pytest.raises(RuntimeError, match="users file not found"):
        start_idp(free_port(), tmp_path / "idp", [REDIRECT_URI], [], tmp_path / "missing.json")


# --- access tokens: RS256 JWTs for the tenant API ------------------------------------------------------


def verified_access_token(discovery, token: str) -> dict:
    jwks = jwk.JWKSet.from_json(requests.get(discovery["jwks_uri"], timeout=10).text)
    verified = jwt.JWT(
        jwt=token,
        key=jwks,
        algs=["RS256"],
        check_claims={"iss": discovery["issuer"], "aud": API_AUDIENCE, "exp": None},
    )
    header = json.loads(verified.header)
    assert header["alg"] == "RS256" and header["typ"] == "at+jwt" and header["kid"]
    return json.loads(verified.claims)


def client_credentials(discovery, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        discovery["token_endpoint"],
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )


def test_users_access_token_is_a_signed_jwt_with_tenant_and_roles(discovery):
    params, _, _, verifier = sign_in(requests.Session(), discovery)
    tokens = exchange(discovery, params["code"], verifier).json()
    claims = verified_access_token(discovery, tokens["access_token"])
    assert claims["sub"] == ALICE["sub"]
    assert claims["tenant"] == "acme" and claims["roles"] == ["end_user"]
    assert claims["client_id"] == CLIENT_ID
    assert claims["exp"] - claims["iat"] == 3600
    # The refresh token stays opaque (it is only ever read by the provider itself).
    assert tokens["refresh_token"].count(".") == 0
    # The provider still recognises its own (now JWT) access tokens.
    userinfo = requests.get(
        discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == ALICE["sub"]


def test_client_credentials_grant_gives_a_service_token_for_its_tenant(discovery):
    response = client_credentials(discovery, SERVICE_CLIENT, SERVICE_SECRET)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and "refresh_token" not in body and "id_token" not in body
    claims = verified_access_token(discovery, body["access_token"])
    assert claims["sub"] == SERVICE_CLIENT and claims["client_id"] == SERVICE_CLIENT
    assert claims["tenant"] == "acme"
    assert claims["roles"] == ["tenant_admin", "end_user"]


def test_demo_service_clients_from_the_file_get_tokens(discovery):
    demo = json.loads((DEMO_USERS_FILE.parent / "demo_service_clients.json").read_text())["clients"]
    for client in demo:
        response = client_credentials(discovery, client["client_id"], client["client_secret"])
        assert response.status_code == 200, response.text
        assert verified_access_token(discovery, response.json()["access_token"])["tenant"] == client["tenant"]


def test_client_credentials_with_a_wrong_secret_or_the_sign_in_client_are_refused(discovery):
    assert client_credentials(discovery, SERVICE_CLIENT, "wrong").status_code == 401
    # The browser sign-in client has no client credentials grant.
    response = client_credentials(discovery, CLIENT_ID, CLIENT_SECRET)
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "unauthorized_client"


def test_malformed_service_client_is_reported_at_startup(tmp_path):
    with pytest.raises(RuntimeError, match="expected CLIENT_ID:SECRET:TENANT:ROLE"):
        start_idp(free_port(), tmp_path / "idp", [REDIRECT_URI], [], service_clients=["no-colons"])
    with pytest.raises(RuntimeError, match="sign-in client's id"):
        start_idp(
            free_port(),
            tmp_path / "idp2",
            [REDIRECT_URI],
            [],
            service_clients=[f"{CLIENT_ID}:x:acme:end_user"],
        )


def test_a_tenant_onboarded_later_signs_in_without_a_restart(tmp_path):
    """--tenant-hosts '*.localhost:8000' (what make up passes): a new tenant's callback and home page are
    accepted, and a user added to the users file afterwards signs in at the next login, no restart."""
    users = json.loads(DEMO_USERS_FILE.read_text())
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps(users))
    proc, issuer = start_idp(
        free_port(), tmp_path / "idp", [REDIRECT_URI], [POST_LOGOUT_URI], users_file,
        tenant_hosts=["*.localhost:8000"],
    )  # fmt: skip
    try:
        disc = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        initech = {
            "sub": "0a1b2c3d-initech-admin", "username": "admin@initech.example", "password": DEMO_PASSWORD,
            "email": "admin@initech.example", "name": "Ian Initech", "tenant": "initech",
            "roles": ["tenant_admin", "end_user"],
        }  # fmt: skip
        users["users"].append(initech)
        users_file.write_text(json.dumps(users))
        callback = "http://initech.localhost:8000/oidc/callback/"
        session = requests.Session()
        params, _, _, verifier = sign_in(
            session, disc, username=initech["username"], redirect_uri=callback, expected_uri=callback
        )
        tokens = exchange(disc, params["code"], verifier, redirect_uri=callback).json()
        claims = verified_claims(disc, tokens["id_token"])
        assert (claims["tenant"], claims["roles"]) == ("initech", ["tenant_admin", "end_user"])
        # Signing out returns to the new tenant's home page.
        home = "http://initech.localhost:8000/"
        out = session.get(
            disc["end_session_endpoint"],
            params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": home},
            allow_redirects=False,
            timeout=10,
        )
        assert out.status_code == 302 and out.headers["Location"] == home
        # Only one label under the host, only the callback path, only that port.
        for refused in [
            "http://a.b.localhost:8000/oidc/callback/",
            "http://initech.localhost:8000/elsewhere/",
            "http://initech.localhost:9999/oidc/callback/",
            "http://initech.evil.example/oidc/callback/",
        ]:
            _, challenge = pkce_pair()
            url = authorize_url(disc, code_challenge=challenge, code_challenge_method="S256", redirect_uri=refused)
            response = requests.get(url, allow_redirects=False, timeout=10)
            assert response.status_code in (400, 401) and "Location" not in response.headers, refused
    finally:
        stop_idp(proc)
