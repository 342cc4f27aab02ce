"""Stable author ids on messages, and the names in use (``NameClaim``).

Old messages with an author get ``author_uid = "u:<author_id>"``; guests' old messages cannot be
tied to a session any more and keep an empty ``author_uid``. Every existing user gets a claim on
its username.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import migrations, models
from django.db.models import F, Value
from django.db.models.functions import Cast, Concat


def fill(apps, schema_editor):
    """Fill ``author_uid`` for messages with an author, and claim every username."""
    from chat.names import name_key

    Message = apps.get_model("chat", "Message")
    Message.objects.filter(author__isnull=False).update(
        author_uid=Concat(Value("u:"), Cast(F("author_id"), models.CharField()))
    )
    NameClaim = apps.get_model("chat", "NameClaim")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    # A historical model has no USERNAME_FIELD: the current user model names the field (a custom
    # user model's may be "email", with no "username" at all).
    field = get_user_model().USERNAME_FIELD
    NameClaim.objects.bulk_create(
        [
            NameClaim(
                uid=f"u:{user.pk}",
                user_id=user.pk,
                name=getattr(user, field)[:64],
                key=name_key(getattr(user, field)),
                guest=False,
            )
            for user in User.objects.all()
        ],
        batch_size=500,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0002_demo_room"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="author_uid",
            field=models.CharField(blank=True, default="", max_length=40),
        ),
        migrations.CreateModel(
            name="NameClaim",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("uid", models.CharField(max_length=40, unique=True)),
                ("name", models.CharField(max_length=64)),
                ("key", models.TextField(db_index=True)),
                ("guest", models.BooleanField()),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                (
                    "last_seen",
                    models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                ),
                (
                    "user",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="chat_name_claim",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("guest", True)),
                        fields=("key",),
                        name="chat_nameclaim_guest_key_uniq",
                    )
                ],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
