"""``make run``: bootstrap the database and run every process in the foreground.

1. Start (or reuse) the embedded PostgreSQL and Redis unless DATABASE_URL /
   REDIS_URL are set, and hold them for the whole run.
2. migrate, collectstatic, seed_demo (idempotent), ensure_admin.
3. supervisord (devops/supervisord.local.conf, in the foreground) runs the web
   app on 127.0.0.1:8000, the queue master (`queue_supervise`: the workers of
   QUEUE_SUPERVISORS, `default` 1–3 processes, `high default` 1), the
   scheduler and the outbox relay.
4. Ctrl-C (SIGINT) or SIGTERM: supervisord sends SIGTERM to every program; the
   queue master lets its workers finish the job in hand; then the embedded servers stop
   (if nothing else still holds them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from config import embedded

SUPERVISOR_CONF = embedded.BASE_DIR / "devops" / "supervisord.local.conf"


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
    # The terminal delivers Ctrl-C to supervisord directly; we only wait for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _manage(env, "migrate", "--noinput", "-v", "1")
        _manage(env, "collectstatic", "--noinput", "-v", "0")
        _manage(env, "seed_demo")
        _manage(env, "ensure_admin")
    except subprocess.CalledProcessError as exc:
        print(f"bootstrap step failed: {' '.join(map(str, exc.cmd[1:]))}", file=sys.stderr)
        return 1
    bin_dir = Path(sys.executable).parent
    run_dir, log_dir = embedded.socket_dir(var), var / "log"
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    env.update(VITO_ROOT=str(embedded.BASE_DIR), VITO_BIN=str(bin_dir), VITO_RUN=str(run_dir), VITO_LOG=str(log_dir))
    print("Serving http://127.0.0.1:8000/admin/ — Ctrl-C stops everything.")
    supervisord = subprocess.Popen([str(bin_dir / "supervisord"), "-c", str(SUPERVISOR_CONF)], env=env)
    signal.signal(signal.SIGTERM, lambda *_: supervisord.send_signal(signal.SIGTERM))
    code = supervisord.wait()
    print("All processes stopped.")
    return code


if __name__ == "__main__":
    sys.exit(main())
