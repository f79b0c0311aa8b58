"""The platform's model catalogue (public schema): which models tenants may use, where they are served and
what they cost. Edited by platform admins in the Django admin; read by the gateway (gateway/config.py),
which caches it in each process."""

from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

ALIAS_FORMAT = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{0,63}$",
    "Use lower-case letters, digits, '.', '_' and '-' (starting with a letter or digit), e.g. gpt-4o-mini.",
)
ENV_NAME_FORMAT = RegexValidator(
    r"^[A-Z_][A-Z0-9_]{0,99}$",
    "Give the name of an environment variable (upper-case letters, digits and '_', e.g. OPENAI_API_KEY), "
    "never the key itself.",
)
NOT_NEGATIVE = MinValueValidator(Decimal(0), "A price cannot be negative.")
# What a chat template may add to a prompt unseen (a default system prompt, markers), unless told otherwise.
DEFAULT_TEMPLATE_TOKENS = 64


class CatalogueEntry(models.Model):
    class Kind(models.TextChoices):
        CHAT = "chat", "Chat"
        EMBEDDING = "embedding", "Embedding"

    # Tenants' allow-lists, fallbacks, prompts and recorded calls refer to the alias: it never changes.
    alias = models.CharField(max_length=64, unique=True, validators=[ALIAS_FORMAT])
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CHAT)
    litellm_model = models.CharField("LiteLLM model", max_length=200, help_text="e.g. openai/gpt-4o-mini")
    provider = models.CharField(max_length=64, help_text="A label for reports, e.g. openai, local-llama-cpp.")
    api_base = models.CharField(
        "API base", max_length=300, blank=True, help_text="Blank: the provider's own."
    )
    # The secret stays in the environment of the web and worker processes; the database holds only its name.
    api_key_env = models.CharField(
        "API key environment variable",
        max_length=100,
        blank=True,
        validators=[ENV_NAME_FORMAT],
        help_text="The NAME of the environment variable holding the key (e.g. OPENAI_API_KEY), never the key. "
        "Blank: LiteLLM's default variable for the provider.",
    )
    # USD per token; both blank = LiteLLM's bundled price map.
    input_cost_per_token = models.DecimalField(
        "input price per token (USD)",
        max_digits=20,
        decimal_places=12,
        null=True,
        blank=True,
        validators=[NOT_NEGATIVE],
    )
    output_cost_per_token = models.DecimalField(
        "output price per token (USD)",
        max_digits=20,
        decimal_places=12,
        null=True,
        blank=True,
        validators=[NOT_NEGATIVE],
    )
    max_tokens = models.PositiveIntegerField(
        default=256,
        validators=[MinValueValidator(1, "At least one token.")],
        help_text="Cap on the answer's tokens per call.",
    )
    timeout_seconds = models.FloatField(
        default=60,
        validators=[MinValueValidator(0.1, "At least 0.1 seconds.")],
        help_text="Seconds per attempt.",
    )
    # How the gateway counts this model's tokens before it answers (gateway/tokens.py, docs/gateway.md).
    tokenizer = models.CharField(
        max_length=300,
        blank=True,
        help_text='Blank: a bound that holds for any byte-level tokenizer (safe, loose). "openai": OpenAI\'s '
        'own models. "gguf:<file>": the model\'s own tokenizer and chat template from its GGUF file (a path, '
        "or package/file for a file inside an installed Python package).",
    )
    template_tokens = models.PositiveIntegerField(
        default=DEFAULT_TEMPLATE_TOKENS,
        help_text="With a blank tokenizer: the most tokens the model's chat template adds beyond the roles "
        "and texts (its default system prompt, markers).",
    )
    context_window = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1, "At least one token.")],
        help_text="Prompt and answer together, in tokens. Blank: unknown (the provider decides). With an "
        "exact tokenizer, a prompt that cannot fit is refused before the provider is called.",
    )
    enabled = models.BooleanField(
        default=True, help_text="A disabled model is refused and no tenant can choose it."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["alias"]
        verbose_name = "model"
        verbose_name_plural = "models"

    def __str__(self) -> str:
        return self.alias


class CatalogueChange(models.Model):
    """Who changed which catalogue entry (or reset its circuit), when, from what to what."""

    class Action(models.TextChoices):
        ADDED = "added", "Added"
        CHANGED = "changed", "Changed"
        SEEDED = "seeded", "Seeded from settings"
        CIRCUIT_RESET = "circuit_reset", "Circuit reset"

    at = models.DateTimeField(auto_now_add=True)
    alias = models.CharField(max_length=64)
    action = models.CharField(max_length=16, choices=Action.choices)
    actor_label = models.CharField(max_length=200)
    # {field: [before, after]} as strings; empty for a reset.
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["alias", "-at"])]

    def __str__(self) -> str:
        return f"{self.alias} {self.action} by {self.actor_label}"
