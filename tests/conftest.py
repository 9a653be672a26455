"""Shared test fixtures: the project root (and example/) on sys.path and the RRPS data in ../shared (skip if absent)."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_RRPS = ROOT.parent / "shared" / "data" / "rrps"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "example"))  # the example's builder, example/example_data.py


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs headless Chromium (tests/browser.py); skipped without it")


@pytest.fixture
def rrps_data():
    """Path to ../shared/data/rrps; the test is skipped with a reason when it is not there."""
    if not SHARED_RRPS.is_dir():
        pytest.skip(f"RRPS data not found at {SHARED_RRPS} (expected ../shared beside the checkout)")
    return SHARED_RRPS
