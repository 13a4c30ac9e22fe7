"""Make sure an operator account exists for the admin.

On first run, creates superuser ``admin`` with a random password, writes the
credentials to ``var/admin-credentials.txt`` (mode 600) and prints them once.
Later runs only say where the credentials are. Never a fixed password.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Field


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="operator username (default %(default)s)")
        parser.add_argument("--email", default="admin@localhost", help="operator e-mail")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        path = settings.VAR_DIR / "admin-credentials.txt"
        username = options["username"]
        # create_superuser() checks neither: an empty name is a traceback, a name the
        # admin's own forms reject (spaces) or a malformed e-mail would be stored.
        for option, field in (("username", User.USERNAME_FIELD), ("email", User.EMAIL_FIELD)):
            value = options[option]
            model_field = User._meta.get_field(field)
            assert isinstance(model_field, Field)  # username and e-mail are plain columns
            try:
                model_field.clean(value, None)
            except ValidationError as exc:
                raise CommandError(f"--{option} {value!r}: {' '.join(exc.messages)}", returncode=2) from None
        if User.objects.filter(username=username).exists():
            hint = f" (credentials in {path})" if path.exists() else ""
            self.stdout.write(f"Admin account {username!r} already exists{hint}.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email=options["email"], password=password)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"username: {username}\npassword: {password}\n")
        path.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Created admin account — username: {username}  password: {password}"))
        self.stdout.write(f"(also saved to {path}; this is the only time it is printed)")
