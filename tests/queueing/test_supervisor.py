from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from queueing import keys
from queueing.models import FailedJob
from queueing.supervisor import (
    Child,
    Master,
    Observation,
    QueueLoad,
    SupervisorConfig,
    balance,
    child_setup,
    desired_processes,
    estimate_waits,
    parse_supervisors,
    supervisor_state,
)
from queueing.supervisor import state as masters_state
from tests.queueing import jobs
from tests.queueing.conftest import wait_for, worker_env

# ---------------------------------------------------------------------------- the balancing function


def auto(**options: Any) -> SupervisorConfig:
    values: dict[str, Any] = {
        "name": "s",
        "queues": ("a", "b"),
        "balance": "auto",
        "min_processes": 1,
        "max_processes": 4,
        "balance_max_shift": 1,
        "balance_cooldown": 1.0,
        "auto_scaling_strategy": "size",
    }
    values.update(options)
    return SupervisorConfig(**values)


def loads(a: int = 0, b: int = 0, **extra: QueueLoad) -> dict[str, QueueLoad]:
    return {"a": QueueLoad(a), "b": QueueLoad(b), **extra}


def step(current: dict[str, int], load: dict[str, QueueLoad], config: SupervisorConfig) -> dict[str, int]:
    return balance(current, load, config, now=100.0, last_scaled_at=None).targets


def test_it_scales_the_deep_queue_up_one_step_at_a_time() -> None:
    plan = balance({"a": 1, "b": 1}, loads(a=200), auto(), now=100.0, last_scaled_at=None)
    assert plan.targets == {"a": 2, "b": 1}
    [decision] = plan.decisions
    assert decision.as_dict() == {
        "at": 100.0,
        "queue": "a",
        "from": 1,
        "to": 2,
        "reason": "depth 200: wants 3 (max shift per step)",
    }


def test_it_moves_at_most_max_shift_processes_per_step() -> None:
    config = auto(max_processes=10, balance_max_shift=3)
    assert step({"a": 1, "b": 1}, loads(a=500), config) == {"a": 4, "b": 1}
    assert step({"a": 4, "b": 1}, loads(a=500), config) == {"a": 7, "b": 1}
    assert step({"a": 7, "b": 1}, loads(a=500), config) == {"a": 9, "b": 1}  # 10 in total


def test_it_waits_for_the_cooldown_between_steps() -> None:
    config = auto(balance_cooldown=5.0)
    early = balance({"a": 1, "b": 1}, loads(a=50), config, now=104.0, last_scaled_at=100.0)
    assert early.targets == {"a": 1, "b": 1} and not early.scaled
    due = balance({"a": 1, "b": 1}, loads(a=50), config, now=105.0, last_scaled_at=100.0)
    assert due.targets == {"a": 2, "b": 1} and due.scaled


def test_it_keeps_min_processes_on_every_queue_and_max_in_total() -> None:
    config = auto(min_processes=2, max_processes=6)
    current = {"a": 2, "b": 2}
    for _ in range(10):
        current = step(current, loads(a=1000), config)
    assert current == {"a": 4, "b": 2}


def test_an_idle_queue_gives_its_processes_to_a_busy_one() -> None:
    current = {"a": 3, "b": 1}
    current = step(current, loads(b=400), auto())  # a shrinks first; its process is still finishing a job
    assert current == {"a": 2, "b": 1}
    current = step(current, loads(b=400), auto())  # gone: b takes the room
    assert current == {"a": 1, "b": 2}
    current = step(current, loads(b=400), auto())
    assert current == {"a": 1, "b": 3}


def test_processes_still_finishing_a_job_count_toward_max_processes() -> None:
    def plan(retiring: dict[str, int]) -> dict[str, int]:
        return balance(
            {"a": 1, "b": 1}, loads(b=400), auto(), now=100.0, last_scaled_at=None, retiring=retiring
        ).targets

    assert plan({"a": 2}) == {"a": 1, "b": 1}  # 1 + 1 + 2 retiring = max 4
    assert plan({"a": 1}) == {"a": 1, "b": 2}
    assert plan({}) == {"a": 1, "b": 2}


