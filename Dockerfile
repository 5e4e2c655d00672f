# Production image: the official Airflow image plus this project's DAGs, plugins and include/.
FROM apache/airflow:3.3.2-python3.11

USER root
# mysqlclient compiles against the MariaDB client headers found through pkg-config.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libmariadb-dev build-essential \
 && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:root requirements.txt requirements-lock.txt \
     requirements-celery.txt requirements-celery-lock.txt /opt/airflow/project/
# Direct dependencies and the CeleryExecutor extra (so the same image runs every component,
# `airflow celery worker` included), every transitive version pinned by the lock files.
RUN pip install --no-cache-dir \
      -r /opt/airflow/project/requirements.txt \
      -r /opt/airflow/project/requirements-celery.txt \
      -c /opt/airflow/project/requirements-lock.txt \
      -c /opt/airflow/project/requirements-celery-lock.txt

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
# include/ without its development tools (sandbox/, demo/): .dockerignore leaves them out.
COPY --chown=airflow:root include/ /opt/airflow/include/

# include/ is importable exactly as in the development virtualenv (a .pth there).
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
