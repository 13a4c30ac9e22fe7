#!/usr/bin/env python
"""Django's command-line utility (the artisan of this project)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.queue_layout import LayoutError

    try:
        execute_from_command_line(sys.argv)
    except LayoutError as exc:
        # A broken QUEUE_LAYOUT stops every command: say where, without a traceback.
        sys.stderr.write(f"{exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
