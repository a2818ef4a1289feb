"""``python -m cave_requests_auth``: the ``cave-auth`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
