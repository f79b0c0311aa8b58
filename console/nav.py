"""The console's left navigation, in one place: wiring a new page is one line, its entry with its URL name."""

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    section: str
    url_name: str

    @property
    def href(self) -> str:
        return reverse(self.url_name)


CONSOLE_NAV: list[NavItem] = [
    NavItem("usage", "Usage", "Monitor", "console:usage"),
    NavItem("model-calls", "Model calls", "Monitor", "console:model_calls"),
    NavItem("audit", "Audit events", "Monitor", "console:audit"),
    NavItem("evidence", "Evidence export", "Monitor", "audit:home"),
    NavItem("incidents", "Incidents", "Monitor", "incidents:console"),
    NavItem("prompts", "Prompts", "Configure", "prompts:list"),
    NavItem("knowledge", "Knowledge", "Configure", "knowledge:home"),
    NavItem("models", "Models", "Configure", "console:models"),
    NavItem("budgets", "Budgets & limits", "Configure", "console:budgets"),
    NavItem("kill-switch", "Kill switch", "Configure", "console:kill_switch"),
    NavItem("members", "Members", "People & access", "console:members"),
    NavItem("api-keys", "API keys", "People & access", "console:api_keys"),
]


def nav_sections(active_key: str) -> list[tuple[str, list[tuple[NavItem, bool]]]]:
    sections: dict[str, list[tuple[NavItem, bool]]] = {}
    for item in CONSOLE_NAV:
        sections.setdefault(item.section, []).append((item, item.key == active_key))
    return list(sections.items())
