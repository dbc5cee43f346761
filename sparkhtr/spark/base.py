"""Plumbing shared by every sparkhtr transformer: Params, persistence, Arrow mapping.

Each transformer declares its Params, checks the input schema on the driver, and
hands :meth:`ArrowTransformer._map_batches` a function of plain values that turns
one ``pyarrow.RecordBatch`` into output batches. The function runs in Python
workers through ``DataFrame.mapInArrow``: nested columns (images, line arrays)
cross as Arrow without a pandas round trip.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructField, StructType

from sparkhtr.errors import ConfigError

HANDLE_INVALID = ("keep", "error")
BatchFunction = Callable[[pa.RecordBatch], Iterable[pa.RecordBatch]]


class HasHandleInvalid(Params):
    """``keep``: a failing row becomes ``status='error'`` with a message; ``error``: the job fails."""

    handleInvalid: Param[str] = Param(
        Params._dummy(), "handleInvalid",
        "how to handle a row that fails: 'keep' (error row, default) or 'error' (fail the job)",
        typeConverter=TypeConverters.toString,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(handleInvalid="keep")

    def getHandleInvalid(self) -> str:
        return self.getOrDefault(self.handleInvalid)

    def setHandleInvalid(self, value: str) -> Any:
        if value not in HANDLE_INVALID:
            raise ConfigError(f"handleInvalid must be one of {HANDLE_INVALID}, got {value!r}")
        return self._set(handleInvalid=value)


def with_param_accessors(cls: type) -> type:
    """Class decorator: a ``getX``/``setX`` pair for every Param ``x`` declared on ``cls``.

    Spark ML writes each of these by hand; generating them keeps every transformer to
    its Params and its ``_transform``. Accessors a class defines itself are kept.
    """
    for name, value in list(vars(cls).items()):
        if not isinstance(value, Param):
            continue
        suffix = name[0].upper() + name[1:]

        def getter(self: Params, _name: str = name) -> Any:
            return self.getOrDefault(_name)

        def setter(self: Params, value: Any, _name: str = name) -> Any:
            return self._set(**{_name: value})

        getter.__doc__ = f"Value of Param ``{name}``: {value.doc}."
        setter.__doc__ = f"Set Param ``{name}``: {value.doc}."
        for prefix, accessor in (("get", getter), ("set", setter)):
            if f"{prefix}{suffix}" not in vars(cls):
                accessor.__name__ = f"{prefix}{suffix}"
                setattr(cls, accessor.__name__, accessor)
    return cls


class ArrowTransformer(Transformer, HasHandleInvalid, DefaultParamsReadable, DefaultParamsWritable):
    """Base of sparkhtr's transformers: keyword-only Params and an Arrow batch mapper."""

    def _init_params(self, kwargs: dict[str, Any]) -> None:
        """Param defaults from the keyword-only ``__init__`` signature, then the given values.

        Every default is written once, in the signature; the reader's ``cls()`` gets them too.
        """
        signature = inspect.signature(type(self).__init__)
        defaults = {name: p.default for name, p in signature.parameters.items()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "handleInvalid"}
        self._setDefault(**defaults)
        self.setParams(**kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> Any:
        """Set any of this transformer's Params by keyword."""
        if "handleInvalid" in kwargs:
            self.setHandleInvalid(kwargs.pop("handleInvalid"))
        return self._set(**kwargs)

    def _map_batches(self, df: DataFrame, output_schema: StructType, fn: BatchFunction,
                     profile: Any = None) -> DataFrame:
        """``fn`` over ``df``'s Arrow batches; under ``profile`` (a ``ResourceProfile``) when given."""
        # Spark hands mapInArrow timestamps in the session time zone; declare the same
        timezone = df.sparkSession.conf.get("spark.sql.session.timeZone") or "UTC"
        arrow_schema = to_arrow_schema(output_schema, timezone=timezone)

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            limit_native_threads()
            for batch in batches:
                for out in fn(batch):
                    yield conform(out, arrow_schema)

        if profile is None:
            return df.mapInArrow(run, output_schema)
        return df.mapInArrow(run, output_schema, profile=profile)


def limit_native_threads() -> None:
    """Match OpenCV's thread pool to this task's cores: N workers must not each start all-core pools."""
    import cv2
    from pyspark import TaskContext

    context = TaskContext.get()
    cv2.setNumThreads(context.cpus() if context is not None else 1)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Reorder and cast ``batch``'s columns to ``schema`` (the declared mapInArrow output)."""
    columns = []
    for field in schema:
        column = batch.column(field.name)
        if column.type != field.type:
            column = column.cast(field.type)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def replace_fields(schema: StructType, drop: Iterable[str] = (), add: Iterable[StructField] = ()) -> StructType:
    """``schema`` without the ``drop`` columns, then with ``add`` (replacing same-named columns)."""
    added = list(add)
    gone = set(drop) | {f.name for f in added}
    return StructType([f for f in schema.fields if f.name not in gone] + added)


def image_to_struct(image: np.ndarray) -> dict[str, Any]:
    """A uint8 ``H×W`` or ``H×W×C`` array as an ``IMAGE`` struct value."""
    array = np.ascontiguousarray(image, dtype=np.uint8)
    channels = 1 if array.ndim == 2 else array.shape[2]
    return {"height": array.shape[0], "width": array.shape[1], "channels": channels, "data": array.tobytes()}


def struct_to_image(value: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`image_to_struct`.

    >>> import numpy as np
    >>> a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    >>> bool((struct_to_image(image_to_struct(a)) == a).all())
    True
    """
    shape = (value["height"], value["width"]) if value["channels"] == 1 else (
        value["height"], value["width"], value["channels"])
    return np.frombuffer(value["data"], dtype=np.uint8).reshape(shape)


def error_message(exc: BaseException) -> str:
    """``ExceptionType: message`` trimmed to a size that fits a table cell."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 2000 else text[:1997] + "..."


def map_ok_rows(batch: pa.RecordBatch, compute: Callable[[int], dict[str, Any]], outputs: dict[str, pa.DataType],
                fail: bool, drop: Iterable[str] = ()) -> pa.RecordBatch:
    """Apply ``compute(row_index) -> {column: value}`` to the ``status='ok'`` rows of ``batch``.

    Rows already in error pass through with null outputs. A row whose ``compute``
    raises becomes an error row (``fail=False``) or fails the task (``fail=True``);
    any exception is caught in the first case, because one odd page in a million
    must not fail a job.
    """
    status = batch.column("status").to_pylist()
    errors = batch.column("error").to_pylist()
    values: dict[str, list[Any]] = {name: [] for name in outputs}
    for i in range(batch.num_rows):
        result: dict[str, Any] | None = None
        if status[i] == "ok":
            try:
                result = compute(i)
            except Exception as exc:
                if fail:
                    raise
                status[i], errors[i] = "error", error_message(exc)
        for name in outputs:
            values[name].append(None if result is None else result.get(name))
    dropped = set(drop)
    columns = {name: batch.column(name) for name in batch.schema.names if name not in dropped}
    columns["status"] = pa.array(status, pa.string())
    columns["error"] = pa.array(errors, pa.string())
    for name, arrow_type in outputs.items():
        columns[name] = pa.array(values[name], type=arrow_type)
    return pa.RecordBatch.from_pydict(columns)
