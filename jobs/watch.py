"""spark-submit entry point for streaming: the same options as ``sparkhtr watch``.

    spark-submit --master yarn --properties-file conf/gpu-cluster.conf \\
        jobs/watch.py s3a://bucket/incoming/ --out s3a://bucket/htr/ --checkpoint s3a://bucket/htr/_checkpoints/in

Run it as a long-lived job, or with ``--once`` from a scheduler: each run picks up
the files that arrived since the last one.
"""

from __future__ import annotations

import sys

from sparkhtr.cli import main

if __name__ == "__main__":
    sys.exit(main(["watch", *sys.argv[1:]]))