def test_with_min_processes_0_every_queue_with_jobs_gets_a_process() -> None:
    config = auto(queues=("a", "b", "c"), min_processes=0, max_processes=2)
    load = {"a": QueueLoad(1000), "b": QueueLoad(0), "c": QueueLoad(1)}
    # Rounded up, a's share alone (1000/1001 × 2) would take both processes.
    assert desired_processes(load, config) == {"a": 1, "b": 0, "c": 1}
    current = {"a": 2, "b": 0, "c": 0}
    seen = []
    for _ in range(3):
        current = step(current, load, config)
        seen.append(dict(current))
    assert seen == [{"a": 1, "b": 0, "c": 0}, {"a": 1, "b": 0, "c": 1}, {"a": 1, "b": 0, "c": 1}]


def test_a_queue_with_jobs_and_no_process_gets_the_room_first() -> None:
    config = auto(queues=("a", "b", "c"), min_processes=0, max_processes=4)
    load = {"a": QueueLoad(10), "b": QueueLoad(0), "c": QueueLoad(20)}
    assert desired_processes(load, config) == {"a": 2, "b": 0, "c": 2}
    # b's process is still finishing its job: room for one more, and c, with none, takes it.
    assert step({"a": 1, "b": 2, "c": 0}, load, config) == {"a": 1, "b": 1, "c": 1}


def test_it_scales_back_to_min_when_the_queues_are_empty() -> None:
    current = {"a": 3, "b": 1}
    seen = []
    for _ in range(4):
        current = step(current, loads(), auto())
        seen.append(current["a"])
    assert seen == [2, 1, 1, 1]
    assert balance(current, loads(), auto(), now=100.0, last_scaled_at=None).decisions == []


def test_a_paused_queue_is_not_scaled_up_and_gives_up_its_share() -> None:
    paused = {"a": QueueLoad(900, paused=True), "b": QueueLoad(10)}
    assert step({"a": 1, "b": 1}, paused, auto()) == {"a": 1, "b": 2}
    plan = balance({"a": 3, "b": 1}, paused, auto(), now=1.0, last_scaled_at=None)
    assert plan.targets == {"a": 2, "b": 1}  # b gets the room once a's process has gone
    assert plan.decisions[0].reason == "paused: wants 1 (max shift per step)"


def test_no_process_is_started_for_jobs_that_are_not_there() -> None:
    assert desired_processes(loads(a=1), auto(max_processes=10)) == {"a": 2, "b": 1}


def test_the_time_strategy_weighs_queues_by_time_to_clear() -> None:
    # 10 slow jobs (10 s each) outweigh 100 quick ones (0.1 s each).
    waits = estimate_waits({"a": 10, "b": 100}, {"a": 10.0, "b": 0.1})
    assert waits == {"a": 100.0, "b": 10.0}
    load = {"a": QueueLoad(10, waits["a"]), "b": QueueLoad(100, waits["b"])}
    assert desired_processes(load, auto(max_processes=10, auto_scaling_strategy="time")) == {"a": 9, "b": 1}
    assert desired_processes(load, auto(max_processes=10, auto_scaling_strategy="size")) == {"a": 1, "b": 9}


def test_a_queue_without_a_known_runtime_borrows_the_others() -> None:
    assert estimate_waits({"a": 10, "b": 4}, {"a": 2.0, "b": None}) == {"a": 20.0, "b": 8.0}
    assert estimate_waits({"a": 10, "b": 4}, {"a": None, "b": None}) == {"a": 10.0, "b": 4.0}


# ---------------------------------------------------------------------------- configuration


