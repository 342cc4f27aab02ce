"""Rooms get a visibility (public, signed-in, private), members with a role, invitations, and a
key for direct conversations. Existing rooms keep their access: a room that allowed guests
becomes public, every other room open to signed-in users; ``allow_guests`` stays as the stored
shadow of "public" (a constraint keeps them in step)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def visibility_from_allow_guests(apps, schema_editor):
    room = apps.get_model("chat", "Room")
    room.objects.filter(allow_guests=True).update(visibility="public")
    room.objects.filter(allow_guests=False).update(visibility="signed_in")


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0009_message_html"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Invite",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "token_hash",
                    models.CharField(
                        blank=True, editable=False, max_length=64, null=True, unique=True
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                ("max_uses", models.PositiveIntegerField(blank=True, null=True)),
                ("uses", models.PositiveIntegerField(default=0)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-created_at", "-pk"],
            },
        ),
        migrations.CreateModel(
            name="Membership",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "role",
                    models.CharField(
                        choices=[("owner", "Owner"), ("member", "Member")],
                        default="member",
                        max_length=16,
                    ),
                ),
                ("joined_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["room", "joined_at", "pk"],
            },
        ),
        migrations.AddField(
            model_name="room",
            name="direct_key",
            field=models.CharField(
                blank=True, editable=False, max_length=41, null=True, unique=True
            ),
        ),
        migrations.AddField(
            model_name="room",
            name="visibility",
            field=models.CharField(
                choices=[
                    ("public", "Public: guests too"),
                    ("signed_in", "Open to signed-in users"),
                    ("private", "Private: members only"),
                ],
                default="signed_in",
                help_text="Who may enter: everyone (guests too), signed-in users, or members only.",
                max_length=16,
            ),
        ),
        # Backwards nothing to do: allow_guests was kept in step all along.
        migrations.RunPython(visibility_from_allow_guests, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="room",
            name="allow_guests",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="Anonymous visitors may read and write under a guest name (visibility public).",
            ),
        ),
        migrations.AddConstraint(
            model_name="room",
            constraint=models.CheckConstraint(
                condition=models.Q(("visibility__in", ["public", "signed_in", "private"])),
                name="chat_room_visibility_known",
            ),
        ),
        migrations.AddConstraint(
            model_name="room",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("allow_guests", True), ("visibility", "public")),
                    models.Q(
                        models.Q(("visibility", "public"), _negated=True), ("allow_guests", False)
                    ),
                    _connector="OR",
                ),
                name="chat_room_allow_guests_is_public",
            ),
        ),
        migrations.AddConstraint(
            model_name="room",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("direct_key__isnull", True), ("visibility", "private"), _connector="OR"
                ),
                name="chat_room_direct_is_private",
            ),
        ),
        migrations.AddField(
            model_name="invite",
            name="created_by",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="invite",
            name="invitee",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="chat_invites",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="invite",
            name="room",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="invites", to="chat.room"
            ),
        ),
        migrations.AddField(
            model_name="membership",
            name="room",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="memberships",
                to="chat.room",
            ),
        ),
        migrations.AddField(
            model_name="membership",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="chat_memberships",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="invite",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("invitee__isnull", True), ("token_hash__isnull", False)),
                    models.Q(("invitee__isnull", False), ("token_hash__isnull", True)),
                    _connector="OR",
                ),
                name="chat_invite_user_or_link",
            ),
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.UniqueConstraint(
                fields=("room", "user"), name="chat_membership_room_user_uniq"
            ),
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.CheckConstraint(
                condition=models.Q(("role__in", ["owner", "member"])),
                name="chat_membership_role_known",
            ),
        ),
    ]
