"""The tools behind every published figure: the one timing method
(cattn._timing), the machine identity results are filed under, the
regression gate that must never compare two machines, and the peers'
correctness check (benchmarks/)."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from cattn import _timing

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
pytestmark = pytest.mark.skipif(not (BENCH / "gate.py").is_file(),
                                reason="needs the repository's benchmarks/")


@pytest.fixture
def bench_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


class FakeClock:
    """time.perf_counter and time.sleep of cattn._timing, on a clock that
    only the callables advance: every timing is exact."""
    def __init__(self, monkeypatch):
        self.now = 0.0
        monkeypatch.setattr(_timing.time, "perf_counter", lambda: self.now)
        monkeypatch.setattr(_timing.time, "sleep", lambda s: None)

    def costing(self, seconds, log=None, name=None):
        def fn():
            self.now += seconds() if callable(seconds) else seconds
            if log is not None:
                log.append(name)
        return fn


def test_compare_gives_both_estimators_exactly(monkeypatch):
    clock = FakeClock(monkeypatch)
    got = _timing.compare(clock.costing(0.001), clock.costing(0.003), pairs=5)
    assert got.best == pytest.approx(3.0)
    assert got.median == pytest.approx(3.0)
    assert len(got.ours) == len(got.peer) == 5


def test_compare_alternates_and_estimators_differ_under_noise(monkeypatch):
    clock = FakeClock(monkeypatch)
    # The peer's calls get slower as the run goes on (a noisy neighbour
    # arriving): the best samples and the per-pair median disagree.
    calls = [0]

    def drifting():
        calls[0] += 1
        return 0.002 * (1 + calls[0] / 50)
    ours, peer = clock.costing(0.001), clock.costing(drifting)
    order = []
    sample = _timing.sample

    def logged(fn, n, settle=_timing.SETTLE):
        order.append("ours" if fn is ours else "peer")
        return sample(fn, n, settle)
    monkeypatch.setattr(_timing, "sample", logged)
    got = _timing.compare(ours, peer, pairs=4, seconds=0.01)
    assert got.best < got.median
    assert order == ["ours", "peer", "peer", "ours", "ours", "peer",
                     "peer", "ours"]


def test_best_times_takes_turns(monkeypatch):
    clock = FakeClock(monkeypatch)
    log = []
    a = clock.costing(0.05, log, "a")
    b = clock.costing(0.07, log, "b")
    assert _timing.best_times([a, b], rounds=2) == pytest.approx([0.05, 0.07])
    assert log[-4:] == ["a", "b", "a", "b"]


CPUS = {
    "zen1": {"vendor_id": "AuthenticAMD", "cpu family": "23", "model": "1",
             "model name": "AMD EPYC 7551"},
    "zen4": {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17",
             "model name": "AMD EPYC 9454"},
    "zen5": {"vendor_id": "AuthenticAMD", "cpu family": "26", "model": "2",
             "model name": "AMD EPYC 9565"},
    "graviton3": {"CPU implementer": "0x41", "CPU part": "0xd40"},
}


def test_machine_names_tell_cpus_apart(bench_path):
    from benchmarks.machine import cpu_model, machine_name
    names = {k: machine_name(info) for k, info in CPUS.items()}
    assert len(set(names.values())) == len(names)
    assert cpu_model(CPUS["zen4"]) == "amd-f25m17"
    assert cpu_model(CPUS["graviton3"]) == "arm-0xd40"
    assert all(n.replace("-", "").replace("_", "").replace(".", "").isalnum()
               for n in names.values())


def test_machine_name_carries_the_forced_level(bench_path):
    script = ("import sys; sys.path.insert(0, sys.argv[1]);"
              "from benchmarks.machine import machine_name; print(machine_name())")
    run = [sys.executable, "-c", script, str(BENCH)]
    import os
    forced = subprocess.run(run, capture_output=True, text=True, check=True,
                            env=dict(os.environ, CATTN_ISA="generic")).stdout
    assert forced.strip().split("-")[-2] == "generic"


def _results_tree(root, runs):
    """An asv results tree: benchmarks.json and, per (machine, commit,
    value), a result file of one track_ratio point."""
    name = "bench_x.Case.track_ratio"
    root.mkdir()
    (root / "benchmarks.json").write_text(json.dumps(
        {name: {"param_names": [], "params": [], "unit": "ratio",
                "type": "track"}, "version": 2}))
    files = []
    for i, (machine, commit, value) in enumerate(runs):
        d = root / machine
        d.mkdir(exist_ok=True)
        (d / "machine.json").write_text(json.dumps({"machine": machine,
                                                    "version": 1}))
        run = {"commit_hash": commit * 5, "env_name": "e", "date": i,
               "params": {"machine": machine},
               "result_columns": ["result", "params"],
               "results": {name: [[value], []]}, "version": 2}
        path = d / f"{commit}-e.json"
        path.write_text(json.dumps(run))
        files.append(path)
    return files


def _gate(results, new):
    return subprocess.run([sys.executable, str(BENCH / "gate.py"),
                           "--results", str(results), str(new)],
                          capture_output=True, text=True)


def test_gate_compares_only_with_the_same_machine(tmp_path):
    # zen5 recorded a high ratio; the zen1 run is lower but within 25 % of
    # zen1's own history: a gate across machines would call it a drop.
    # The zen5 result is the newest recorded one.
    files = _results_tree(tmp_path / "r", [
        ("amd-f23m1-avx2-2c", "bbbbbbbb", 1.1),
        ("amd-f23m1-avx2-2c", "cccccccc", 1.0), ("amd-zen5", "aaaaaaaa", 2.2)])
    run = _gate(tmp_path / "r", files[1])
    assert run.returncode == 0, run.stdout
    assert "1 points, 0 dropped" in run.stdout
    assert "bbbbbbbb" in run.stdout and "aaaaaaaa" not in run.stdout


def test_gate_fails_a_drop_on_the_same_machine(tmp_path):
    files = _results_tree(tmp_path / "r", [
        ("m1", "aaaaaaaa", 2.0), ("m1", "bbbbbbbb", 1.2)])
    run = _gate(tmp_path / "r", files[1])
    assert run.returncode == 1
    assert "DROP" in run.stdout


def test_gate_without_a_baseline_passes_and_says_so(tmp_path):
    files = _results_tree(tmp_path / "r", [
        ("recorded", "aaaaaaaa", 2.0), ("new-machine", "bbbbbbbb", 0.1)])
    run = _gate(tmp_path / "r", files[1])
    assert run.returncode == 0
    assert "no baseline" in run.stdout and "new-machine" in run.stdout


def test_peer_check_refuses_a_wrong_answer(bench_path):
    from benchmarks.peers import check
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 8, 4)).astype(np.float32)
               for _ in range(3))
    import cattn
    out = cattn.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert check(out, q, k, v, {"is_causal": True}) < 1e-6
    with pytest.raises(AssertionError, match="float32 tolerance"):
        check(out, q, k, v, {})          # not causal: another answer
    # float32 accuracy is not float64's.
    with pytest.raises(AssertionError, match="float64 tolerance"):
        check(out.astype(np.float64), *(x.astype(np.float64)
                                        for x in (q, k, v)),
              {"is_causal": True})
