"""The recogniser's worker metrics, partitioning and GPU stage-level scheduling opt-in."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pyspark.ml import Pipeline

from sparkhtr.errors import ConfigError
from sparkhtr.spark.binary_to_image import BinaryToImage
from sparkhtr.spark.image_preprocessor import ImagePreprocessor
from sparkhtr.spark.line_segmenter import LineSegmenter
from sparkhtr.spark.recognizer import HandwrittenTextRecognizer, recognition_profile, summarize_metrics
from tests.helpers.tiny_model import blob_line

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def segmented(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("blob-lines")
    for k in range(1, 13):
        buffer = io.BytesIO()
        Image.fromarray(blob_line(k % 5 + 1)).save(buffer, "PNG")
        (folder / f"line{k:02d}.png").write_bytes(buffer.getvalue())
    files = spark.read.format("binaryFile").load(str(folder)).repartition(2)
    stages = [BinaryToImage(), ImagePreprocessor(deskew=False, normalizeContrast=False), LineSegmenter(method="whole")]
    return Pipeline(stages=stages).fit(files).transform(files).cache()


def _texts(df) -> dict[str, str]:
    return {r.path.rsplit("/", 1)[-1]: r.lines[0].text for r in df.select("path", "lines").collect()}


def test_worker_metrics_show_one_session_per_worker(segmented, tiny_model_dir):
    stage = HandwrittenTextRecognizer(model=str(tiny_model_dir), device="cpu", batchLines=2)
    out = stage.transform(segmented)
    assert stage.workerMetrics() == {}
    for _ in range(3):
        out.write.format("noop").mode("overwrite").save()
    metrics = stage.workerMetrics()
    total = summarize_metrics(metrics)
    assert total["lines"] == 36 and total["arrow_batches"] >= 6 and total["batches"] >= 18
    # every worker process loaded the model at most once, however many batches and jobs it ran
    assert all(m["session_loads"] == 1 for m in metrics.values())
    assert all(m["threads"] == 1 and m["device"] == "cpu" and m["batch_lines"] == 2 for m in metrics.values())
    assert total["infer_seconds"] <= total["udf_seconds"]


def test_repartition_and_local_mode_gpu_opt_in(segmented, tiny_model_dir, caplog):
    expected = {f"line{k:02d}.png": "a" * (k % 5 + 1) for k in range(1, 13)}
    plain = HandwrittenTextRecognizer(model=str(tiny_model_dir), device="cpu").transform(segmented)
    assert "RoundRobinPartitioning(3)" not in plain._jdf.queryExecution().executedPlan().toString()
    shuffled = HandwrittenTextRecognizer(model=str(tiny_model_dir), device="cpu", numPartitions=3).transform(segmented)
    assert "RoundRobinPartitioning(3)" in shuffled._jdf.queryExecution().executedPlan().toString()
    assert shuffled.rdd.getNumPartitions() == 3
    with caplog.at_level(logging.WARNING, logger="sparkhtr.spark.recognizer"):
        gpu = HandwrittenTextRecognizer(model=str(tiny_model_dir), device="cpu", taskGpus=0.5).transform(segmented)
    assert "stage-level scheduling" in caplog.text  # local mode: no profile, same results
    assert _texts(plain) == _texts(shuffled) == _texts(gpu) == expected


def test_param_checks_fail_on_the_driver(segmented, tiny_model_dir):
    with pytest.raises(ConfigError, match="fp16"):
        HandwrittenTextRecognizer(model=str(tiny_model_dir), device="cpu", precision="fp16").transform(segmented)
    with pytest.raises(ConfigError, match="precision"):
        HandwrittenTextRecognizer(model=str(tiny_model_dir), precision="bf16").transform(segmented)
    with pytest.raises(ConfigError, match="negative"):
        HandwrittenTextRecognizer(model=str(tiny_model_dir), numPartitions=-1).transform(segmented)


def test_profile_and_params_round_trip(tmp_path):
    profile = recognition_profile(0.25, 2)
    assert {k: v.amount for k, v in profile.taskResources.items()} == {"cpus": 2.0, "gpu": 0.25}
    with pytest.raises(ConfigError):
        recognition_profile(0.75)
    stage = HandwrittenTextRecognizer(device="cuda", precision="fp16", taskGpus=0.25, taskCpus=2, numPartitions=64)
    stage.write().overwrite().save(str(tmp_path / "rec"))
    loaded = HandwrittenTextRecognizer.load(str(tmp_path / "rec"))
    assert (loaded.getDevice(), loaded.getPrecision(), loaded.getTaskGpus(), loaded.getTaskCpus(),
            loaded.getNumPartitions()) == ("cuda", "fp16", 0.25, 2, 64)


@pytest.mark.slow
def test_stage_level_scheduling_on_a_local_cluster_with_fake_gpus(tiny_model_dir, tmp_path):
    """Recognition tasks get a GPU each from their ResourceProfile; the CPU stages get none."""
    done = subprocess.run([sys.executable, "-m", "tests.helpers.stage_scheduling", str(tiny_model_dir), str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=400)
    line = [x for x in done.stdout.splitlines() if x.startswith("REPORT ")]
    assert done.returncode == 0 and line, done.stderr[-3000:]
    report = json.loads(line[0][len("REPORT "):])
    assert report["texts"] == {f"line{k}.png": "a" * (k % 4 + 1) for k in range(1, 9)}
    assert report["default_profile_gpus"] == [""]
    assert set(report["gpu_ids"]) <= {0, 1} and report["gpu_ids"]
    assert report["plan_has_exchange"]


def test_spark_confs_fill_unset_params(spark, segmented, tiny_model_dir):
    keys = {"spark.sparkhtr.recognizer.numPartitions": "3", "spark.sparkhtr.recognizer.device": "cpu"}
    for key, value in keys.items():
        spark.conf.set(key, value)
    try:
        stage = HandwrittenTextRecognizer(model=str(tiny_model_dir))
        assert stage.effectiveParams(spark)["numPartitions"] == 3
        out = stage.transform(segmented)
        assert "RoundRobinPartitioning(3)" in out._jdf.queryExecution().executedPlan().toString()
        explicit = HandwrittenTextRecognizer(model=str(tiny_model_dir), numPartitions=0)
        assert explicit.effectiveParams(spark)["numPartitions"] == 0  # a set Param wins
        assert stage.effectiveParams(spark)["beamWidth"] == 0  # unset, no conf: the manifest's beams
        spark.conf.set("spark.sparkhtr.recognizer.beamWidth", "5")
        assert stage.effectiveParams(spark)["beamWidth"] == 5
        assert stage.copy({stage.beamWidth: 2}).effectiveParams(spark)["beamWidth"] == 2
        spark.conf.set("spark.sparkhtr.recognizer.beamWidth", "-4")
        with pytest.raises(ConfigError, match="beamWidth"):
            stage.effectiveParams(spark)
        spark.conf.unset("spark.sparkhtr.recognizer.beamWidth")
        spark.conf.set("spark.sparkhtr.recognizer.taskGpus", "a quarter")
        with pytest.raises(ConfigError, match="taskGpus"):
            stage.transform(segmented)
    finally:
        for key in (*keys, "spark.sparkhtr.recognizer.taskGpus", "spark.sparkhtr.recognizer.beamWidth"):
            spark.conf.unset(key)
