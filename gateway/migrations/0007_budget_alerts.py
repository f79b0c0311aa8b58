from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0006_merge_hash_chain"),
    ]

    operations = [
        migrations.AddField(
            model_name="gatewaypolicy",
            name="budget_alert_percent",
            field=models.PositiveSmallIntegerField(blank=True, default=80, null=True),
        ),
        migrations.CreateModel(
            name="BudgetAlert",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "budget",
                    models.CharField(
                        choices=[
                            ("daily_tokens", "Daily token budget"),
                            ("monthly_tokens", "Monthly token budget"),
                            ("monthly_spend", "Monthly spending cap"),
                        ],
                        max_length=32,
                    ),
                ),
                ("period", models.CharField(max_length=8)),
                ("percent_used", models.PositiveIntegerField()),
                ("threshold_percent", models.PositiveSmallIntegerField()),
                ("recipients", models.JSONField(blank=True, default=list)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["-created_at"],
                "constraints": [
                    models.UniqueConstraint(fields=("budget", "period"), name="budgetalert_once_per_period")
                ],
            },
        ),
    ]
