"""`flask sandbox`: serve the API simulators so workflows run against a real HTTP peer."""

from __future__ import annotations

import click

from sandbox import mounts
from sandbox.server import serve_forever


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--api-key", default="sandbox-key", show_default=True, help="The X-API-Key the simulator accepts.")
def sandbox(host: str, port: int, api_key: str) -> None:
    """Serve every API simulator (stateful, with fault injection), each under its prefix."""
    for prefix in sorted(mounts.MOUNTS):
        click.echo(f"sandbox: http://{host}:{port}{prefix} (control routes under {prefix}/__sandbox__/)")
    serve_forever(mounts.create_app(api_key=api_key), host, port)
