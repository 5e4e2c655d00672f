"""What the tests share: connection builders, waiting, ports, Airflow runs, crash harness.

Test modules import from here (``from support.waiting import wait_until``), never
from one another. ``tests/`` is on ``sys.path`` because ``tests/conftest.py`` lives
there (pytest's default ``prepend`` import mode).
"""
