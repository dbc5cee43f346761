"""Run the recogniser under stage-level scheduling on a ``local-cluster`` with two fake GPUs; print JSON.

    python -m tests.helpers.stage_scheduling MODEL_DIR OUT_DIR

A discovery script reports GPUs "0" and "1" (no CUDA needed: the recogniser runs on
CPU); decoding and segmentation run in the default profile, recognition in a profile
of one GPU per task, so the two concurrent recognition tasks must get different GPUs.
Used by ``tests/spark/test_recognizer_scheduling.py`` (its own JVM: one SparkContext per process).
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pyarrow as pa
from PIL import Image


def main(model_dir: str, out_dir: str) -> None:
    from pyspark.ml import Pipeline
    from pyspark.sql import SparkSession

    from sparkhtr.spark.binary_to_image import BinaryToImage
    from sparkhtr.spark.image_preprocessor import ImagePreprocessor
    from sparkhtr.spark.line_segmenter import LineSegmenter
    from sparkhtr.spark.recognizer import HandwrittenTextRecognizer
    from tests.helpers.tiny_model import blob_line

    out = Path(out_dir)
    script = out / "gpus.sh"
    script.write_text('#!/usr/bin/env bash\necho \'{"name": "gpu", "addresses": ["0", "1"]}\'\n')
    script.chmod(0o755)
    images = out / "lines"
    images.mkdir()
    for k in range(1, 9):
        buffer = io.BytesIO()
        Image.fromarray(blob_line(k % 4 + 1)).save(buffer, "PNG")
        (images / f"line{k}.png").write_bytes(buffer.getvalue())
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master("local-cluster[1,2,1024]").appName("stage-scheduling")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.worker.resource.gpu.amount", "2")
             .config("spark.worker.resource.gpu.discoveryScript", str(script))
             .config("spark.executor.resource.gpu.amount", "2")
             .config("spark.executor.resource.gpu.discoveryScript", str(script))
             .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")

    def gpus_seen(batches):  # what the default-profile stages get: no GPU
        from pyspark import TaskContext

        gpu = TaskContext.get().resources().get("gpu")
        for _ in batches:
            yield pa.RecordBatch.from_pydict({"gpu": [",".join(gpu.addresses) if gpu else ""]})

    files = spark.read.format("binaryFile").load(str(images)).repartition(2)
    recognizer = HandwrittenTextRecognizer(model=model_dir, device="cpu", taskGpus=1.0, numPartitions=4)
    stages = [BinaryToImage(), ImagePreprocessor(deskew=False, normalizeContrast=False),
              LineSegmenter(method="whole"), recognizer]
    pipeline = Pipeline(stages=stages).fit(files)
    segmented = Pipeline(stages=stages[:3]).fit(files).transform(files)
    recognized = pipeline.transform(files)
    rows = recognized.select("path", "lines").collect()
    report = {
        "texts": {r.path.rsplit("/", 1)[-1]: r.lines[0].text for r in rows},
        "gpu_ids": sorted({m["gpu_id"] for m in recognizer.workerMetrics().values()}),
        "session_loads": sum(m["session_loads"] for m in recognizer.workerMetrics().values()),
        "default_profile_gpus": sorted({r.gpu for r in segmented.mapInArrow(gpus_seen, "gpu string").collect()}),
        "plan_has_exchange": "Exchange" in recognized._jdf.queryExecution().executedPlan().toString(),
    }
    spark.stop()
    print("REPORT " + json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
