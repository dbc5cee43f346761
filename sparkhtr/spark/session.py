"""Build or reuse the SparkSession that sparkhtr runs on.

An active session (Databricks, spark-submit, a notebook) is always reused untouched.
Otherwise an embedded ``local[*]`` session is started with a conf profile from
``conf/`` (``local`` by default).

>>> load_profile("local")["spark.sql.execution.arrow.maxRecordsPerBatch"]
'16'
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from sparkhtr.errors import ConfigError

PROFILES = ("local", "gpu-cluster")


def load_profile(name: str) -> dict[str, str]:
    """Spark confs of a profile: a file ``conf/<name>.conf`` or a path to a ``.conf`` file."""
    path = Path(name)
    if not path.is_file():
        path = Path(str(resources.files("sparkhtr_conf"))) / f"{name}.conf"
    if not path.is_file():
        raise ConfigError(f"unknown Spark profile {name!r}; choose one of {PROFILES} or a .conf path")
    confs: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        confs[key] = value.strip()
    return confs


def _delta_jar_available() -> bool:
    """Whether a Delta jar sits in pyspark's own jars (pip installs never put it there)."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    extra = os.environ.get("SPARKHTR_DELTA_JARS", "")
    return any(jars.glob("delta-spark_*.jar")) or bool(extra)


def get_or_create_session(master: str | None = None, profile: str = "local", app_name: str = "sparkhtr",
                          conf: dict[str, str] | None = None):
    """The active SparkSession, or a new embedded one configured by ``profile`` and ``conf``.

    Native Delta is switched on for a new session only when the Delta jar is already
    local (``SPARKHTR_DELTA_JARS`` lists jar paths); otherwise tables go through the
    delta-rs fallback, which needs no jar.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if master is None and "PYSPARK_GATEWAY_PORT" in os.environ:
        # launched by spark-submit: its --master and --conf already configured the JVM
        return SparkSession.builder.appName(app_name).getOrCreate()
    # Embedded Spark starts Python workers with `python3` from PATH unless told otherwise;
    # they must run this interpreter, which has sparkhtr and its dependencies.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(master or os.environ.get("SPARKHTR_MASTER", "local[*]"))
    settings = {**load_profile(profile), **(conf or {})}
    if _delta_jar_available():
        jars = os.environ.get("SPARKHTR_DELTA_JARS", "")
        if jars:
            settings.setdefault("spark.jars", jars)
        settings.setdefault("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        settings.setdefault("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(os.environ.get("SPARKHTR_LOG_LEVEL", "ERROR"))
    return session
