"""What a Python worker pays to load the character language model: seconds and resident memory.

Each file is loaded in a fresh interpreter (nothing cached, allocator arenas clean), once.

    python bench/lm_load.py models/sparkhtr-latin-crnn/charlm.npz [other LM files ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

_CHILD = """
import json, os, sys, time
import numpy  # imported before measuring: every worker has it loaded already
from sparkhtr.core.lm import CharNgramLM
from sparkhtr.perf import read_status
def rss_mib():
    return read_status(os.getpid())["VmRSS"] / 2**20
before = rss_mib()
start = time.perf_counter()
lm = CharNgramLM.load(sys.argv[1])
seconds = time.perf_counter() - start
lm.log_probs("the ")
print(json.dumps({"seconds": seconds, "rss_mib": rss_mib() - before, "order": lm.order}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    args = p.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    for path in args.files:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True,
                             check=True, cwd=root)
        row = json.loads(out.stdout)
        print(f"{path}: order {row['order']}, {path.stat().st_size / 1e6:.2f} MB on disk, "
              f"load {row['seconds']:.2f} s, +{row['rss_mib']:.0f} MiB resident")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
