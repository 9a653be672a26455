"""Batches of (content, style) pairs that resume: selection, completion markers, failures that do not stop the rest.

A pair's folder is marked complete (``COMPLETE_MARKER``) only after all of its outputs are written, each of them
atomically; a re-run skips complete pairs and redoes any other from the start, so a run interrupted at any moment
and run again ends with the same files as an uninterrupted one (the work is seeded per pair).
"""
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from utils.errors import InputError
from utils.io.files import save_json, sweep_temporaries
from utils.io.layout import COMPLETE_MARKER
from utils.io.lock import folder_lock

SELECTION_MODES = ("all", "random")
EXECUTORS = ("local", "ray")  # pairs one after another in this process, or as Ray tasks (utils/batch_ray.py)


def select_pairs(contents, styles, mode="all", styles_per_content=1, seed=0):
    """Pairs of names to run.

    mode "all": every content with every style; "random": RRPS's way, each content with ``styles_per_content``
    distinct styles drawn at random (seeded, so the same call gives the same pairs).
    Returns a list of (content, style) tuples.
    """
    if mode == "all":
        return [(content, style) for content in contents for style in styles]
    if mode != "random":
        raise InputError(f"pair selection '{mode}' is not one of {', '.join(SELECTION_MODES)}")
    rng = random.Random(seed)
    count = min(styles_per_content, len(styles))
    return [(content, style) for content in contents for style in sorted(rng.sample(list(styles), count))]


def is_complete(folder):
    """True when the pair folder carries its completion marker."""
    return (Path(folder) / COMPLETE_MARKER).is_file()


def mark_complete(folder, info):
    """Write the completion marker (last file of a pair) with a small summary dict."""
    save_json(Path(folder) / COMPLETE_MARKER, dict(info, finished=time.strftime("%Y-%m-%d %H:%M:%S")))


def clear_marker(folder):
    """Remove the completion marker before a pair is (re)done, so a crash mid-pair leaves it incomplete."""
    marker = Path(folder) / COMPLETE_MARKER
    if marker.is_file():
        marker.unlink()


def skipped_as_complete(name, folder, force, summary, log):
    """True (said in one line, recorded in summary.skipped) when the pair's folder is complete and not forced."""
    if force or not is_complete(folder):
        return False
    summary.skipped.append(name)
    log(f"{name}: complete in {folder}, skipped (--force to redo)")
    return True


def busy_line(name, folder):
    """What is said of a pair whose folder another run holds."""
    return f"{name}: another run is working on {folder}; skipped (not a failure, re-run later)"


def failure_reason(err):
    """One line for an unexpected error in a pair: its type, message and the file:line it was raised at."""
    where = traceback.extract_tb(err.__traceback__)[-1]
    return f"{type(err).__name__}: {err} ({Path(where.filename).name}:{where.lineno})"


@dataclass
class BatchSummary:
    """What a batch did: names ("content x style") of pairs done, skipped (complete) and busy (another run is
    working on them: not a failure, they are that run's to finish); failed: {(content, style): reason}."""

    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    busy: list = field(default_factory=list)

    def lines(self):
        """Human-readable summary lines."""
        text = [f"done {len(self.done)}, skipped {len(self.skipped)} (already complete), failed {len(self.failed)}"]
        if self.busy:
            text[0] += f", busy {len(self.busy)} (left to the run that holds them: {', '.join(self.busy)})"
        text += [f"  failed {' x '.join(pair)}: {reason}" for pair, reason in self.failed.items()]
        return text


def run_batch(pairs, folder_of, run_pair, force=False, log=tqdm.write):
    """Run ``run_pair(pair)`` for every pair whose folder is not complete; one failure does not stop the rest.

    pairs: list of (content, style); folder_of(pair) -> Path of its output folder; run_pair writes every output
    of a pair (the marker is written here after it returns). Bad input (InputError) is reported in one line;
    any other error is reported with its traceback's last line and the batch goes on. KeyboardInterrupt stops
    the batch at once, leaving the current pair unmarked. A pair's folder is locked while it runs; a pair whose
    folder another run holds is left to that run (``summary.busy``, one line).
    """
    summary = BatchSummary()
    for pair in tqdm(pairs, desc="pairs", unit="pair"):
        name, folder = " x ".join(pair), folder_of(pair)
        with folder_lock(folder) as held:
            if not held:
                summary.busy.append(name)
                log(busy_line(name, folder))
            elif not skipped_as_complete(name, folder, force, summary, log):
                _run_locked(pair, name, folder, run_pair, summary, log)
    return summary


def _run_locked(pair, name, folder, run_pair, summary, log):
    """Run one pair whose folder this process has locked, recording the outcome in ``summary``."""
    sweep_temporaries(folder, log=log)
    clear_marker(folder)
    start = time.time()
    try:
        info = run_pair(pair) or {}
    except InputError as err:
        summary.failed[tuple(pair)] = str(err)
        log(f"{name}: failed: {err}")
        return
    except Exception as err:  # a bug or a numerical failure in one pair: report it, keep the batch going
        reason = failure_reason(err)
        summary.failed[tuple(pair)] = reason
        log(f"{name}: failed: {reason}")
        return
    mark_complete(folder, dict(info, content=pair[0], style=pair[1], seconds=round(time.time() - start, 1)))
    summary.done.append(name)


def run_pairs(pairs, folder_of, make_runner, force=False, executor="local", log=tqdm.write, **ray_options):
    """Run a batch with the chosen executor; returns its ``BatchSummary``.

    make_runner() -> run_pair: builds the per-pair function (loading the feature network) once per process that
    runs pairs: here for "local" (``run_batch``, one pair after another), once per Ray worker for "ray"
    (``utils.batch_ray.run_batch_ray``; ray_options: address, cpus_per_task, use_gpu). Both skip complete pairs,
    report failures the same way and give the same summary.
    """
    if executor not in EXECUTORS:
        raise InputError(f"executor '{executor}' is not one of {', '.join(EXECUTORS)}")
    if executor == "local":
        return run_batch(pairs, folder_of, make_runner(), force=force, log=log)
    from utils.batch_ray import run_batch_ray  # Ray is imported only when it is asked for

    return run_batch_ray(pairs, folder_of, make_runner, force=force, log=log, **ray_options)
