"""The platform admin's onboarding form: what `manage.py create_tenant` takes, checked before anything is built."""

from django import forms
from django.core.validators import RegexValidator
from django_tenants.utils import get_public_schema_name

from lifecycle.actions import TENANT_SLUG_RE
from tenants.models import Domain, Tenant

_HOST = RegexValidator(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$",
    "Enter host names only (letters, digits, hyphens and dots; no scheme, port or path).",
)


class OnboardTenantForm(forms.Form):
    slug = forms.RegexField(
        regex=TENANT_SLUG_RE,
        max_length=41,
        help_text="Schema name and the identity provider's tenant claim: a-z, 0-9 and _, starting with a letter.",
        error_messages={"invalid": "Use 2-41 characters: a-z, 0-9 and _, starting with a letter."},
    )
    name = forms.CharField(max_length=100, help_text="Shown to the tenant's people.")
    domains = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text="One host name per line; the first is the primary domain.",
    )

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if slug == get_public_schema_name():
            raise forms.ValidationError("That name is reserved for the platform.")
        if Tenant.objects.filter(schema_name=slug).exists():
            raise forms.ValidationError(f"A tenant {slug!r} already exists.")
        return slug

    def clean_domains(self) -> list[str]:
        hosts = [line.strip().lower() for line in self.cleaned_data["domains"].splitlines() if line.strip()]
        if len(set(hosts)) != len(hosts):
            raise forms.ValidationError("A host name is listed twice.")
        for host in hosts:
            _HOST(host)
        taken = sorted(Domain.objects.filter(domain__in=hosts).values_list("domain", flat=True))
        if taken:
            raise forms.ValidationError(f"Already used by another tenant: {', '.join(taken)}.")
        return hosts
