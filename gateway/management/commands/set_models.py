"""manage.py set_models --tenant SLUG --allow a,b [--default a] [--fallback a=b,c ...]"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.actions import PolicyError, do_set_model_allow_list

from ._tenant import OPERATOR_LABEL, add_tenant_argument, in_tenant


def _names(raw: str) -> list[str]:
    return [name.strip() for name in raw.split(",") if name.strip()]


class Command(BaseCommand):
    help = "Set a tenant's allowed models (from the platform catalogue), default model and fallbacks."

    def add_arguments(self, parser: CommandParser) -> None:
        add_tenant_argument(parser)
        parser.add_argument("--allow", required=True, help="comma-separated catalogue aliases")
        parser.add_argument("--default", help="the default model (must be allowed)")
        parser.add_argument(
            "--fallback", action="append", default=[], help="MODEL=FALLBACK1,FALLBACK2 (repeatable)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fallbacks: dict[str, list[str]] | None = None
        if options["fallback"]:
            fallbacks = {}
            for spec in options["fallback"]:
                model, sep, chain = spec.partition("=")
                if not sep:
                    raise CommandError(f"--fallback {spec!r}: write MODEL=FALLBACK1,FALLBACK2.")
                fallbacks[model.strip()] = _names(chain)
        with in_tenant(options["tenant"]) as tenant:
            try:
                policy = do_set_model_allow_list(
                    allowed_models=_names(options["allow"]),
                    default_model=options["default"],
                    fallbacks=fallbacks,
                    actor_label=OPERATOR_LABEL,
                )
            except PolicyError as refusal:
                raise CommandError(str(refusal)) from refusal
        self.stdout.write(
            f"{tenant.schema_name}: models {', '.join(policy.allowed_models)} (default {policy.default_model}); "
            f"fallbacks {policy.fallbacks or 'none'}"
        )
