"""Each Celery worker of a ``CeleryCluster`` reports its own name as the task instances' hostname.

Airflow records ``[core] hostname_callable`` of the machine that ran a try (REST
API ``hostname``, the UI's task instance details). Workers on one machine would all
report the same name; ``CeleryCluster`` sets ``CELERY_CLUSTER_WORKER`` per worker
(its Celery node name) and points ``hostname_callable`` here, so a test can tell
which worker ran which try, as it could on several machines.
"""

from __future__ import annotations

import os
import socket

WORKER_ENV = "CELERY_CLUSTER_WORKER"
HOSTNAME_CALLABLE = f"{__name__}.worker_hostname"


def worker_hostname() -> str:
    """``<worker>@<fqdn>`` in a worker of a CeleryCluster, the machine's FQDN elsewhere."""
    worker = os.environ.get(WORKER_ENV)
    return f"{worker}@{socket.getfqdn()}" if worker else socket.getfqdn()
