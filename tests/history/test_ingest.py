"""Ingest engines: in-process, process pool, Dask LocalCluster, a real `dask scheduler` with two `dask worker`
processes on 127.0.0.1, and SIGKILL at random points followed by a rerun. Every engine writes the same store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_helpers import SPY_FILES, assert_same_store, cboe_variant

from volsurf.history.ingest import ingest
from volsurf.history.store import Store

# Dask's one housekeeping warning a busy 2-core machine can trigger (slow scratch-directory creation).
DASK_WARNINGS = [
    "ignore:.*Creating scratch directories is taking a surprisingly long time.*:UserWarning",
]


@pytest.fixture(scope="module")
def chain_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Four snapshots with distinct content: the two SPY samples and one variant of each."""
    d = tmp_path_factory.mktemp("chains")
    files = [str(p) for p in SPY_FILES]
    files += [str(cboe_variant(p, d / f"variant_{i}_{p.name}", i)) for i, p in enumerate(SPY_FILES)]
    return files


@pytest.fixture(scope="module")
def reference_store(chain_files: list[str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The store an uninterrupted in-process run writes."""
    url = str(tmp_path_factory.mktemp("ref") / "ref.store")
    res = ingest(chain_files, url, jobs=1, progress=False)
    assert res.count("added") == len(chain_files), res.outcomes
    return url


def test_process_pool_writes_the_same_store(chain_files: list[str], reference_store: str, tmp_path: Path) -> None:
    url = str(tmp_path / "pool.store")
    res = ingest(chain_files, url, engine="local", jobs=2, progress=False)
    assert res.count("added") == len(chain_files) and res.workers == 2
    assert_same_store(url, reference_store)


def test_engine_and_jobs_validation(tmp_path: Path) -> None:
    from volsurf.errors import ParameterError

    with pytest.raises(ParameterError, match="unknown engine"):
        ingest([str(SPY_FILES[0])], str(tmp_path / "s"), engine="spark")
    with pytest.raises(ParameterError, match="jobs"):
        ingest([str(SPY_FILES[0])], str(tmp_path / "s"), jobs=0)


@pytest.mark.slow
@pytest.mark.filterwarnings(*DASK_WARNINGS)
def test_dask_local_cluster_two_workers(chain_files: list[str], reference_store: str, tmp_path: Path) -> None:
    url = str(tmp_path / "dask.store")
    res = ingest(chain_files, url, engine="dask", jobs=2, progress=False)
    assert res.engine == "dask" and res.workers == 2
    assert res.count("added") == len(chain_files), res.outcomes
    assert_same_store(url, reference_store)


def _dask_bin() -> str:
    exe = Path(sys.executable).parent / "dask"
    if not exe.exists():
        pytest.skip("the `dask` command is not installed beside this Python")
    return str(exe)


@pytest.mark.slow
@pytest.mark.filterwarnings(*DASK_WARNINGS)
def test_real_dask_scheduler_and_two_workers(chain_files: list[str], reference_store: str, tmp_path: Path) -> None:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, ingest through them, stop them."""
    from distributed import Client

    dask = _dask_bin()
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, start_new_session=True)]
    try:
        deadline = time.monotonic() + 30
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), "the scheduler did not start"
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(2):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                 "--no-dashboard", "--memory-limit", "2GiB", "--local-directory", str(tmp_path / "workers")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        url = str(tmp_path / "cluster.store")
        res = ingest(chain_files, url, scheduler=address, progress=False)
        assert res.engine == "dask" and res.workers == 2
        assert res.count("added") == len(chain_files), res.outcomes
        assert_same_store(url, reference_store)
    finally:
        for p in reversed(procs):
            with _suppress():
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _committed_snapshots_are_whole(url: str) -> None:
    store = Store.open(url)
    ids = store.committed_ids()
    if not ids:
        return
    c = store.read_table("contracts", columns=["snapshot_id"]).to_pandas()
    s = store.read_table("surface_params", columns=["snapshot_id"]).to_pandas()
    assert set(c["snapshot_id"]) == ids
    assert set(s["snapshot_id"]) <= ids
    m = store.read_metrics()
    assert len(m) == len(ids)


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun(chain_files: list[str], reference_store: str, tmp_path: Path) -> None:
    """Kill a 2-worker ingest (its whole process group) with SIGKILL at random moments, rerun it each time, then
    let it finish: the store is exactly the uninterrupted run's, and never shows a partial snapshot."""
    url = str(tmp_path / "killed.store")
    code = ("import sys; from volsurf.history.ingest import ingest; "
            f"ingest(sys.argv[1:], {url!r}, jobs=2, progress=False)")
    rng = random.Random(20260930)
    kills = 0
    for delay in (rng.uniform(0.5, 2.0), rng.uniform(2.0, 4.0), rng.uniform(3.0, 6.0)):
        p = subprocess.Popen([sys.executable, "-c", code, *chain_files], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            kills += 1
        p.wait()
        time.sleep(0.2)  # the killed group's processes are gone
        if Path(url).exists():
            _committed_snapshots_are_whole(url)
    assert kills >= 1
    res = ingest(chain_files, url, jobs=2, progress=False)
    assert res.count("failed") == 0
    assert_same_store(url, reference_store)
    assert not list(Path(url).rglob("*.tmp"))


@pytest.mark.slow
def test_concurrent_ingests_into_one_store(chain_files: list[str], reference_store: str, tmp_path: Path) -> None:
    """Two ingests with overlapping files into one store at the same time: no corruption, nothing twice."""
    url = str(tmp_path / "shared.store")
    code = "import sys; from volsurf.history.ingest import ingest; ingest(sys.argv[2:], sys.argv[1], jobs=1)"
    procs = [subprocess.Popen([sys.executable, "-c", code, url, *files], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
             for files in (chain_files[:3], chain_files[1:][::-1])]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    res = ingest(chain_files, url, jobs=1, progress=False)
    assert res.count("added") == 0
    assert_same_store(url, reference_store)


def test_as_of_for_a_file_without_time(tmp_path: Path) -> None:
    """A Cboe JSON payload saved without its envelope carries no as-of time: it fails (recorded, with the fix in
    the reason) until ingested on its own with ``as_of``; the as-of time becomes the snapshot's quote time, a
    second run with the same time is recognised by content, and ``as_of`` refuses several files or a time it
    cannot read before anything is written."""
    from conftest import SHARED

    from volsurf.errors import ParameterError

    envelope = SHARED / "real_feeds" / "cboe_delayed_json" / "aapl_2026-08-07_envelope_excerpt.json"
    if not envelope.exists():
        pytest.skip("needs ../shared/real_feeds beside the checkout (the real data folder); not present")
    data_only = tmp_path / "aapl_data_only.json"
    data_only.write_text(json.dumps(json.loads(envelope.read_text(encoding="utf-8"))["data"]), encoding="utf-8")
    url = str(tmp_path / "s")
    res = ingest([str(data_only)], url, jobs=1, progress=False)
    assert res.count("failed") == 1 and "as-of" in (res.outcomes[0].reason or "")
    res = ingest([str(data_only)], url, jobs=1, progress=False, as_of="2026-08-07 15:30")
    assert res.count("added") == 1 and res.count("failed") == 0
    quote_time = Store.open(url).read_metrics(columns=["quote_time"])["quote_time"].iloc[0]
    assert str(quote_time).startswith("2026-08-07T15:30:00-04:00")
    again = ingest([str(data_only)], url, jobs=1, progress=False, as_of="2026-08-07 15:30")
    assert again.count("present") == 1 and again.count("added") == 0
    with pytest.raises(ParameterError, match="one file"):
        ingest([str(data_only), str(SPY_FILES[0])], str(tmp_path / "t"), jobs=1, progress=False, as_of="2026-08-07")
    with pytest.raises(ParameterError, match="cannot read the as-of time"):
        ingest([str(data_only)], str(tmp_path / "u"), jobs=1, progress=False, as_of="someday")
    assert not (tmp_path / "t").exists() and not (tmp_path / "u").exists()


@pytest.mark.parametrize("engine", ["local", pytest.param("dask", marks=[pytest.mark.slow,
                                                                        pytest.mark.filterwarnings(*DASK_WARNINGS)])])
def test_multi_snapshot_files_split_among_workers(tmp_path: Path, engine: str) -> None:
    """With fewer than two files per worker, a DataShop or OptionsDX file with several quote times is split into
    parts (every n-th snapshot each), and the store equals the one an in-process run writes; a file that cannot be
    loaded is recorded once, not once per part."""
    from store_helpers import ROOT

    from volsurf.history.ingest import _tasks

    data = ROOT / "tests" / "data"
    bad = tmp_path / "bad_optionsdx.txt"  # detected as OptionsDX, two quote times, but no quote columns
    bad.write_text("[QUOTE_UNIXTIME], [UNDERLYING_LAST], [EXPIRE_DATE]\n1672779600, 3824.1, 2023-01-06\n"
                   "1672866000, 3852.9, 2023-01-06\n", encoding="utf-8")
    files = [str(data / "datashop_spx_small.csv"), str(data / "spx_eod_202301_small.txt"), str(bad)]
    tasks = _tasks([(f, f"digest{i}") for i, f in enumerate(files)], 2)
    assert [(t[0], t[2], t[3]) for t in tasks] == [(f, i, 2) for f in files for i in range(2)]
    assert _tasks([(f, "d") for f in files * 2], 2) == [(f, "d", 0, 1) for f in files * 2]  # enough files
    ref = ingest(files, str(tmp_path / "ref"), jobs=1, progress=False)
    split = ingest(files, str(tmp_path / "split"), engine=engine, jobs=2, progress=False)
    assert ref.count("added") == split.count("added") == 4
    assert ref.count("failed") == split.count("failed") == 1
    assert_same_store(str(tmp_path / "split"), str(tmp_path / "ref"))
