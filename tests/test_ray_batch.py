"""run.py --executor ray on a local Ray (2 CPUs): the same files and failure line as the local loop, and resuming."""
import os
import re
import sys

import numpy as np
import pytest
import torch

import run
from tests.synthetic import COMPARED, run_main, tiny_network
from utils import batch_ray
from utils.batch import is_complete
from utils.io.images import save_image

ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray==2.60.0)")
pytestmark = pytest.mark.slow  # a local Ray starts in 5 to 13 s, then each test runs several batches

THREADS = 1  # torch threads of each Ray task (--cpus-per-task) and of the local run it is compared with
RAY_FLAGS = ["--executor", "ray", "--cpus-per-task", str(THREADS)]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray (2 CPUs) for the whole module: its start-up is paid once, and run.py uses it as it is."""
    ray.cloudpickle.register_pickle_by_value(sys.modules["tests.synthetic"])  # the tiny network, to the workers by value
    batch_ray.start_local_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def styles(project):
    """Three styles: toon (from the project), toon2 (another image, same landmarks), broken (67 landmarks)."""
    style = project / "style"
    save_image(style / "toon2.png", np.kron(np.random.default_rng(1).random((8, 8, 3)), np.ones((10, 10, 1))))
    (style / "toon2.txt").write_text((style / "toon.txt").read_text())
    save_image(style / "broken.png", np.full((40, 40, 3), 0.5))
    (style / "broken.txt").write_text("10 10\n" * 67)
    return project


def with_threads(threads, *args):
    """run_main with torch using ``threads`` threads (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return run_main(*args)
    finally:
        torch.set_num_threads(before)


def failure_lines(text):
    """The summary's failure lines."""
    return [line for line in text.splitlines() if re.match(r"\s+failed ", line)]


def assert_same_outputs(folder, reference, pairs):
    """Every pair complete in ``folder``, its images, arrays and mesh byte for byte those in ``reference``."""
    for content, style in pairs:
        assert is_complete(folder / content / style)
        for name in COMPARED:
            assert (folder / content / style / name).read_bytes() == \
                (reference / content / style / name).read_bytes(), f"{content} x {style}: {name}"


def test_ray_gives_the_local_files_and_failure_line(styles, capsys, monkeypatch):
    loads = styles / "network_loads.txt"

    def load_and_count(*args, **kwargs):
        with open(loads, "a") as log:
            log.write(f"{os.getpid()}\n")
        return tiny_network()

    monkeypatch.setattr(run, "load_feature_network", load_and_count)
    assert with_threads(THREADS, styles, styles / "local", "--no-report") == 1
    local = capsys.readouterr().out
    assert run_main(styles, styles / "ray", *RAY_FLAGS) == 1
    remote = capsys.readouterr().out
    assert failure_lines(remote) == failure_lines(local) and "broken.txt" in failure_lines(remote)[0]
    assert "done 2, skipped 0 (already complete), failed 1" in remote
    assert_same_outputs(styles / "ray", styles / "local", [("face", "toon"), ("face", "toon2")])
    assert not is_complete(styles / "ray" / "face" / "broken")
    assert "toon2" in (styles / "ray" / "index.html").read_text()  # the report, written by the driver
    processes = loads.read_text().split()  # the driver's (local run), then each Ray worker's
    assert len(processes) == len(set(processes)) >= 2, "the network was loaded more than once in a process"


def test_interrupted_ray_run_resumes_to_the_same_outputs(styles, monkeypatch):
    chosen = ["--style", "toon", "toon2", "--no-report", *RAY_FLAGS]
    assert run_main(styles, styles / "straight", *chosen) == 0
    mark_complete = batch_ray.mark_complete

    def interrupt(*args, **kwargs):
        mark_complete(*args, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C once the first pair is done, while the other is outstanding

    with monkeypatch.context() as patch:
        patch.setattr(batch_ray, "mark_complete", interrupt)
        assert run_main(styles, styles / "resumed", *chosen) == 130
    folders = [styles / "resumed" / "face" / style for style in ("toon", "toon2")]
    assert sum(map(is_complete, folders)) == 1
    assert not list((styles / "resumed").rglob("*.tmp-*"))

    assert run_main(styles, styles / "resumed", *chosen) == 0
    assert_same_outputs(styles / "resumed", styles / "straight", [("face", "toon"), ("face", "toon2")])
