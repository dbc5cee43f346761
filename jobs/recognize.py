"""spark-submit entry point: the same pipeline and options as ``sparkhtr recognize``.

    spark-submit --master yarn --properties-file conf/gpu-cluster.conf \
        jobs/recognize.py s3a://bucket/scans/ --out s3a://bucket/htr/ --device cuda

The session comes from spark-submit (its master and confs are used as they are).
"""

from __future__ import annotations

import sys

from sparkhtr.cli import main

if __name__ == "__main__":
    sys.exit(main(["recognize", "--no-progress", *sys.argv[1:]]))
