"""Shared by the incident commands: find the incident, name the operator."""

import argparse

from django.core.management.base import CommandError

from audit.actions import cli_actor_label
from incidents.models import Incident


def add_incident_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--incident", required=True, help="the incident number (INC-12 or 12)")


def incident_from(value: str) -> Incident:
    number = value.upper().removeprefix("INC-")
    incident = Incident.objects.filter(pk=int(number)).first() if number.isdigit() else None
    if incident is None:
        raise CommandError(f"No incident {value!r}.")
    return incident


def operator_label() -> str:
    return f"operator {cli_actor_label()} (manage.py)"
