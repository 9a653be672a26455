"""A batch's pairs as Ray tasks: on this machine (a local Ray started and stopped for the run) or on a cluster.

Each task is one ``utils.batch.attempt_pair`` in a worker process, so a pair is locked, checked, run and marked
complete exactly as in the local loop, its folder locked throughout; the driver (this process) only skips the pairs
already complete, says each outcome as it arrives and keeps the summary, in the batch's order. A worker builds the
per-pair function once (``make_runner()``: the feature network is loaded once per worker, not once per pair).

Storage: workers read their inputs from, and write their outputs (atomically, as in the local loop) to, the same
paths as the driver, so every node must mount the project folder at the same path (see the README). Ctrl-C cancels
the outstanding tasks: each is interrupted like the local loop is, so its temporary files are removed and its
pair stays unmarked.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from tqdm import tqdm

from utils.batch import DONE, FAILED, SKIPPED, BatchSummary, Outcome, attempt_pair, is_complete, say_outcome
from utils.errors import InputError

if TYPE_CHECKING:
    from utils.batch import Pair

try:
    import ray
except ImportError:  # an optional dependency: only --executor ray needs it
    ray = None

LOCAL_OBJECT_STORE_BYTES = 200 * 2**20  # tasks exchange only small things (pairs, summaries); a local Ray is shared
CANCEL_WAIT_SECONDS = 30  # after Ctrl-C, how long cancelled tasks get to clean up before they are killed
OFFLINE_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}  # no usage reports (the machines may have no internet)
ANSWER_SECONDS = 10  # how long a cluster's address gets to accept a connection before the run gives up on it
# Ray tries a cluster's address 20 times, each try up to about 40 s when nothing answers: one try is enough to
# tell a running cluster, and keeps a wrong address under a minute
CONNECT_TRIES = {"RAY_gcs_server_port_wait_time_s": "1"}
TOKEN_HELP = ("copy the head node's ~/.ray/auth_token (`ray get-auth-token` on the head prints it) to "
              "~/.ray/auth_token here, or set RAY_AUTH_TOKEN (the token) or RAY_AUTH_TOKEN_PATH (its file)")


def require_ray() -> ModuleType:
    """The ray module, or an InputError that says how to install it."""
    if ray is None:
        raise InputError("--executor ray needs the 'ray' package: .venv/bin/python -m pip install ray==2.60.0")
    return ray


def start_local_ray(num_cpus: int | None = None) -> None:
    """Start a Ray on this machine (no dashboard, no usage statistics, a small object store); num_cpus: all if None.

    Always a new Ray of this process's own: "local" keeps Ray from joining the cluster named by a leftover
    address file (``<temp dir>/ray/ray_current_cluster``, from another job's ``ray start``) or by RAY_ADDRESS.
    """
    require_ray()
    os.environ.update(OFFLINE_ENV)
    ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
             object_store_memory=LOCAL_OBJECT_STORE_BYTES, configure_logging=False)


def host_and_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a "host:port" address (an optional scheme:// and IPv6 brackets allowed), None for others."""
    match = re.fullmatch(r"(?:\w+://)?\[?([^\[\]]+?)\]?:(\d+)", address.strip())
    return (match[1], int(match[2])) if match else None


def check_answers(address: str) -> None:
    """An InputError in one line when nothing accepts a connection at ``address`` ("host:port"; others pass)."""
    parsed = host_and_port(address)
    if parsed is None:
        return
    try:
        socket.create_connection(parsed, timeout=ANSWER_SECONDS).close()
    except socket.gaierror:
        why = f"unknown host {parsed[0]}"
    except ConnectionRefusedError:
        why = f"nothing listens on port {parsed[1]}"
    except OSError as err:  # no route, or no answer in time
        why = err.strerror or f"no answer within {ANSWER_SECONDS} s"
    else:
        return
    raise InputError(f"no Ray cluster at {address} ({why}); check --ray-address, or start one with `ray start --head`")


def use_token_if_found() -> bool:
    """Token authentication for this driver when RAY_AUTH_MODE is unset and a token is where Ray looks for one
    (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token). Returns True when a token is used.

    ``ray start --head`` turns token authentication on by itself when ~/.ray/auth_token exists, but ``ray.init``
    turns it on only for the address "auto", so a driver given the head's address would be refused.
    """
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None:
        return mode.lower() == "token"
    from ray._raylet import AuthenticationTokenLoader, Config  # Ray's own search for the token (ray==2.60)

    if not AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
        return False
    os.environ["RAY_AUTH_MODE"] = "token"
    Config.initialize("")  # Ray read its settings from the environment at import: read them again
    return True


@contextlib.contextmanager
def captured_stderr() -> Iterator[Callable[[], str]]:
    """Ray's own lines on stderr (its C++ part writes there directly) kept aside; yields a function that returns
    them. They are passed on when the block ends normally, and left for the caller to sum up when it raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as kept:
        os.dup2(kept.fileno(), 2)

        def text():
            kept.seek(0)
            return kept.read().decode(errors="replace")

        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sys.stderr.write(text())  # reached only when the block did not raise


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in os.environ for the block, except where the user has set them; then as before."""
    added = {name: value for name, value in values.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def join_cluster(address: str) -> None:
    """Join the running Ray cluster at ``address``, or raise an InputError in one line within a minute."""
    try:
        token = use_token_if_found()
        check_answers(address)
        with environment(CONNECT_TRIES), captured_stderr() as said:
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                if "InvalidAuthToken" in said():
                    refused = "refused this machine's token" if token else "asks for a token"
                    raise InputError(f"the Ray cluster at {address} {refused}: {TOKEN_HELP}") from None
                raise InputError(f"no Ray cluster at {address} ({str(err).strip().splitlines()[0]}); check "
                                 "--ray-address, or start one with `ray start --head`") from None
    except ray.exceptions.AuthenticationError as err:  # token authentication asked for, and no token to be read
        raise InputError(f"Ray's token for {address}: {err.message}; {TOKEN_HELP}") from None


def connect(address: str | None = None) -> bool:
    """Join the Ray at ``address`` or, without one, start a local one. Returns True when the caller must stop it.

    A Ray this process already runs (e.g. a test's) is used as it is and left running.
    """
    require_ray()
    if ray.is_initialized():
        return False
    os.environ.update(OFFLINE_ENV)
    if address is None:
        start_local_ray()
    else:
        join_cluster(address)
    return True


_RUNNER = {}  # in a worker process: {batch id: run_pair} for the batch it serves (one at a time)


def _runner(batch, factory_ref, workdir, threads):
    """This worker's run_pair for ``batch``, built on its first pair: the driver's folder and thread count first."""
    if batch not in _RUNNER:
        _RUNNER.clear()
        os.chdir(workdir)  # relative paths (inputs, outputs, meshes) mean what they mean to the driver
        if workdir not in sys.path:
            sys.path.insert(0, workdir)
        import torch

        torch.set_num_threads(threads)  # the same arithmetic, so the same bytes, as a local run with these threads
        _RUNNER[batch] = ray.get(factory_ref[0])()
    return _RUNNER[batch]


def _attempt(batch, factory_ref, workdir, threads, pair, folder, force):
    """Ray task: ``attempt_pair`` on one pair, with this worker's run_pair; returns its ``Outcome``."""
    return attempt_pair(pair, Path(workdir) / folder,
                        lambda pair: _runner(batch, factory_ref, workdir, threads)(pair), force)


def submit(todo: Sequence[Pair], folder_of: Callable[[Pair], str | Path],
           make_runner: Callable[[], Callable[[Pair], dict]], force: bool, cpus_per_task: int,
           use_gpu: bool) -> dict[ray.ObjectRef, Pair]:
    """One task per pair; returns {ObjectRef: pair}. A GPU per task when asked for and the cluster has GPUs."""
    gpus = 1 if use_gpu and ray.cluster_resources().get("GPU", 0) > 0 else 0
    task = ray.remote(_attempt).options(num_cpus=cpus_per_task, num_gpus=gpus)
    factory_ref = [ray.put(make_runner)]  # in a list, so that each worker fetches it only once
    batch = uuid.uuid4().hex
    return {task.remote(batch, factory_ref, os.getcwd(), cpus_per_task, pair, str(folder_of(pair)), force): pair
            for pair in todo}


def cancel(outstanding: Iterable[ray.ObjectRef]) -> None:
    """Ctrl-C: interrupt every outstanding task, give them time to remove their temporary files, then kill them."""
    refs = list(outstanding)
    for ref in refs:
        ray.cancel(ref)
    _, stuck = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_SECONDS)
    for ref in stuck:
        ray.cancel(ref, force=True)


def collect(outstanding: dict[ray.ObjectRef, Pair], folder_of: Callable[[Pair], str | Path],
            log: Callable[[str], None], bar: tqdm) -> dict[Pair, Outcome]:
    """Each task's outcome as it arrives, said at once; returns {pair: Outcome}."""
    outcomes, counts = {}, Counter()
    while outstanding:
        [ref], _ = ray.wait(list(outstanding), num_returns=1)
        pair = outstanding.pop(ref)
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayError as err:  # the worker died (out of memory, node lost): that pair failed
            outcome = Outcome(FAILED, reason=f"{type(err).__name__}: {str(err).strip().splitlines()[0]}")
        outcomes[pair] = outcome
        say_outcome(pair, folder_of(pair), outcome, log)
        bar.update()
        counts[outcome.status] += 1
        bar.set_postfix(done=counts[DONE], failed=counts[FAILED])
    return outcomes


def run_batch_ray(pairs: Iterable[Pair], folder_of: Callable[[Pair], str | Path],
                  make_runner: Callable[[], Callable[[Pair], dict]], force: bool = False,
                  log: Callable[[str], None] = tqdm.write, address: str | None = None, cpus_per_task: int = 1,
                  use_gpu: bool = True) -> BatchSummary:
    """Attempt every pair whose folder is not complete as a Ray task; returns a ``BatchSummary`` like ``run_batch``.

    make_runner() -> run_pair(pair) is sent to the workers (it must pickle; each worker calls it once) and
    run_pair writes every output of a pair; the worker writes the completion marker after it, under the lock.
    address: a running Ray cluster ("auto", "host:6379"), None for a local Ray started and stopped here.
    cpus_per_task: CPUs each task reserves (and its torch threads); use_gpu: one GPU per task where there are GPUs.
    KeyboardInterrupt cancels the outstanding tasks and is raised again.
    """
    summary, todo = BatchSummary(), []
    for pair in map(tuple, pairs):
        if force or not is_complete(folder_of(pair)):
            todo.append(pair)
        else:  # no task for a complete pair; a task finds it complete too if another run completes it meanwhile
            say_outcome(pair, folder_of(pair), Outcome(SKIPPED), log)
            summary.add(pair, Outcome(SKIPPED))
    if not todo:
        return summary
    stop = connect(address)
    try:
        outstanding = submit(todo, folder_of, make_runner, force, cpus_per_task, use_gpu)
        with tqdm(total=len(summary.skipped) + len(todo), initial=len(summary.skipped), desc="pairs",
                  unit="pair") as bar:
            try:
                outcomes = collect(outstanding, folder_of, log, bar)
            except KeyboardInterrupt:
                cancel(outstanding)
                raise
    finally:
        if stop:
            ray.shutdown()
    for pair in todo:  # the batch's order, as the local loop leaves it
        summary.add(pair, outcomes[pair])
    return summary
