"""A batch's pairs as Ray tasks: on this machine (a local Ray started and stopped for the run) or on a cluster.

Same semantics as ``utils.batch.run_batch``: complete pairs are skipped, a failing pair is reported in one line and
the others go on, the summary lists pairs in the batch's order. The driver (this process) clears and writes the
completion markers and keeps the summary; each task runs one pair in a worker process, which builds the per-pair
function once (``make_runner()``: the feature network is loaded once per worker, not once per pair).

Storage: workers read their inputs from, and write their outputs (atomically, as in the local loop) to, the same
paths as the driver, so every node must mount the project folder at the same path (see the README). Ctrl-C cancels
the outstanding tasks: each is interrupted like the local loop is, so its temporary files are removed and its
pair stays unmarked.
"""
import os
import sys
import time
import uuid
from pathlib import Path

from tqdm import tqdm

from utils.batch import BatchSummary, busy_line, clear_marker, failure_reason, mark_complete, skipped_as_complete
from utils.io.files import sweep_temporaries
from utils.io.lock import folder_lock
from utils.errors import InputError

try:
    import ray
except ImportError:  # an optional dependency: only --executor ray needs it
    ray = None

LOCAL_OBJECT_STORE_BYTES = 200 * 2**20  # tasks exchange only small things (pairs, summaries); a local Ray is shared
BUSY = "busy"  # a task's reason when another run holds the pair's folder (not a failure)
CANCEL_WAIT_SECONDS = 30  # after Ctrl-C, how long cancelled tasks get to clean up before they are killed
OFFLINE_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}  # no usage reports (the machines may have no internet)


def require_ray():
    """The ray module, or an InputError that says how to install it."""
    if ray is None:
        raise InputError("--executor ray needs the 'ray' package: .venv/bin/python -m pip install ray==2.60.0")
    return ray


def start_local_ray(num_cpus=None):
    """Start a Ray on this machine (no dashboard, no usage statistics, a small object store); num_cpus: all if None."""
    require_ray()
    os.environ.update(OFFLINE_ENV)
    ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
             object_store_memory=LOCAL_OBJECT_STORE_BYTES, configure_logging=False)


def connect(address=None):
    """Join the Ray at ``address`` or, without one, start a local one. Returns True when the caller must stop it.

    A Ray this process already runs (e.g. a test's) is used as it is and left running.
    """
    require_ray()
    if ray.is_initialized():
        return False
    if address is None:
        start_local_ray()
        return True
    os.environ.update(OFFLINE_ENV)
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except ConnectionError as err:
        raise InputError(f"no Ray cluster at {address} ({err}); start one with `ray start --head`") from None
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


def _run_one(batch, factory_ref, workdir, threads, pair, folder):
    """Ray task: run one pair with its folder locked, as the local loop does. Returns (info, None) when it is
    done, (None, reason) when it failed, (None, BUSY) when another run holds the folder."""
    start = time.time()
    with folder_lock(Path(workdir) / folder) as held:
        if not held:
            return None, BUSY
        sweep_temporaries(Path(workdir) / folder)
        try:
            info = _runner(batch, factory_ref, workdir, threads)(pair) or {}
        except InputError as err:
            return None, str(err)
        except Exception as err:  # a bug or a numerical failure in one pair: report it, keep the batch going
            return None, failure_reason(err)
    return dict(info, seconds=round(time.time() - start, 1)), None


def pairs_to_run(pairs, folder_of, force, summary, log):
    """The pairs that are not complete (their markers cleared); complete ones go to summary.skipped."""
    todo = []
    for pair in pairs:
        name, folder = " x ".join(pair), folder_of(pair)
        if not skipped_as_complete(name, folder, force, summary, log):
            clear_marker(folder)
            todo.append(tuple(pair))
    return todo


def submit(todo, folder_of, make_runner, cpus_per_task, use_gpu):
    """One task per pair; returns {ObjectRef: pair}. A GPU per task when asked for and the cluster has GPUs."""
    gpus = 1 if use_gpu and ray.cluster_resources().get("GPU", 0) > 0 else 0
    task = ray.remote(_run_one).options(num_cpus=cpus_per_task, num_gpus=gpus)
    factory_ref = [ray.put(make_runner)]  # in a list, so that each worker fetches it only once
    batch = uuid.uuid4().hex
    return {task.remote(batch, factory_ref, os.getcwd(), cpus_per_task, pair, str(folder_of(pair))): pair
            for pair in todo}


def cancel(outstanding):
    """Ctrl-C: interrupt every outstanding task, give them time to remove their temporary files, then kill them."""
    refs = list(outstanding)
    for ref in refs:
        ray.cancel(ref)
    _, stuck = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_SECONDS)
    for ref in stuck:
        ray.cancel(ref, force=True)


def collect(outstanding, pairs, folder_of, summary, log, bar):
    """Record each task's outcome as it arrives: the marker for a done pair, the reason for a failed one.

    summary.done and summary.failed end in the batch's order, as the local loop leaves them.
    """
    done, failed = set(), {}  # sets and dicts: ordering a large batch stays linear
    while outstanding:
        [ref], _ = ray.wait(list(outstanding), num_returns=1)
        pair = outstanding.pop(ref)
        try:
            info, reason = ray.get(ref)
        except ray.exceptions.RayError as err:  # the worker died (out of memory, node lost): that pair failed
            info, reason = None, f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
        if reason == BUSY:
            summary.busy.append(" x ".join(pair))
            log(busy_line(" x ".join(pair), folder_of(pair)))
        elif reason is None:
            mark_complete(folder_of(pair), dict(info, content=pair[0], style=pair[1]))
            done.add(pair)
            log(f"{' x '.join(pair)}: done in {info['seconds']} s")
        else:
            failed[pair] = reason
            log(f"{' x '.join(pair)}: failed: {reason}")
        bar.update()
        bar.set_postfix(done=len(done), failed=len(failed))
    ordered = [tuple(pair) for pair in pairs]
    summary.done += [" x ".join(pair) for pair in ordered if pair in done]
    summary.failed.update((pair, failed[pair]) for pair in ordered if pair in failed)


def run_batch_ray(pairs, folder_of, make_runner, force=False, log=tqdm.write, address=None, cpus_per_task=1,
                  use_gpu=True):
    """Run every pair whose folder is not complete as a Ray task; returns a ``BatchSummary`` like ``run_batch``.

    make_runner() -> run_pair(pair) is sent to the workers (it must pickle; each worker calls it once) and
    run_pair writes every output of a pair; the completion marker is written here once the task has returned.
    address: a running Ray cluster ("auto", "host:6379"), None for a local Ray started and stopped here.
    cpus_per_task: CPUs each task reserves (and its torch threads); use_gpu: one GPU per task where there are GPUs.
    KeyboardInterrupt cancels the outstanding tasks and is raised again.
    """
    summary = BatchSummary()
    todo = pairs_to_run(pairs, folder_of, force, summary, log)
    if not todo:
        return summary
    stop = connect(address)
    try:
        outstanding = submit(todo, folder_of, make_runner, cpus_per_task, use_gpu)
        with tqdm(total=len(pairs), initial=len(summary.skipped), desc="pairs", unit="pair") as bar:
            try:
                collect(outstanding, pairs, folder_of, summary, log, bar)
            except KeyboardInterrupt:
                cancel(outstanding)
                raise
    finally:
        if stop:
            ray.shutdown()
    return summary