QUEUES = ("high", "default")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "queues": ["nope"]}, "unknown queue(s) nope"),
        ({"name": "x", "queues": []}, "queues must be a non-empty list"),
        ({"name": "x", "queues": ["default"], "balance": "fast"}, "balance must be one of auto, simple, off"),
        ({"name": "x", "queues": ["default"], "balance": "auto"}, "balance auto needs max_processes"),
        (
            {"name": "x", "queues": ["high", "default"], "balance": "auto", "min_processes": 2, "max_processes": 3},
            "max_processes 3 is below min_processes 2 × 2 queue(s)",
        ),
        ({"name": "x", "queues": ["default"], "balance": "off", "max_processes": 3}, "only apply to balance auto"),
        ({"name": "x", "queues": ["default"], "tries": 0}, "tries must be at least 1"),
        ({"name": "x", "queues": ["default"], "tries": "3"}, "tries must be a whole number"),
        ({"name": "x", "queues": ["default"], "nice": 30}, "nice must be between 0 and 19"),
        ({"name": "x", "queues": ["default"], "backoff": "soon"}, "backoff must be like"),
        ({"name": "x", "queues": ["default"], "procs": 2}, "unknown key(s) procs"),
        ({"queues": ["default"]}, "name must be a word"),
    ],
)
def test_a_bad_entry_is_named_with_what_to_fix(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as exc:
        parse_supervisors([entry], QUEUES)
    assert message in str(exc.value)
    assert str(exc.value).startswith("QUEUE_SUPERVISORS[0]")


def test_the_default_setting_is_valid_and_balance_false_means_off() -> None:
    configs = parse_supervisors(settings.QUEUE_SUPERVISORS, settings.RQ_QUEUES)
    assert [(c.name, c.balance) for c in configs] == [("default", "auto"), ("high", "off")]
    [legacy] = parse_supervisors([{"name": "h", "queues": ["high", "default"], "balance": False}], QUEUES)
    assert legacy.initial_pools() == {("high", "default"): 1}


def test_simple_splits_processes_evenly_across_queues() -> None:
    [config] = parse_supervisors(
        [{"name": "s", "queues": ["high", "default"], "balance": "simple", "processes": 5}], QUEUES
    )
    assert config.initial_pools() == {("high",): 3, ("default",): 2}


# ---------------------------------------------------------------------------- the master, for real

real = pytest.mark.django_db(transaction=True)


class Masters:
    """Masters started by a test; at the end they and every child they
    published are killed, whatever happened, and their output printed."""

    def __init__(self, conn: Redis) -> None:
        self.conn = conn
        self.procs: list[tuple[subprocess.Popen[str], Any]] = []
        self.pids: set[int] = set()

    def start(self, supervisors: list[dict[str, Any]], drain: float = 30) -> subprocess.Popen[str]:
        env = worker_env()
        env["QUEUE_SUPERVISORS_JSON"] = json.dumps(supervisors)
        env["QUEUE_SUPERVISOR_DRAIN"] = str(drain)
        log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in cleanup()
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "queue_supervise"],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.procs.append((proc, log))
        return proc

    def states(self) -> list[dict[str, Any]]:
        states = supervisor_state(self.conn)
        for state in states:
            self.pids |= set(child_pids(state))
        return states

    def state(self) -> dict[str, Any] | None:
        """The only master's state (None before it publishes)."""
        states = self.states()
        assert len(states) <= 1, [s["master"]["name"] for s in states]
        return states[0] if states else None

    def pools(self) -> dict[str, dict[str, Any]]:
        """Pools by queue label, from the published state ({} before the first one)."""
        state = self.state()
        return {p["queue"]: p for s in (state or {}).get("supervisors", []) for p in s["pools"]}

    def cleanup(self) -> None:
        for proc, log in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            log.seek(0)
            print(f"--- master {proc.pid} (exit {proc.returncode}) ---\n{log.read()[-6000:]}")  # noqa: T201
            log.close()
        for pid in self.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def child_pids(state: dict[str, Any] | None) -> list[int]:
    if not state:
        return []
    return [
        c["pid"] for s in state["supervisors"] for p in s["pools"] for c in (*p["processes"], *p.get("retiring", []))
    ]


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def masters(redis_conn: Redis) -> Iterator[Masters]:
    started = Masters(redis_conn)
    yield started
    started.cleanup()


def count(pool: dict[str, Any] | None) -> int:
    return len(pool["processes"]) if pool else -1


