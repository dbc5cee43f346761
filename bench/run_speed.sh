#!/usr/bin/env bash
# Final speed measurements on the shared 2-core machine: wait until no other benchmark
# runs, pause the training process for the measurement, and always resume it.
#
#   bench/run_speed.sh --sections recognizer,tesseract,e2e --json bench/results/speed.json --md bench/results/speed.md
#   bench/run_speed.sh --sections memory --json bench/results/speed_memory.json --md bench/results/speed_memory.md
set -euo pipefail
cd "$(dirname "$0")/.."
while pgrep -f bench/reliability.py > /dev/null; do
    echo "waiting for bench/reliability.py to finish..." >&2
    sleep 30
done
paused=$(pgrep -f models.training.train || true)
resume() { if [ -n "$paused" ]; then kill -CONT $paused 2>/dev/null || true; echo "resumed training ($paused)" >&2; fi; }
trap resume EXIT
if [ -n "$paused" ]; then kill -STOP $paused; echo "paused training ($paused)" >&2; fi
.venv/bin/python bench/speed.py "$@"
