"""One-off notices ("Deleted …", "Break-glass open …") for base.html.

A tag rather than the `messages` context variable: the chat pages use `messages` for the conversation's
own messages, which would shadow it."""

from typing import Any

from django import template
from django.contrib.messages import get_messages

register = template.Library()


@register.inclusion_tag("_flash_messages.html", takes_context=True)
def flash_messages(context: Any) -> dict[str, Any]:
    request = context.get("request")
    return {"notices": list(get_messages(request)) if request is not None else []}
