"""One local[2] SparkSession for the whole tests/spark folder; the folder skips without Java."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent

# Small and fail-fast: local[2] never retries a task, and 4 shuffle partitions keep
# two-core runs short.
TEST_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.task.maxFailures": "1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "2g",
    "spark.sql.session.timeZone": "UTC",
}


def _java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (java_home and (Path(java_home) / "bin" / "java").exists()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test here as ``spark``, and skip them all when there is no JVM."""
    skip = None if _java_available() else pytest.mark.skip(reason="Java is not installed: no local Spark")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.spark)
            if skip is not None:
                item.add_marker(skip)


def _build_session():  # -> SparkSession (pyspark imported lazily: the folder may be skipped)
    # Python workers must run this interpreter: they import deltalake and sparkhtr.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        from sparkhtr.spark.session import get_or_create_session

        return get_or_create_session(master="local[2]", conf=TEST_CONF)
    except ImportError as exc:
        # The project's builder is unusable in this install (e.g. a stale editable
        # install without the conf profiles): test the rest with a plain session.
        warnings.warn(f"building a plain local[2] session: {exc}", stacklevel=2)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("sparkhtr-tests")
    for key, value in TEST_CONF.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@pytest.fixture(scope="session")
def spark() -> Iterator:
    """The session shared by all Spark tests (stopped at the end of the run)."""
    session = _build_session()
    # Runtime SQL confs apply even when an already active session was reused.
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()
