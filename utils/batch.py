"""Batches of (content, style) pairs that resume: selection, completion markers, failures that do not stop the rest.

A pair's folder is marked complete (``COMPLETE_MARKER``) only after all of its outputs are written, each of them
atomically; a re-run skips complete pairs and redoes any other from the start, so a run interrupted at any moment
and run again ends with the same files as an uninterrupted one (the work is seeded per pair).

``attempt_pair`` is the one definition of what running a pair means (its folder locked from the check for the marker
to the marker's writing); ``run_batch`` runs a batch with it here, one pair after another, and
``utils.batch_ray.run_batch_ray`` runs it as Ray tasks.
"""
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from tqdm import tqdm

from utils.errors import InputError
from utils.io.files import save_json, sweep_temporaries
from utils.io.layout import COMPLETE_MARKER
from utils.io.lock import folder_lock

SELECTION_MODES = ("all", "random")
DONE, SKIPPED, BUSY, FAILED = "done", "skipped", "busy", "failed"  # what an attempt at a pair came to

Pair = tuple  # (content name, style name)


def select_pairs(contents: Sequence[str], styles: Sequence[str], mode: str = "all", styles_per_content: int = 1,
                 seed: int = 0) -> list[Pair]:
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


def is_complete(folder: str | Path) -> bool:
    """True when the pair folder carries its completion marker."""
    return (Path(folder) / COMPLETE_MARKER).is_file()


def mark_complete(folder: str | Path, info: dict[str, Any]) -> None:
    """Write the completion marker (last file of a pair) with a small summary dict."""
    save_json(Path(folder) / COMPLETE_MARKER, dict(info, finished=time.strftime("%Y-%m-%d %H:%M:%S")))


def clear_marker(folder: str | Path) -> None:
    """Remove the completion marker before a pair is (re)done, so a crash mid-pair leaves it incomplete."""
    marker = Path(folder) / COMPLETE_MARKER
    if marker.is_file():
        marker.unlink()


def failure_reason(err: BaseException) -> str:
    """One line for an unexpected error in a pair: its type, message and the file:line it was raised at."""
    where = traceback.extract_tb(err.__traceback__)[-1]
    return f"{type(err).__name__}: {err} ({Path(where.filename).name}:{where.lineno})"


@dataclass
class Outcome:
    """What one attempt at a pair came to.

    status: DONE (info: what its marker holds), SKIPPED (complete already), BUSY (another run holds its folder: not
    a failure, the pair is that run's to finish) or FAILED (reason: one line); notes: lines to say before the
    status (temporary files removed).
    """

    status: str
    info: dict = field(default_factory=dict)
    reason: str = ""
    notes: list = field(default_factory=list)


def attempt_pair(pair: Pair, folder: str | Path, run_pair: Callable[[Pair], dict],
                 force: bool = False) -> Outcome:
    """Run ``run_pair(pair)`` with ``folder`` locked, unless the folder is complete (and not ``force``d) or busy.

    Under the lock: the temporary files of interrupted writers are removed, the marker is cleared, the pair runs,
    and once it has written every output the marker is written, so no other run can start the pair in between.
    Bad input (InputError) fails the pair with its message; any other error with its type, message and place;
    KeyboardInterrupt goes through, leaving the pair unmarked.
    """
    notes = []
    with folder_lock(folder) as held:
        if not held:
            return Outcome(BUSY)
        if not force and is_complete(folder):
            return Outcome(SKIPPED)
        sweep_temporaries(folder, log=notes.append)
        clear_marker(folder)
        start = time.time()
        try:
            info = run_pair(pair) or {}
        except InputError as err:
            return Outcome(FAILED, reason=str(err), notes=notes)
        except Exception as err:  # a bug or a numerical failure in one pair: report it, keep the batch going
            return Outcome(FAILED, reason=failure_reason(err), notes=notes)
        info = dict(info, content=pair[0], style=pair[1], seconds=round(time.time() - start, 1))
        mark_complete(folder, info)
    return Outcome(DONE, info=info, notes=notes)


def say_outcome(pair: Pair, folder: str | Path, outcome: Outcome, log: Callable[[str], None]) -> None:
    """Say a pair's outcome (the same lines on every executor): its notes, then one line."""
    name = " x ".join(pair)
    said = {DONE: f"{name}: done in {outcome.info.get('seconds')} s",
            SKIPPED: f"{name}: complete in {folder}, skipped (--force to redo)",
            BUSY: f"{name}: another run is working on {folder}; skipped (not a failure, re-run later)",
            FAILED: f"{name}: failed: {outcome.reason}"}
    for line in [*outcome.notes, said[outcome.status]]:
        log(line)


@dataclass
class BatchSummary:
    """What a batch did: names ("content x style") of pairs done, skipped (complete) and busy (another run is
    working on them: not a failure, they are that run's to finish); failed: {(content, style): reason}."""

    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    busy: list = field(default_factory=list)

    def add(self, pair: Pair, outcome: Outcome) -> None:
        """Record one pair's outcome."""
        if outcome.status == FAILED:
            self.failed[tuple(pair)] = outcome.reason
        else:
            getattr(self, outcome.status).append(" x ".join(pair))

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        text = [f"done {len(self.done)}, skipped {len(self.skipped)} (already complete), failed {len(self.failed)}"]
        if self.busy:
            text[0] += f", busy {len(self.busy)} (left to the run that holds them: {', '.join(self.busy)})"
        text += [f"  failed {' x '.join(pair)}: {reason}" for pair, reason in self.failed.items()]
        return text


def run_batch(pairs: Iterable[Pair], folder_of: Callable[[Pair], str | Path], run_pair: Callable[[Pair], dict],
              force: bool = False, log: Callable[[str], None] = tqdm.write) -> BatchSummary:
    """Attempt every pair here, one after another (``attempt_pair``); one failure does not stop the rest.

    pairs: list of (content, style); folder_of(pair) -> Path of its output folder; run_pair writes every output
    of a pair. Each outcome is said in one line as it comes. KeyboardInterrupt stops the batch at once, leaving the
    current pair unmarked.
    """
    summary = BatchSummary()
    for pair in tqdm(pairs, desc="pairs", unit="pair"):
        folder = folder_of(pair)
        outcome = attempt_pair(pair, folder, run_pair, force)
        say_outcome(pair, folder, outcome, log)
        summary.add(pair, outcome)
    return summary