@real
def test_auto_balancing_moves_processes_to_a_flooded_queue_and_back(masters: Masters) -> None:
    masters.start(
        [
            {
                "name": "auto",
                "queues": ["high", "default"],
                "balance": "auto",
                "min_processes": 1,
                "max_processes": 4,
                "balance_cooldown": 1,
                "balance_max_shift": 1,
                "sleep": 1,
            }
        ]
    )
    wait_for(lambda: count(masters.pools().get("high")) == 1 and count(masters.pools().get("default")) == 1)

    flood = [(f"j{i}", 0.1) for i in range(300)]
    flooded_at = time.monotonic()
    jobs.sleeper.dispatch_many(flood)
    # default may take all but high's minimum: 3 of 4, one step per second.
    wait_for(lambda: count(masters.pools()["default"]) == 3, timeout=60, step=0.2)
    at_max = time.monotonic() - flooded_at
    assert count(masters.pools()["high"]) == 1

    wait_for(lambda: len(jobs.effects("effects")) == 300, timeout=120, step=0.2)
    drained_at = time.monotonic()
    wait_for(lambda: count(masters.pools()["default"]) == 1 and not masters.pools()["default"]["retiring"], timeout=30)
    back_to_min = time.monotonic() - drained_at

    assert sorted(jobs.effects("effects")) == sorted(tag for tag, _ in flood)  # none lost, none twice
    state = masters.state()
    assert state is not None
    [supervisor] = state["supervisors"]
    moves = [(d["queue"], d["from"], d["to"]) for d in supervisor["decisions"]]
    assert ("default", 1, 2) in moves and ("default", 2, 3) in moves
    assert ("default", 3, 2) in moves and ("default", 2, 1) in moves
    assert all(q == "default" for q, _, _ in moves)
    print(f"flood→max {at_max:.1f}s, drained→min {back_to_min:.1f}s, decisions {moves}")  # noqa: T201


@real
def test_sigterm_drains_a_job_in_hand_then_the_master_exits_zero(masters: Masters, redis_conn: Redis) -> None:
    master = masters.start([{"name": "one", "queues": ["default"], "processes": 1, "sleep": 1}], drain=20)
    wait_for(lambda: count(masters.pools().get("default")) == 1)
    [child] = child_pids(masters.state())
    jobs.sleeper.dispatch("long", 5)
    wait_for(lambda: "long" in jobs.effects("started"))

    stopped_at = time.monotonic()
    master.send_signal(signal.SIGTERM)
    wait_for(lambda: (masters.state() or {}).get("master", {}).get("status") == "draining", timeout=5)
    assert master.wait(timeout=25) == 0
    took = time.monotonic() - stopped_at

    assert jobs.effects("effects") == ["long"]  # finished, not interrupted
    assert 3 < took < 20
    assert not alive(child)
    assert supervisor_state(redis_conn) == []  # the dashboard shows no master
    assert redis_conn.hlen(keys.SUPERVISOR_MASTERS) == 0  # removed, not left to expire


@real
def test_a_job_longer_than_the_drain_time_is_interrupted_and_recorded(masters: Masters) -> None:
    master = masters.start([{"name": "one", "queues": ["default"], "processes": 1, "sleep": 1}], drain=4)
    wait_for(lambda: count(masters.pools().get("default")) == 1)
    [child] = child_pids(masters.state())
    jobs.sleeper.dispatch("too-long", 60)
    wait_for(lambda: "too-long" in jobs.effects("started"))

    stopped_at = time.monotonic()
    master.send_signal(signal.SIGTERM)
    assert master.wait(timeout=15) == 0
    assert time.monotonic() - stopped_at < 6  # the drain time, and the last tick
    assert not alive(child)
    assert jobs.effects("effects") == []
    # Interrupted, not lost: with its one attempt used it is in the ledger.
    failed = FailedJob.objects.get()
    assert failed.job_name == "tests.queueing.jobs.sleeper" and failed.args == ["too-long", 60]


@real
def test_a_killed_child_is_restarted_and_pause_shows_in_the_state(masters: Masters) -> None:
    masters.start([{"name": "one", "queues": ["default"], "processes": 1, "sleep": 1}])
    wait_for(lambda: count(masters.pools().get("default")) == 1)
    [first] = child_pids(masters.state())
    os.kill(first, signal.SIGKILL)

    def replaced() -> dict[str, Any] | None:
        processes = masters.pools()["default"]["processes"]
        return processes[0] if processes and processes[0]["pid"] != first else None

    new = wait_for(replaced, timeout=20)
    assert new["restarts"] == 1 and masters.pools()["default"]["restarts"] == 1

    call_command("queue_pause", "default", stdout=StringIO())
    wait_for(lambda: (masters.state() or {})["supervisors"][0]["paused"] == ["default"], timeout=5)
    call_command("queue_continue", "default", stdout=StringIO())
    jobs.record.dispatch("after restart")
    wait_for(lambda: jobs.effects("effects") == ["after restart"])


