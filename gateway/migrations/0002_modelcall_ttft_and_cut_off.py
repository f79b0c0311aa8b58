from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelcall",
            name="ttft_ms",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="modelcall",
            name="status",
            field=models.CharField(
                choices=[("ok", "OK"), ("error", "Error"), ("refused", "Refused"), ("cut_off", "Cut off")],
                max_length=16,
            ),
        ),
    ]
