"""``make run``: bootstrap the database and run every process in the foreground.

1. Start (or reuse) the embedded PostgreSQL and Redis unless DATABASE_URL /
   REDIS_URL are set, and hold them for the whole run.
2. migrate, collectstatic, seed_demo (idempotent), ensure_admin.
3. honcho runs the Procfile: web on 127.0.0.1:8000, two `default` workers,
   one `high default` worker.
4. Ctrl-C (SIGINT) or SIGTERM: honcho sends SIGTERM to each process group and
   waits for workers to finish the job in hand; then the embedded servers stop
   (if nothing else still holds them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from config import embedded

# Workers get this long to finish the job in hand before honcho kills them.
DRAIN_SECONDS = 30
CONCURRENCY = "web=1,worker_default=2,worker_high=1"


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], env=env, check=True, cwd=embedded.BASE_DIR)


def main() -> int:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    var = embedded.var_dir()
    need_pg, need_redis = not env.get("DATABASE_URL"), not env.get("REDIS_URL")
    if need_pg or need_redis:
        print(f"Starting embedded {'PostgreSQL ' if need_pg else ''}{'Redis ' if need_redis else ''}(data in {var})")
        urls = embedded.ensure_services(postgres=need_pg, redis=need_redis, var=var)
        if need_pg:
            env["DATABASE_URL"] = urls.database_url
        if need_redis:
            env["REDIS_URL"] = urls.redis_url
    # The terminal delivers Ctrl-C to honcho directly; we only wait for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _manage(env, "migrate", "--noinput", "-v", "1")
        _manage(env, "collectstatic", "--noinput", "-v", "0")
        _manage(env, "seed_demo")
        _manage(env, "ensure_admin")
    except subprocess.CalledProcessError as exc:
        print(f"bootstrap step failed: {' '.join(map(str, exc.cmd[1:]))}", file=sys.stderr)
        return 1
    print("Serving http://127.0.0.1:8000/admin/ — Ctrl-C stops everything.")
    honcho = subprocess.Popen(
        [str(Path(sys.executable).parent / "honcho"), "start", "-f", "Procfile", "-t", str(DRAIN_SECONDS), "-c", CONCURRENCY],
        env=env,
        cwd=embedded.BASE_DIR,
    )
    signal.signal(signal.SIGTERM, lambda *_: honcho.send_signal(signal.SIGTERM))
    code = honcho.wait()
    print("All processes stopped.")
    return code


if __name__ == "__main__":
    sys.exit(main())
