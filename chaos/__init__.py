"""The fault and abuse suite (``make chaos``).

Each scenario runs the real processes (gunicorn, RQ workers, the scheduler,
the outbox relay) against a PostgreSQL and a Redis that belong to this run
alone, so a scenario may restart, stop or kill them. It injects one fault,
then counts the end state: jobs lost, effects done twice, rows inconsistent,
and how long recovery took. ``python -m chaos`` starts the servers, runs
pytest on this package and prints one table row per scenario.
"""
