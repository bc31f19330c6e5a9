"""Which channel a trigger's message goes out on for one contact, or why none: the one rule
the worker sends by and explain reports."""

from __future__ import annotations

from ..reads.reach import Reach, best_channel, reachable

WIDGET_CHANNELS = ("widget_chat", "widget_popup", "lead_form")


def choose_channel(channel: str, reach: Reach) -> tuple[str | None, str]:
    """(widget | email | telegram | vk, why) or (None, why not)."""
    if channel == "best_available":
        chosen = best_channel(reach)
        if chosen is None:
            return None, ("offline in the widget, no linked messenger, no email address "
                          "(or unsubscribed from each)")
        return chosen, {"widget": "online in the widget now", "email": "offline, and email is what reaches them"}.get(
            chosen, f"offline in the widget; linked on {chosen}")
    wanted = "widget" if channel in WIDGET_CHANNELS else channel
    if not reachable(reach, wanted):
        if wanted in reach.unsubscribed:
            return None, f"unsubscribed from {wanted}"
        if wanted in reach.blocked:
            return None, f"blocked the bot on {wanted}"
        return None, f"no {wanted} for this contact"
    if wanted == "widget":
        return wanted, "online in the widget now" if reach.online_widget else "shown when they next open a page with the widget"
    return wanted, f"their {wanted}"
