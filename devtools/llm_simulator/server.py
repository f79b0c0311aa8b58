"""Runs the simulator app under uvicorn and announces readiness on stdout."""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from devtools.llm_simulator.app import TRANSPORT_SCOPE_KEY, create_app

READY_PREFIX = "SIMULATOR ready on "


class TransportExposingH11Protocol(H11Protocol):
    """Puts the socket transport into the ASGI scope.

    ASGI offers no way to close a connection without answering (uvicorn sends a 500 instead),
    yet "the vendor hung up" is exactly what the disconnect scenarios must simulate.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        app = self.app

        async def app_with_transport(scope, receive, send):  # type: ignore[no-untyped-def]
            scope[TRANSPORT_SCOPE_KEY] = transport
            await app(scope, receive, send)

        self.app = app_with_transport


async def serve(host: str, port: int) -> None:
    config = uvicorn.Config(
        create_app(),
        host=host,
        port=port,
        http=TransportExposingH11Protocol,
        lifespan="off",
        log_level="warning",
        access_log=False,
        # Hanging "timeout" requests must not block shutdown.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # startup failed (e.g. port taken): surface it
            raise SystemExit("simulator failed to start")
        await asyncio.sleep(0.01)
    # Report the bound port, which differs from the requested one when port 0 was asked for.
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    print(f"{READY_PREFIX}http://{host}:{bound_port}", flush=True)
    await task
