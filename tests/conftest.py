import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "inventory" / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE_GOLDEN = os.environ.get("DCVPN_UPDATE_GOLDEN") == "1"


def example(name: str) -> Path:
    return EXAMPLES / name


def require_binary(name: str) -> str:
    """Path of a required program. In CI (CI=1 or DCVPN_REQUIRE_ALL=1) a missing one fails."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (see .ci/run for the packages)"
        if os.environ.get("CI") or os.environ.get("DCVPN_REQUIRE_ALL"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES
