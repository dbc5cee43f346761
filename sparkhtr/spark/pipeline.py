"""The default pipeline and the assembly of recognised pages into the output tables.

>>> [type(s).__name__ for s in build_pipeline().getStages()]
['BinaryToImage', 'ImagePreprocessor', 'LineSegmenter', 'HandwrittenTextRecognizer']
"""

from __future__ import annotations

from typing import TypeVar

from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkhtr.core.baselines import DEFAULT_SEGMENTER
from sparkhtr.core.recognize import DEFAULT_DECODER
from sparkhtr.registry import DEFAULT_MODEL
from sparkhtr.spark.binary_to_image import BinaryToImage
from sparkhtr.spark.image_preprocessor import ImagePreprocessor
from sparkhtr.spark.line_segmenter import LineSegmenter
from sparkhtr.spark.recognizer import HandwrittenTextRecognizer
from sparkhtr.spark.schemas import LINES_TABLE, PAGES_TABLE

T = TypeVar("T")


def build_pipeline(*, model: str = DEFAULT_MODEL, device: str = "auto", lines_mode: bool = False,
                   pdf_dpi: int = 200, deskew: bool = True, decoder: str = DEFAULT_DECODER,
                   segmenter: str = DEFAULT_SEGMENTER) -> Pipeline:
    """``BinaryToImage → ImagePreprocessor → LineSegmenter → HandwrittenTextRecognizer``.

    ``lines_mode`` is for inputs where each image is one text line: no turning, no deskew, no
    segmentation (the whole image is the line). ``segmenter``: ``learned`` (default) or
    ``classical`` (see :class:`~sparkhtr.spark.line_segmenter.LineSegmenter`).
    """
    stages = [
        BinaryToImage(pdfDpi=pdf_dpi),
        ImagePreprocessor(deskew=deskew and not lines_mode, normalizeContrast=not lines_mode,
                          autoOrient=not lines_mode),
        LineSegmenter(method="whole" if lines_mode else segmenter, device=device),
        HandwrittenTextRecognizer(model=model, device=device, decoder=decoder),
    ]
    return Pipeline(stages=stages)


def _stage_of(pipeline: Pipeline | PipelineModel, kind: type[T]) -> T:
    stages = pipeline.getStages() if isinstance(pipeline, Pipeline) else pipeline.stages
    for stage in stages:
        if isinstance(stage, kind):
            return stage
    raise ValueError(f"the pipeline has no {kind.__name__} stage")


def recognizer_stage(pipeline: Pipeline | PipelineModel) -> HandwrittenTextRecognizer:
    """The pipeline's :class:`HandwrittenTextRecognizer` stage (:class:`ValueError` without one).

    >>> recognizer_stage(build_pipeline(decoder="greedy")).getDecoder()
    'greedy'
    """
    return _stage_of(pipeline, HandwrittenTextRecognizer)


def segmenter_stage(pipeline: Pipeline | PipelineModel) -> LineSegmenter:
    """The pipeline's :class:`LineSegmenter` stage (:class:`ValueError` without one).

    >>> segmenter_stage(build_pipeline(segmenter="classical")).getMethod()
    'classical'
    """
    return _stage_of(pipeline, LineSegmenter)


def _stamp(run_id: str, processed_at: Column) -> list[Column]:
    return [F.lit(run_id).alias("run_id"), processed_at.alias("processed_at")]


def pages_table(recognized: DataFrame, run_id: str, processed_at: Column | None = None) -> DataFrame:
    """One row per page (error pages included) with the page text in reading order."""
    at = processed_at if processed_at is not None else F.current_timestamp()
    cols = set(recognized.columns)
    texts = F.transform(F.coalesce(F.col("lines"), F.array()), lambda line: line["text"])
    confidences = F.transform(F.coalesce(F.col("lines"), F.array()), lambda line: line["confidence"])
    n = F.size(F.coalesce(F.col("lines"), F.array()))
    total = F.aggregate(confidences, F.lit(0.0), lambda acc, c: acc + F.coalesce(c, F.lit(0.0)))
    mean_confidence = F.when(n > 0, total / n)

    def optional(name: str, source: str | None = None) -> Column:
        src = source or name
        dtype = PAGES_TABLE[name].dataType
        return (F.col(src) if src in cols else F.lit(None)).cast(dtype).alias(name)

    out = recognized.select(
        F.col("path"), F.col("page").cast("int").alias("page"), optional("content_sha256"),
        optional("source_length", "length"), optional("source_modified", "modificationTime"),
        optional("width"), optional("height"), optional("skew_degrees"),
        F.col("status"), F.col("error"),
        F.when(F.col("status") == "ok", n).cast("int").alias("n_lines"),
        F.when(F.col("status") == "ok", F.array_join(texts, "\n")).alias("text"),
        mean_confidence.alias("mean_confidence"),
        optional("segmenter"), optional("recognizer"), *_stamp(run_id, at),
    )
    return out.select([F.col(f.name).cast(f.dataType) for f in PAGES_TABLE.fields])


def lines_table(recognized: DataFrame, run_id: str, processed_at: Column | None = None) -> DataFrame:
    """One row per recognised line, keyed by (path, page, line)."""
    at = processed_at if processed_at is not None else F.current_timestamp()
    sha = F.col("content_sha256") if "content_sha256" in recognized.columns else F.lit(None)
    exploded = recognized.where(F.col("status") == "ok").select(
        "path", "page", sha.alias("content_sha256"), "recognizer", F.explode("lines").alias("l"))
    out = exploded.select(
        "path", F.col("page").cast("int").alias("page"), F.col("l.line").alias("line"), F.col("l.text").alias("text"),
        F.col("l.confidence").alias("confidence"), F.col("l.bbox").alias("bbox"),
        F.col("l.polygon").alias("polygon"), F.col("l.baseline").alias("baseline"),
        "content_sha256", "recognizer", *_stamp(run_id, at),
    )
    return out.select([F.col(f.name).cast(f.dataType) for f in LINES_TABLE.fields])
