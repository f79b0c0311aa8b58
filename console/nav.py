"""The console's left navigation, in one place. A page that is not built yet has url_name=None and links to
the "coming with the next release" page; wiring a new page is one line: give its entry a URL name."""

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    section: str
    url_name: str | None = None

    @property
    def href(self) -> str:
        if self.url_name is None:
            return reverse("console:coming_soon", kwargs={"section": self.key})
        return reverse(self.url_name)

    @property
    def is_placeholder(self) -> bool:
        return self.url_name is None


CONSOLE_NAV: list[NavItem] = [
    NavItem("usage", "Usage", "Monitor", "console:usage"),
    NavItem("model-calls", "Model calls", "Monitor", "console:model_calls"),
    NavItem("audit", "Audit events", "Monitor", "console:audit"),
    NavItem("evidence", "Evidence export", "Monitor", "audit:home"),
    NavItem("prompts", "Prompts", "Configure", "prompts:list"),
    NavItem("knowledge", "Knowledge", "Configure", "knowledge:home"),
    NavItem("models", "Models", "Configure"),
    NavItem("budgets", "Budgets & limits", "Configure"),
    NavItem("kill-switch", "Kill switch", "Configure"),
    NavItem("members", "Members", "People & access", "console:members"),
    NavItem("api-keys", "API keys", "People & access"),
]


def nav_sections(active_key: str) -> list[tuple[str, list[tuple[NavItem, bool]]]]:
    sections: dict[str, list[tuple[NavItem, bool]]] = {}
    for item in CONSOLE_NAV:
        sections.setdefault(item.section, []).append((item, item.key == active_key))
    return list(sections.items())


def placeholder(key: str) -> NavItem | None:
    return next((item for item in CONSOLE_NAV if item.key == key and item.is_placeholder), None)
