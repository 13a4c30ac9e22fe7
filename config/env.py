"""The one environ object settings read from (12-factor, see .env.example).

Production differs from development only by these values, never by code paths.
"""

import secrets
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for developers; real deployments set variables.
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)


def local_secret_key(var_dir: Path) -> str:
    """Without SECRET_KEY (development): a random key kept under var/, so
    sessions survive restarts and no key is ever committed."""
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def redis_url_with_timeouts(url: str, *, connect: float, read: float) -> str:
    """REDIS_URL with the timeouts as query options redis-py reads (django-rq passes
    only the URL on); timeouts already in the URL win."""
    present = dict(parse_qsl(urlsplit(url).query))
    added = {
        key: f"{value:g}"
        for key, value in (("socket_connect_timeout", connect), ("socket_timeout", read))
        if key not in present
    }
    # Appended, not rebuilt: urlunsplit would turn unix:///path into unix:/path.
    return f"{url}{'&' if '?' in url else '?'}{urlencode(added)}" if added else url


def per_queue(name: str, defaults: dict[str, int], queues: Iterable[str]) -> dict[str, int]:
    """``name`` read as "default:1000,high:100" (queue_monitor's syntax); queues
    not named keep their default."""
    known = list(queues)
    out = dict(defaults)
    for item in filter(None, (part.strip() for part in env.str(name, default="").split(","))):
        queue, _, value = item.partition(":")
        if queue not in known or not value.isdigit():
            raise ImproperlyConfigured(f"{name}: expected queue:number pairs for {', '.join(known)}, got {item!r}")
        out[queue] = int(value)
    return out
