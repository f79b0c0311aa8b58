"""Bring the database in line with the users file and the command line. Safe to run on every start."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db import transaction
from oauth2_provider.models import get_application_model

REQUIRED_USER_KEYS = {"sub", "username", "password", "email", "name", "tenant", "roles"}


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


@transaction.atomic
def sync_client(client_id: str, client_secret: str, redirect_uris: list[str], post_logout_uris: list[str]):
    Application = get_application_model()
    # Exactly one client: a renamed client id must not leave the old one usable.
    Application.objects.exclude(client_id=client_id).delete()
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
