"""Bring the database in line with the users file and the command line. Safe to run on every start."""

import json
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db import transaction
from oauth2_provider.models import get_application_model

from devtools.idp.models import ServiceClient

REQUIRED_USER_KEYS = {"sub", "username", "password", "email", "name", "tenant", "roles"}
REQUIRED_SERVICE_CLIENT_KEYS = {"client_id", "client_secret", "tenant", "roles"}


def load_users(users_file: Path) -> list[dict]:
    try:
        data = json.loads(Path(users_file).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{users_file}: not valid JSON ({exc})") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, list):
        raise ValueError(f'{users_file}: expected {{"users": [...]}}')
    for i, entry in enumerate(users):
        if not isinstance(entry, dict):
            raise ValueError(f"{users_file}: user #{i} is not an object")
        missing = REQUIRED_USER_KEYS - entry.keys()
        if missing:
            raise ValueError(f"{users_file}: user #{i} lacks {', '.join(sorted(missing))}")
        if not isinstance(entry["tenant"], str):
            raise ValueError(f"{users_file}: user {entry['username']}: tenant must be a string")
        if not isinstance(entry["roles"], list) or not all(isinstance(r, str) for r in entry["roles"]):
            raise ValueError(f"{users_file}: user {entry['username']}: roles must be a list of strings")
    for key in ("sub", "username"):
        values = [u[key] for u in users]
        if len(values) != len(set(values)):
            raise ValueError(f"{users_file}: duplicate {key}")
    return users


@transaction.atomic
def sync_users(users: list[dict]) -> None:
    User = get_user_model()
    # The file is the source of truth. Dropping absent users first also frees their
    # usernames for a new sub that reuses one.
    User.objects.exclude(sub__in=[u["sub"] for u in users]).delete()
    for entry in users:
        user = User.objects.filter(sub=entry["sub"]).first() or User(sub=entry["sub"])
        user.username = entry["username"]
        user.email = entry["email"]
        user.name = entry["name"]
        user.tenant = entry["tenant"]
        user.roles = list(entry["roles"])
        if not user.check_password(entry["password"]):
            user.set_password(entry["password"])
        user.save()


_users_file_stamp: dict[str, tuple[int, int]] = {}


def remember_users_file(users_file: Path) -> None:
    stat = Path(users_file).stat()
    _users_file_stamp[str(users_file)] = (stat.st_mtime_ns, stat.st_size)


def sync_users_if_changed(users_file: Path) -> bool:
    """Read the users file again if it changed since it was last read; True if the users were synced. A file
    that does not parse is reported and ignored: the users read before stay."""
    try:
        stat = Path(users_file).stat()
    except OSError:
        return False
    stamp = (stat.st_mtime_ns, stat.st_size)
    if _users_file_stamp.get(str(users_file)) == stamp:
        return False
    _users_file_stamp[str(users_file)] = stamp
    try:
        sync_users(load_users(users_file))
    except ValueError as exc:
        print(f"IDP ignored the changed users file: {exc}", file=sys.stderr, flush=True)
        return False
    print(f"IDP read the changed users file {users_file}", flush=True)
    return True


@transaction.atomic
def sync_client(client_id: str, client_secret: str, redirect_uris: list[str], post_logout_uris: list[str]):
    Application = get_application_model()
    # Exactly one sign-in client: a renamed client id must not leave the old one usable.
    Application.objects.exclude(client_id=client_id).filter(service_client__isnull=True).delete()
    app = Application.objects.filter(client_id=client_id).first() or Application(client_id=client_id)
    app.name = "ConvoSuite"
    app.client_type = Application.CLIENT_CONFIDENTIAL
    app.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
    if not app.pk or not check_password(client_secret, app.client_secret):
        app.client_secret = client_secret  # hashed on save
    app.hash_client_secret = True
    app.redirect_uris = " ".join(redirect_uris)
    app.post_logout_redirect_uris = " ".join(post_logout_uris)
    app.skip_authorization = True
    app.algorithm = Application.RS256_ALGORITHM
    app.full_clean()  # rejects malformed redirect URIs with a readable message
    app.save()
    return app


def _check_service_client(entry, where: str) -> dict:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: not an object")
    missing = REQUIRED_SERVICE_CLIENT_KEYS - entry.keys()
    if missing:
        raise ValueError(f"{where}: lacks {', '.join(sorted(missing))}")
    for key in ("client_id", "client_secret", "tenant"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise ValueError(f"{where}: {key} must be a non-empty string")
    if not isinstance(entry["roles"], list) or not all(isinstance(r, str) for r in entry["roles"]):
        raise ValueError(f"{where}: roles must be a list of strings")
    return {key: entry[key] for key in REQUIRED_SERVICE_CLIENT_KEYS}


def load_service_clients(path: Path | None, specs: list[str]) -> list[dict]:
    """Service clients from a JSON file ({"clients": [...]}) and from CLIENT_ID:SECRET:TENANT:ROLE[,ROLE]
    specs given on the command line. A client id may appear only once."""
    clients = []
    if path is not None:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        entries = data.get("clients") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError(f'{path}: expected {{"clients": [...]}}')
        clients += [_check_service_client(entry, f"{path}: client #{i}") for i, entry in enumerate(entries)]
    for spec in specs:
        parts = spec.split(":")
        if len(parts) != 4:
            raise ValueError(f"--service-client {spec!r}: expected CLIENT_ID:SECRET:TENANT:ROLE[,ROLE]")
        client_id, secret, tenant, roles = parts
        entry = {"client_id": client_id, "client_secret": secret, "tenant": tenant, "roles": roles.split(",")}
        clients.append(_check_service_client(entry, f"--service-client {client_id}"))
    ids = [client["client_id"] for client in clients]
    if len(ids) != len(set(ids)):
        raise ValueError("service clients: duplicate client_id")
    return clients


@transaction.atomic
def sync_service_clients(clients: list[dict], sign_in_client_id: str) -> None:
    Application = get_application_model()
    if any(client["client_id"] == sign_in_client_id for client in clients):
        raise ValueError(f"service client {sign_in_client_id!r} has the sign-in client's id")
    # The configuration is the source of truth: a removed service client stops getting tokens.
    Application.objects.filter(service_client__isnull=False).exclude(
        client_id__in=[client["client_id"] for client in clients]
    ).delete()
    for entry in clients:
        app = Application.objects.filter(client_id=entry["client_id"]).first()
        if app is None:
            app = Application(client_id=entry["client_id"])
        app.name = f"Service client for {entry['tenant']}"
        app.client_type = Application.CLIENT_CONFIDENTIAL
        app.authorization_grant_type = Application.GRANT_CLIENT_CREDENTIALS
        if not app.pk or not check_password(entry["client_secret"], app.client_secret):
            app.client_secret = entry["client_secret"]  # hashed on save
        app.hash_client_secret = True
        app.redirect_uris = ""
        app.post_logout_redirect_uris = ""
        app.skip_authorization = True
        app.algorithm = Application.RS256_ALGORITHM
        app.full_clean()
        app.save()
        ServiceClient.objects.update_or_create(
            application=app, defaults={"tenant": entry["tenant"], "roles": list(entry["roles"])}
        )
