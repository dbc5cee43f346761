import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.helpers and models.training import from the checkout


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.tiny_model import make_tiny_model_dir

    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real data folder; tests using it skip when it is absent."""
    import os

    root = Path(os.environ.get("SPARKHTR_DATA", ROOT.parent / "shared" / "data"))
    if not (root / "lines").is_dir():
        pytest.skip(f"real data not found at {root}")
    return root
