"""run.py --executor ray against Ray started as its docs say: a 2-node cluster with token authentication (slow),
addresses where no cluster answers, and a leftover address file of another job's Ray.

Each run.py here is a process of its own (Ray's state lives per process; a hang ends at the test's timeout) with
the tiny feature network; every Ray process a test starts keeps its files under the test's folder, and the test
ends those processes by their ids, never with a machine-wide `ray stop`.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.synthetic import COMPARED, RUN_FLAGS, add_style
from utils.batch import is_complete

pytest.importorskip("ray", reason="ray is not installed (pip install ray==2.60.0)")

ROOT = Path(__file__).resolve().parents[1]
RAY_CLI = Path(sys.executable).with_name("ray")
WRONG_ADDRESS_SECONDS = 120  # a bound for run.py on a wrong address (it gives up within a minute), so none hangs
RUN_SECONDS = 300  # a generous bound for one run.py on a few tiny pairs, so that no test can hang
STOP_WAIT_SECONDS = 15  # how long Ray's processes get to end after SIGTERM before they are killed
# run.py's main with the tiny network; the workers get it (and synthetic.py) by value. Each process that loads it
# adds the Ray node it runs on ("local" outside Ray) to the file NODES_LOG names.
DRIVER = ("import os, sys, ray, run, synthetic\n"
          "NODES_LOG = os.environ['NODES_LOG']  # a value that travels with the function, unlike the environment\n"
          "def tiny_network(*args, **kwargs):\n"
          "    with open(NODES_LOG, 'a') as log:\n"
          "        log.write((ray.get_runtime_context().get_node_id() if ray.is_initialized() else 'local') + '\\n')\n"
          "    return synthetic.tiny_network()\n"
          "ray.cloudpickle.register_pickle_by_value(synthetic)\n"
          "run.load_feature_network = tiny_network\n"
          "run.main(sys.argv[1:])\n")
RAY_SETTINGS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_TMPDIR")


def environment(home, **extra):
    """This process's environment for a child, with its own home (where Ray keeps its token), none of the
    caller's Ray settings, one torch thread and no usage statistics."""
    env = {name: value for name, value in os.environ.items() if name not in RAY_SETTINGS}
    Path(home).mkdir(parents=True, exist_ok=True)
    return dict(env, HOME=str(home), OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0",
                PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]), **extra)


