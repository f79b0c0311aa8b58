"""Run the development OpenID Connect provider: ``python -m devtools.idp --help``."""

import argparse
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from devtools.idp import config


def _env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    return value.replace(",", " ").split() if value else list(default)


def parse_args(argv=None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m devtools.idp",
        description="Development OpenID Connect provider for ConvoSuite. "
        "Each option can also be set with the environment variable shown in brackets.",
    )
    add = parser.add_argument
    add("--host", default=env("IDP_HOST", config.HOST), help="address to listen on [IDP_HOST]")
    add("--port", type=int, default=int(env("IDP_PORT", config.PORT)), help="[IDP_PORT]")
    add(
        "--users", type=Path, default=Path(env("IDP_USERS", config.USERS_FILE)), help="users file [IDP_USERS]"
    )
    add(
        "--data-dir",
        type=Path,
        default=Path(env("IDP_DATA_DIR", config.DATA_DIR)),
        help="SQLite database and keys; delete it to start over [IDP_DATA_DIR]",
    )
    add(
        "--issuer",
        default=env("IDP_ISSUER", config.ISSUER),
        help="exact iss value, no trailing slash [IDP_ISSUER]",
    )
    add("--client-id", default=env("IDP_CLIENT_ID", config.CLIENT_ID), help="[IDP_CLIENT_ID]")
    add("--client-secret", default=env("IDP_CLIENT_SECRET", config.CLIENT_SECRET), help="[IDP_CLIENT_SECRET]")
    # Repeatable; the env variants take a space- or comma-separated list.
    add(
        "--redirect-uri",
        dest="redirect_uris",
        action="append",
        metavar="URI",
        help="exact callback URI, repeatable [IDP_REDIRECT_URIS]",
    )
    add(
        "--post-logout-redirect-uri",
        dest="post_logout_uris",
        action="append",
        metavar="URI",
        help="exact post-logout URI, repeatable [IDP_POST_LOGOUT_REDIRECT_URIS]",
    )
    add(
        "--service-clients",
        type=Path,
        default=env("IDP_SERVICE_CLIENTS", str(config.SERVICE_CLIENTS_FILE)),
        help="JSON file of client-credentials clients, each for one tenant; '' for none [IDP_SERVICE_CLIENTS]",
    )
    add(
        "--service-client",
        dest="service_client_specs",
        action="append",
        default=[],
        metavar="ID:SECRET:TENANT:ROLE[,ROLE]",
        help="one more client-credentials client, repeatable",
    )
    add(
        "--api-audience",
        default=env("IDP_API_AUDIENCE", config.API_AUDIENCE),
        help="'aud' of access tokens: the API that accepts them [IDP_API_AUDIENCE]",
    )
    add(
        "--tenant-hosts",
        default=env("IDP_TENANT_HOSTS", " ".join(config.TENANT_HOSTS)),
        metavar="'*.HOST:PORT ...'",
        help="development: also accept <label>.HOST:PORT's callback and home page as redirect URIs, so tenants "
        "onboarded later sign in without a restart; space-separated [IDP_TENANT_HOSTS]",
    )
    add("--tenant-claim", default=env("IDP_TENANT_CLAIM", config.TENANT_CLAIM), help="[IDP_TENANT_CLAIM]")
    add("--roles-claim", default=env("IDP_ROLES_CLAIM", config.ROLES_CLAIM), help="[IDP_ROLES_CLAIM]")
    args = parser.parse_args(argv)
    # argparse would append to a list default instead of replacing it.
    args.redirect_uris = args.redirect_uris or _env_list("IDP_REDIRECT_URIS", config.REDIRECT_URIS)
    args.post_logout_uris = args.post_logout_uris or _env_list(
        "IDP_POST_LOGOUT_REDIRECT_URIS", config.POST_LOGOUT_REDIRECT_URIS
    )

    issuer = urlsplit(args.issuer)
    if issuer.scheme not in ("http", "https") or not issuer.hostname or issuer.query or issuer.fragment:
        parser.error(f"--issuer must be an http(s) URL without query or fragment: {args.issuer}")
    if args.issuer.endswith("/"):
        # Relying parties compare iss byte for byte and append /.well-known/... to it.
        parser.error(f"--issuer must not end with a slash: {args.issuer}")
    for spec in args.tenant_hosts.replace(",", " ").split():
        if not spec.startswith("*.") or ":" not in spec or "/" in spec:
            parser.error(f"--tenant-hosts expects entries like '*.localhost:8000', not {spec!r}")
    if not args.users.is_file():
        parser.error(f"users file not found: {args.users}")
    if str(args.service_clients) in ("", "."):
        args.service_clients = None
    elif not args.service_clients.is_file():
        parser.error(f"service clients file not found: {args.service_clients}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)

    # Settings read these at import time, so they must be in place before django.setup().
    os.environ.update(
        IDP_DATA_DIR=str(data_dir),
        IDP_ISSUER=args.issuer,
        IDP_TENANT_CLAIM=args.tenant_claim,
        IDP_ROLES_CLAIM=args.roles_claim,
        IDP_API_AUDIENCE=args.api_audience,
        IDP_TENANT_HOSTS=args.tenant_hosts,
        IDP_USERS=str(args.users.resolve()),
    )
    # Assigned, not setdefault: a shell exporting the main app's settings must not leak in.
    os.environ["DJANGO_SETTINGS_MODULE"] = "devtools.idp.settings"

    import django

    django.setup()

    from django.core.exceptions import ValidationError
    from django.core.management import call_command
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    from devtools.idp import bootstrap

    call_command("migrate", interactive=False, verbosity=0)
    try:
        users = bootstrap.load_users(args.users)
    except ValueError as exc:  # includes malformed JSON
        sys.exit(f"IDP cannot use the users file: {exc}")
    bootstrap.sync_users(users)
    bootstrap.remember_users_file(args.users.resolve())
    try:
        service_clients = bootstrap.load_service_clients(args.service_clients, args.service_client_specs)
        bootstrap.sync_service_clients(service_clients, args.client_id)
    except ValueError as exc:
        sys.exit(f"IDP cannot use the service clients: {exc}")
    except ValidationError as exc:
        sys.exit(f"IDP service client settings rejected: {exc.message_dict}")
    try:
        bootstrap.sync_client(args.client_id, args.client_secret, args.redirect_uris, args.post_logout_uris)
    except ValidationError as exc:
        sys.exit(f"IDP client settings rejected: {exc.message_dict}")

    ipv6 = ":" in args.host
    try:
        server = ThreadedWSGIServer((args.host, args.port), WSGIRequestHandler, ipv6=ipv6)
    except OSError as exc:
        sys.exit(f"IDP cannot listen on {args.host}:{args.port}: {exc}")
    server.set_app(get_wsgi_application())

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    shown_host = f"[{args.host}]" if ipv6 else args.host
    print(f"IDP ready on http://{shown_host}:{args.port} issuer={args.issuer}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print("IDP stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
