"""``ledgerflow webhooks serve``: the receiver of a tenant's signed webhooks (``flows/webhooks.py``),
which stores each event in the inbox and asks for one reconcile run per burst."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

webhooks_app = typer.Typer(help="Receive signed webhooks from a tenant's systems and start runs.",
                           no_args_is_help=True)

EXIT_INPUT = 2  # as in flows.cli: bad input or configuration, the message says where


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_INPUT)


@webhooks_app.command("serve")
def serve_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id or path to its TOML file.")],
    host: Annotated[str, typer.Option(help="Address to listen on; put a TLS proxy in front of anything but "
                                           "127.0.0.1.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8787,
    start: Annotated[str, typer.Option(
        "--start", help="How a burst of events starts its one run: prefect:<flow>/<deployment> (create a run "
                        "of that deployment, e.g. prefect:reconcile/demo-reconcile-daily), event (emit "
                        "ledgerflow.webhook.received for the deployment's trigger) or none (the next scheduled "
                        "run takes the events).")] = "event",
) -> None:
    """Take POST /webhooks/<tenant>/<source> for one tenant until interrupted."""
    import logging

    from flows.events import starter_from
    from flows.webhooks import serve
    from schemas.tenant import load_tenant

    try:
        starter = starter_from(start)
        config = load_tenant(tenant)
    except ValueError as exc:  # a wrong --start, or a ConfigError naming file, key and value
        _fail(str(exc))
    if not any(getattr(settings, "webhook_secret_env", None) for settings in config.sources.values()):
        _fail(f"tenant {config.id} has no source that sends webhooks (a source with webhook_secret_env, "
              "e.g. type = \"training\")")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"webhooks of {config.id} on http://{host}:{port}/webhooks/{config.id}/<source> (runs: {start})",
          file=sys.stderr)
    serve(config, starter, host=host, port=port)