@real
def test_queue_terminate_makes_every_master_drain_and_exit_zero(masters: Masters) -> None:
    # Two masters (as on two worker hosts): both publish, both drain.
    first = masters.start([{"name": "one", "queues": ["default"], "processes": 2, "sleep": 1}])
    second = masters.start([{"name": "two", "queues": ["high"], "processes": 1, "sleep": 1}])

    def running() -> list[int]:
        states = masters.states()
        return sorted(len(child_pids(s)) for s in states) if len(states) == 2 else []

    wait_for(lambda: running() == [1, 2], timeout=60)
    children = [pid for state in masters.states() for pid in child_pids(state)]
    names = {name for state in masters.states() for name in [state["master"]["name"]]}
    assert len(names) == 2
    out = StringIO()
    call_command("queue_terminate", "--wait", "--timeout", "30", stdout=out)
    assert first.wait(timeout=10) == 0 and second.wait(timeout=10) == 0
    assert "to 2 queue master(s)" in out.getvalue()
    assert "drains its 2 process(es)" in out.getvalue() and "drains its 1 process(es)" in out.getvalue()
    assert "All 2 masters have exited" in out.getvalue()
    assert not any(alive(pid) for pid in children)


@real
def test_a_master_started_after_queue_terminate_keeps_running(masters: Masters) -> None:
    out = StringIO()
    call_command("queue_terminate", stdout=out)
    assert "no queue master is publishing" in out.getvalue()
    master = masters.start([{"name": "one", "queues": ["default"], "processes": 1, "sleep": 1}])
    wait_for(lambda: count(masters.pools().get("default")) == 1)
    time.sleep(1.5)
    assert master.poll() is None


# ---------------------------------------------------------------------------- the master, in parts

ONE = SupervisorConfig(name="one", queues=("default",), balance="off")


def master(conn: Redis | None = None, *, drain: float = 30, name: str | None = None) -> Master:
    return Master([ONE], connection=conn or Redis(), drain=drain, manage_py=Path("manage.py"), name=name)


def test_each_master_start_gets_a_name_of_its_own() -> None:
    # Host and pid repeat across container restarts; RQ refuses a worker name
    # whose key a SIGKILLed child left behind, so the children's names must not.
    names = {master().name for _ in range(5)}
    assert len(names) == 5
    assert all(re.fullmatch(rf"{re.escape(os.uname().nodename)}-{os.getpid()}-[0-9a-f]{{6}}", n) for n in names)


def test_every_master_publishes_its_own_state(redis_conn: Redis) -> None:
    one, two, dead = (master(redis_conn, name=n) for n in ("host-1", "host-2", "host-3"))
    for each in (one, two, dead):
        each.publish()
    assert [s["master"]["name"] for s in supervisor_state(redis_conn)] == ["host-1", "host-2", "host-3"]
    redis_conn.delete(keys.supervisor_alive("host-3"))  # stopped publishing 15 s ago (SIGKILL)
    assert [s["master"]["name"] for s in supervisor_state(redis_conn)] == ["host-1", "host-2"]
    masters_state.prune(redis_conn)
    assert sorted(redis_conn.hkeys(keys.SUPERVISOR_MASTERS)) == [b"host-1", b"host-2"]
    masters_state.unpublish(redis_conn, "host-2")
    assert [s["master"]["name"] for s in supervisor_state(redis_conn)] == ["host-1"]
    redis_conn.hset(keys.SUPERVISOR_MASTERS, "host-1", "{not json")
    assert supervisor_state(redis_conn) == []


