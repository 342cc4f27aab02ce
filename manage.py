#!/usr/bin/env python
"""Django's command-line utility for django-twisted-chat.

The development `.env` that `make run` writes next to this file is loaded first, so every command
(`createsuperuser`, `shell`, ...) works after `make run` without exporting anything. Variables
already in the environment win over it; without either, the settings refuse to start.
"""

import os
import sys
from pathlib import Path

from dotenv import load_dotenv


def main() -> None:
    """Run an administrative task with the project's settings."""
    load_dotenv(Path(__file__).resolve().parent / ".env", override=False)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_twisted_chat.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
