"""Injected faults: pipeline stages that fail the task, or kill its Python worker, on a chosen file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.ml import Transformer
from pyspark.sql import DataFrame


class FailOnPath(Transformer):
    """Raises in the task handling a file whose path contains ``marker``."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def on_hit(self) -> None:
        raise RuntimeError(f"injected failure on {self.marker}")

    def _transform(self, df: DataFrame) -> DataFrame:
        marker, on_hit = self.marker, self.on_hit

        def check(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                if any(marker in p for p in batch.column("path").to_pylist()):
                    on_hit()
                yield batch

        return df.mapInArrow(check, df.schema)


class ExitOnPath(FailOnPath):
    """Kills the Python worker (``os._exit``) handling a file whose path contains ``marker``."""

    def on_hit(self) -> None:
        os._exit(17)


def with_first_stage(build: Callable, stage: Transformer) -> Callable:
    """Wrap a ``default_pipeline``-like builder so that ``stage`` runs before its stages."""

    def wrapped(**kwargs):
        model = build(**kwargs)
        model.stages.insert(0, stage)
        return model

    return wrapped
