# The e2e tests share the local Spark session fixture of tests/spark.
from tests.spark.conftest import *  # noqa: F403
