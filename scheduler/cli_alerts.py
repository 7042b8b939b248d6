"""``solidarity alerts test``: send one alert to ``SOLIDARITY_ALERTS``, to see that it arrives."""

from __future__ import annotations

import click

from scheduler.alerts import VARIABLE, Alerts
from scheduler.cli_common import handle_errors
from scheduler.config import environment
from scheduler.errors import SolidarityError


@click.group("alerts")
def alerts_group() -> None:
    """Alerts that reach a person (SOLIDARITY_ALERTS: Apprise URLs, space-separated)."""


@alerts_group.command("test")
@handle_errors
def alerts_test() -> None:
    """Send one test alert to every URL of SOLIDARITY_ALERTS; exit 1 if it is not delivered."""
    alerts = Alerts.from_environment(environment())
    if alerts.send is None:
        raise SolidarityError(
            f"{VARIABLE} is not set; set it (environment or .env) to one or more Apprise URLs, "
            "such as ntfys://ntfy.sh/YOUR-TOPIC or tgram://BOT_TOKEN/CHAT_ID"
        )
    title = "solidarity: a test alert"
    alerts.deliver(title, "If you read this, alerts reach you.")
    if not alerts.sent:
        raise SolidarityError("the test alert was not delivered; see the line above")
    click.echo("test alert delivered")
