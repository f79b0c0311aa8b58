"""The console's left navigation for every console page, whichever app renders it."""

from typing import Any

from django import template

from console.nav import nav_sections

register = template.Library()

# URL namespaces whose pages belong to a nav entry of another name.
NAMESPACE_NAV_KEYS = {"audit": "evidence"}


@register.inclusion_tag("console/_nav.html", takes_context=True)
def console_nav(context: Any) -> dict[str, Any]:
    # Console views pass `active`; apps that extend the console layout pass `console_section` or are
    # recognised by their URL namespace (prompts, knowledge).
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    namespace = getattr(match, "namespace", "") or ""
    active = (
        context.get("active")
        or context.get("console_section")
        or NAMESPACE_NAV_KEYS.get(namespace, namespace)
    )
    return {"nav": nav_sections(active)}