def run_py(project, output, *flags, env, timeout=RUN_SECONDS):
    """run.py (with the tiny network) on the tiny project, in a process of its own; returns the CompletedProcess.

    The nodes that loaded the network are listed in <project>/<output>.nodes.
    """
    env = dict(env, NODES_LOG=str(project / f"{output}.nodes"))
    argv = ["--content-dir", str(project / "content"), "--style-dir", str(project / "style"), "--output",
            str(project / output), *RUN_FLAGS, "--no-report", *flags]
    return subprocess.run([sys.executable, "-c", DRIVER, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def ray_cli(*args, env):
    """The ray command line, from the project folder (a node's workers start there); fails the test on an error."""
    done = subprocess.run([str(RAY_CLI), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=RUN_SECONDS)
    assert done.returncode == 0, f"ray {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def stop_processes_under(folder):
    """End every process whose command line names ``folder`` (the Ray processes a test started there)."""
    def running():
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and str(folder).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # ended meanwhile, or not ours to read
                pass
        return [pid for pid in found if pid != os.getpid()]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in running():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + STOP_WAIT_SECONDS
        while running() and time.time() < deadline:
            time.sleep(0.5)
    assert not running(), "Ray processes of the test are still running"


def free_port():
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def error_lines(stderr):
    """The lines that say something went wrong (not the tqdm bar, not warnings)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("pairs:", "warning:"))]


@pytest.fixture
def ray_folder():
    """A folder for the test's Ray processes (their temp dir); whatever runs from it is ended afterwards, then it
    is removed. A short path under the system's temp dir: Ray's socket paths in it must stay under 108 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="rrps-ray-"))
    try:
        yield folder
    finally:
        stop_processes_under(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_pairs_on_a_two_node_cluster_give_the_local_files(project, ray_folder):
    for number in (2, 3):
        add_style(project / "style", f"toon{number}", seed=number)
    pairs = [("face", style) for style in ("toon", "toon2", "toon3")]
    home = project / "home"
    env = environment(home)
    local = run_py(project, "local", env=env)
    assert local.returncode == 0, local.stderr

    # the documented way: a token where Ray keeps it (~/.ray/auth_token), with which `ray start --head` turns
    # token authentication on; another node needs RAY_AUTH_MODE=token and the same token
    ray_cli("get-auth-token", "--generate", env=env)
    assert (home / ".ray" / "auth_token").is_file()
    port = free_port()
    ray_cli("start", "--head", f"--port={port}", f"--temp-dir={ray_folder / 'head'}", "--num-cpus=1",
            "--include-dashboard=false", "--disable-usage-stats", env=env)
    address = f"127.0.0.1:{port}"
    ray_cli("start", f"--address={address}", f"--temp-dir={ray_folder / 'node'}", "--num-cpus=1",
            "--resources", json.dumps({"second_node": 1}), env=environment(home, RAY_AUTH_MODE="token"))

    remote = run_py(project, "cluster", "--executor", "ray", "--ray-address", address, "--cpus-per-task", "1",
                    env=env)
    assert remote.returncode == 0, remote.stderr
    assert "done 3, skipped 0 (already complete), failed 0" in remote.stdout
    assert len(set((project / "cluster.nodes").read_text().split())) == 2, "the pairs did not run on both nodes"
    for content, style in pairs:
        assert is_complete(project / "cluster" / content / style)
        for name in COMPARED:
            assert (project / "cluster" / content / style / name).read_bytes() == \
                (project / "local" / content / style / name).read_bytes(), f"{content} x {style}: {name}"

    stranger = run_py(project, "refused", "--executor", "ray", "--ray-address", address,
                      env=environment(project / "no-token-home"), timeout=WRONG_ADDRESS_SECONDS)
    assert stranger.returncode == 2 and len(error_lines(stranger.stderr)) == 1, stranger.stderr
    assert "asks for a token" in stranger.stderr and "RAY_AUTH_TOKEN" in stranger.stderr
    assert not (project / "refused").exists() or not any((project / "refused").rglob("complete.json"))


@pytest.mark.parametrize("address", ["127.0.0.1:1", "no-such-host.invalid:6379"], ids=["closed-port", "unknown-host"])
def test_a_wrong_address_fails_at_once_in_one_line(project, tmp_path, address):
    done = run_py(project, "output", "--executor", "ray", "--ray-address", address,
                  env=environment(tmp_path / "home"), timeout=WRONG_ADDRESS_SECONDS)
    assert done.returncode == 2 and error_lines(done.stderr) == [error_lines(done.stderr)[0]], done.stderr
    assert error_lines(done.stderr)[0].startswith(f"error: no Ray cluster at {address}")


def test_a_token_file_that_cannot_be_read_is_named_in_one_line(project, tmp_path):
    missing = tmp_path / "no-such-token"
    done = run_py(project, "output", "--executor", "ray", "--ray-address", f"127.0.0.1:{free_port()}",
                  env=environment(tmp_path / "home", RAY_AUTH_TOKEN_PATH=str(missing)), timeout=WRONG_ADDRESS_SECONDS)
    assert done.returncode == 2 and len(error_lines(done.stderr)) == 1, done.stderr
    assert str(missing) in done.stderr and "RAY_AUTH_TOKEN" in done.stderr


@pytest.mark.slow
def test_an_address_where_no_ray_answers_fails_within_a_minute(project, tmp_path):
    with socket.socket() as silent:  # accepts connections and never speaks: not a Ray
        silent.bind(("", 0))  # every interface: Ray turns 127.0.0.1 into this machine's address
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        done = run_py(project, "output", "--executor", "ray", "--ray-address", address,
                      env=environment(tmp_path / "home"), timeout=WRONG_ADDRESS_SECONDS)
    assert done.returncode == 2 and len(error_lines(done.stderr)) == 1, done.stderr
    assert f"no Ray cluster at {address}" in done.stderr


@pytest.mark.slow
def test_a_leftover_ray_address_file_does_not_confuse_the_local_ray(project, ray_folder):
    """Another job's `ray start` leaves <temp dir>/ray/ray_current_cluster; run.py's own Ray must not read it."""
    (ray_folder / "ray").mkdir()
    (ray_folder / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
    done = run_py(project, "output", "--executor", "ray", "--cpus-per-task", "1",
                  env=environment(project / "home", RAY_TMPDIR=str(ray_folder)))
    assert done.returncode == 0, done.stderr
    assert is_complete(project / "output" / "face" / "toon")
