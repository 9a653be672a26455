"""run.py --executor ray on a local Ray (2 CPUs): the same files and failure line as the local loop, and resuming."""
import os
import re
import sys
import time

import numpy as np
import pytest
import torch

import run
from tests.synthetic import COMPARED, add_style, run_main, tiny_network
from utils import batch_ray
from utils.batch import COMPLETE_MARKER, SKIPPED, is_complete, mark_complete
from utils.io.files import load_json
from utils.io.images import save_image
from utils.io.lock import folder_lock

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
    add_style(style, "toon2", seed=1)
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


def unlocked(folder, seconds):
    """True once no process holds ``folder``'s lock (``utils.io.lock``), waiting up to ``seconds``."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        with folder_lock(folder) as held:
            if held:
                return True
        time.sleep(0.1)
    return False


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
    stylize_pair, go_on = run.stylize_pair, styles / "toon2 may finish"

    def toon2_waits(content, style, *args):
        """In the worker: toon2 waits for ``go_on`` (never made), so it is outstanding when Ctrl-C comes."""
        deadline = time.time() + 120
        while style.name == "toon2" and not go_on.exists() and time.time() < deadline:
            time.sleep(0.05)
        return stylize_pair(content, style, *args)

    say_outcome = batch_ray.say_outcome

    def interrupt(*args, **kwargs):
        say_outcome(*args, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C in the driver once the first pair is done, while toon2 is outstanding

    with monkeypatch.context() as patch:
        patch.setattr(run, "stylize_pair", toon2_waits)
        patch.setattr(batch_ray, "say_outcome", interrupt)
        assert run_main(styles, styles / "resumed", *chosen) == 130
    resumed = styles / "resumed" / "face"
    assert is_complete(resumed / "toon") and not is_complete(resumed / "toon2")  # toon's worker marked it
    assert not list((styles / "resumed").rglob("*.tmp-*"))
    # a worker that ignored the cancel is killed (force) without waiting; until it is gone it holds toon2's lock, and
    # a run started meanwhile rightly calls the pair busy (seen once in a full suite): wait as a user would
    assert unlocked(resumed / "toon2", seconds=60)
    assert run_main(styles, styles / "resumed", *chosen) == 0
    assert_same_outputs(styles / "resumed", styles / "straight", [("face", "toon"), ("face", "toon2")])


def test_a_task_leaves_a_pair_another_run_completed_meanwhile(styles):
    """The driver submits the pairs it found incomplete; one that another run completes before its task starts is
    not redone: the task checks the marker under the folder's lock."""
    folder = styles / "output" / "face" / "toon"
    mark_complete(folder, {"by": "another run"})

    def make_runner():
        return lambda pair: pytest.fail("the complete pair was run again")

    outstanding = batch_ray.submit([("face", "toon")], lambda pair: folder, make_runner, False, 1, False)
    [outcome] = ray.get(list(outstanding))
    assert outcome.status == SKIPPED and load_json(folder / COMPLETE_MARKER)["by"] == "another run"
