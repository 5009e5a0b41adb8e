"""`flask sandbox`: serve the API simulators so workflows run against a real HTTP peer."""

from __future__ import annotations

import click

from sandbox import bigchange
from sandbox.server import serve_forever


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--api-key", default="sandbox-key", show_default=True, help="The X-API-Key the simulator accepts.")
def sandbox(host: str, port: int, api_key: str) -> None:
    """Serve the BigChange vh3 simulator (stateful, with fault injection under /__sandbox__/)."""
    click.echo(f"BigChange sandbox on http://{host}:{port} (X-API-Key: {'*' * len(api_key)})")
    serve_forever(bigchange.create_app(api_key=api_key), host, port)