def test_terminate_waits_for_the_masters_running_when_sent_not_for_newer_ones(redis_conn: Redis) -> None:
    old = [master(redis_conn, name=n) for n in ("old-1", "old-2")]
    for each in old:
        each.publish()
    with pytest.raises(CommandError, match="still running after 1s: old-1, old-2"):
        call_command("queue_terminate", "--wait", "--timeout", "1", stdout=StringIO())

    def restart() -> None:  # supervisord: the old masters exit, a new one starts
        time.sleep(0.5)
        master(redis_conn, name="new").publish()
        for each in old:
            each._unpublish()

    restarter = threading.Thread(target=restart)
    restarter.start()
    out = StringIO()
    call_command("queue_terminate", "--wait", "--timeout", "10", stdout=out)
    restarter.join()
    assert "All 2 masters have exited" in out.getvalue()
    assert [s["master"]["name"] for s in supervisor_state(redis_conn)] == ["new"]


def test_a_terminate_signal_older_than_the_first_answer_from_redis_is_not_one() -> None:
    m = master()  # Redis away at start: the mark is unknown

    def seen(signal_value: bytes | None) -> Observation:
        return Observation({}, {}, set(), signal_value)

    reasons = []
    for signal_value in (b"1700000000.0", b"1700000000.0", b"1700000100.0"):  # the first sent before we started
        m._check_terminate(seen(signal_value))
        reasons.append(m.stop_reason)
    assert reasons == ["", "", "queue_terminate: draining"]


def test_only_redis_errors_count_as_redis_being_away(caplog: pytest.LogCaptureFixture) -> None:
    m = master()

    def away() -> int:
        raise RedisConnectionError("connection refused")

    def bug() -> int:
        raise KeyError("oops")

    with caplog.at_level(logging.INFO, logger="queueing.supervisor"):
        assert m._redis(bug, -1) == -1
        assert m._redis_ok  # a bug is not an outage
        [record] = caplog.records
        assert record.levelno == logging.ERROR and record.exc_info and "unexpected error in bug" in record.message
        assert m._redis(away, -1) == -1
        assert not m._redis_ok
        assert "Redis unavailable" in caplog.records[-1].message
        assert m._redis(lambda: 3, -1) == 3 and m._redis_ok


def test_a_failing_publish_does_not_hold_up_the_drain_deadlines(caplog: pytest.LogCaptureFixture) -> None:
    m = master(drain=3)
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
        m.runs[0].pools[0].children.append(Child(stubborn, "stubborn", time.time(), 0))
        attempts = []

        def publish() -> None:  # Redis just became unreachable: each attempt blocks, then fails
            attempts.append(time.monotonic())
            time.sleep(0.3)
            raise RedisConnectionError("timeout")

        m.publish = publish  # type: ignore[method-assign]
        m.stop_reason = "SIGTERM: draining"
        started = time.monotonic()
        m.drain_children()
        took = time.monotonic() - started
    finally:
        stubborn.kill()
        stubborn.wait()
        stubborn.stdout.close()  # type: ignore[union-attr]
    assert len(attempts) == 1  # no retry this close to the deadlines
    assert 3 <= took < 3.8
    assert stubborn.returncode == -signal.SIGKILL


def test_a_child_signalled_before_exec_dies_instead_of_running_the_masters_handler() -> None:
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)  # like the master's
    try:

        def setup_then_signal() -> None:  # e.g. PR_SET_PDEATHSIG: the master died meanwhile
            child_setup(0)
            os.kill(os.getpid(), signal.SIGTERM)

        proc = subprocess.Popen([sys.executable, "-c", "pass"], preexec_fn=setup_then_signal)
        assert proc.wait(timeout=30) == -signal.SIGTERM  # not exit 0: no worker ran
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_bad_setting_is_a_clear_error_with_exit_status_2() -> None:
    env = worker_env()
    env["QUEUE_SUPERVISORS_JSON"] = json.dumps([{"name": "x", "queues": ["default"], "balance": "auto"}])
    result = subprocess.run(
        [sys.executable, "manage.py", "queue_supervise"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "QUEUE_SUPERVISORS[0] ('x'): balance auto needs max_processes" in result.stderr


def test_check_prints_the_plan() -> None:
    out = StringIO()
    call_command("queue_supervise", "--check", stdout=out)
    assert "1 × rqworker default --tries 3 --sleep 3 --max-jobs 1000" in out.getvalue()
    assert "1 × rqworker high default --tries 5" in out.getvalue()
