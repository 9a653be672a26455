"""Batch selection, skipping complete pairs, and failures that do not stop the batch."""
import pytest

from utils import batch
from utils.batch import BUSY, COMPLETE_MARKER, DONE, SKIPPED, attempt_pair, is_complete, run_batch, select_pairs
from utils.errors import InputError
from utils.io.files import load_json
from utils.io.lock import folder_lock


def test_select_all_pairs_and_seeded_random_pairs():
    assert select_pairs(["a", "b"], ["x", "y"]) == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]
    first = select_pairs(["a", "b", "c"], ["s1", "s2", "s3", "s4"], mode="random", styles_per_content=2, seed=3)
    assert first == select_pairs(["a", "b", "c"], ["s1", "s2", "s3", "s4"], mode="random", styles_per_content=2, seed=3)
    assert len(first) == 6 and all(len({s for c, s in first if c == name}) == 2 for name in "abc")
    with pytest.raises(InputError):
        select_pairs(["a"], ["x"], mode="sometimes")


def test_one_broken_pair_does_not_stop_the_others_and_complete_pairs_are_skipped(tmp_path):
    calls = []

    def run_pair(pair):
        calls.append(pair)
        (tmp_path / pair[0] / pair[1]).mkdir(parents=True, exist_ok=True)
        if pair[1] == "broken":
            raise InputError("style/broken.txt: 67 points, expected 68")
        if pair[1] == "buggy":
            raise ValueError("nan in loss")
        return {"score": 1}

    pairs = select_pairs(["m"], ["good", "broken", "buggy", "fine"])
    summary = run_batch(pairs, lambda p: tmp_path / p[0] / p[1], run_pair, log=lambda line: None)
    assert summary.done == ["m x good", "m x fine"]
    assert list(summary.failed) == [("m", "broken"), ("m", "buggy")]
    assert "67 points" in summary.failed["m", "broken"] and "ValueError" in summary.failed["m", "buggy"]
    assert is_complete(tmp_path / "m" / "good") and not is_complete(tmp_path / "m" / "broken")
    assert load_json(tmp_path / "m" / "good" / COMPLETE_MARKER)["score"] == 1

    calls.clear()
    again = run_batch(pairs, lambda p: tmp_path / p[0] / p[1], run_pair, log=lambda line: None)
    assert calls == [("m", "broken"), ("m", "buggy")] and again.skipped == ["m x good", "m x fine"]
    forced = run_batch(pairs[:1], lambda p: tmp_path / p[0] / p[1], run_pair, force=True, log=lambda line: None)
    assert forced.done == ["m x good"]
    assert "failed 2" in again.lines()[0]


def test_the_marker_is_written_while_the_pair_folder_is_still_locked(tmp_path, monkeypatch):
    """No second run can take the pair between its last output and its marker (nor clear the marker first)."""
    folder, held_meanwhile = tmp_path / "m" / "good", []
    write_marker = batch.mark_complete

    def mark_and_look(where, info):
        with folder_lock(where) as free:
            held_meanwhile.append(not free)
        write_marker(where, info)

    monkeypatch.setattr(batch, "mark_complete", mark_and_look)
    outcome = attempt_pair(("m", "good"), folder, lambda pair: {"score": 1})
    assert outcome.status == DONE and held_meanwhile == [True] and is_complete(folder)
    assert attempt_pair(("m", "good"), folder, lambda pair: pytest.fail("run again")).status == SKIPPED
    with folder_lock(folder):
        assert attempt_pair(("m", "good"), folder, lambda pair: pytest.fail("run while busy"), force=True).status \
            == BUSY
