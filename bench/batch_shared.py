"""`batch.py --contract shared`: penstock against the shared hand-written DuckDB SQL orders job.

The reference jobs live in `shared/bench/` beside the repository (`../shared` from the repo
root); they are run from there, never copied here:
  * gen_orders.py       writes the orders CSV and `<csv>.expected.json` (exact counts and sums);
  * expert_duckdb.py    the full job hand-written in DuckDB SQL (the limit);
  * raw_duckdb_load.py  CREATE TABLE AS SELECT * FROM read_csv, no checks (the floor).
penstock runs a one-object project whose contract is contract.md's 12 checks (`SHARED_PROJECT`).

Before any timing penstock's result is checked against expected.json: rows loaded, quarantined,
superseded duplicates, and the final table's sum of amount (cents) and of quantity. Then the
three jobs run alternately, each in a fresh child process (peak RSS from os.wait4), and the
medians, the speed ratios (reference seconds / penstock seconds) and peak RSS are printed.
Each job's own `seconds` (connect → job → close, as the reference scripts report it) is the
headline; the child's wall time (interpreter start and imports included) is printed too.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"

# contract.md's checks, numbered as there. Where penstock's strict types differ from the
# expert job's try_cast semantics (none of these differences occurs in gen_orders.py's data):
#  * 5  amount "at most 2 decimals" is decimal(14,2): penstock refuses `1.234` (try_cast rounds
#       it to 1.23 and accepts it); penstock also ignores whitespace around typed values.
#  * 4  order_ts "YYYY-MM-DDTHH:MM:SS" is `timestamp` with `max: now`: penstock's timestamp also
#       accepts a space for T, HH:MM without seconds, fractions and a bare date (the expert's
#       strptime refuses those); both refuse impossible dates such as Feb 30.
#  * 10 quantity is penstock `integer`: `7.00` is 7, `7.5` fails (no rounding).
#  * 11 discount is `double`: no nan/inf, no hex (DuckDB's try_cast accepts 'inf'/'nan').
#  * updated_at is not checked by the expert (try_strptime, NULL allowed); here it is a
#       `timestamp` too, so an unparseable updated_at would be quarantined by penstock only.
#  * the expert's quarantine keeps all reasons per row; penstock's too (its own reason names).
SHARED_PROJECT = """\
name: orders_anchor
warehouse: duckdb:///warehouse.duckdb
lake: ./lake
metadata: sqlite:///.penstock/metadata.db
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    format: csv
    key: [order_id]            # 12: unique(order_id) ...
    order_by: updated_at       # 12: ... the latest updated_at wins
    load: merge                # upsert; an incoming row replaces a stored one only when newer
    columns:
      order_id:    {type: bigint, required: true}                                  # 1
      customer_id: {type: bigint, required: true}                                  # 2
      order_ts:    {type: timestamp, required: true, max: now}                     # 3, 4
      status:      {type: text, required: true,
                    in: [placed, shipped, delivered, cancelled, returned]}         # 6
      amount:      {type: "decimal(14,2)", required: true, min: 0}                 # 5
      currency:    {type: text, required: true, in: [USD, EUR, GBP]}               # 7
      country:     {type: text, required: true, pattern: "^[A-Z]{2}$"}             # 8
      email:       {type: text, required: true,
                    pattern: "^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\\\.[A-Za-z]{2,}$"}    # 9
      quantity:    {type: integer, required: true, min: 1, max: 1000}              # 10
      discount:    {type: double, required: true, min: 0, max: 1}                  # 11
      updated_at:  {type: timestamp}
"""

# A child's lines that find penstock's orders table (`conn` open on the warehouse) and take its
# fingerprint: `table`, `rows`, `cents` (sum of amount in cents), `quantity` (its sum).
ORDERS_FINGERPRINT = """
(table,) = conn.execute(
    "SELECT table_schema || '.' || table_name FROM information_schema.tables "
    "WHERE table_name = 'orders' AND table_schema NOT LIKE '%quarantine%'"
).fetchone()
rows, cents, quantity = conn.execute(
    f"SELECT count(*), sum((amount * 100)::HUGEINT), sum(quantity) FROM {table}"
).fetchone()
"""

PENSTOCK_CHILD = (
    """
import json, sys, time
import duckdb  # imported before the clock starts, as in the reference scripts
import penstock
imports = 0.0
if len(sys.argv) > 2:  # profile the data path: the engine's lazy imports first, timed apart
    started = time.perf_counter()
    import penstock.engine.runner
    imports = time.perf_counter() - started
started = time.perf_counter()
if len(sys.argv) > 2:
    import cProfile, pstats
    profiler = cProfile.Profile()
    result = profiler.runcall(penstock.run, sys.argv[1])
    elapsed = time.perf_counter() - started
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("cumulative").print_stats(int(sys.argv[2]))
else:
    result = penstock.run(sys.argv[1])
    elapsed = time.perf_counter() - started
(load,) = result.loads()
conn = duckdb.connect(sys.argv[1] + "/warehouse.duckdb", read_only=True)
"""
    + ORDERS_FINGERPRINT
    + """conn.close()
print(json.dumps({"seconds": elapsed, "imports": imports, "status": result.status,
                  "rows_in": load.rows_in,
                  "loaded": load.rows_loaded, "quarantined": load.rows_quarantined,
                  "duplicates": load.rows_duplicate, "reasons": load.reason_counts,
                  "table": table, "rows": rows, "sum_amount_cents": int(cents),
                  "sum_quantity": int(quantity)}))
"""
)


def shared_bench(given: Path | None) -> Path:
    folder = SHARED_BENCH if given is None else given.resolve()
    missing = [
        name
        for name in ("gen_orders.py", "expert_duckdb.py", "raw_duckdb_load.py")
        if not (folder / name).is_file()
    ]
    if missing:
        raise SystemExit(
            f"--contract shared needs the shared reference jobs in {folder} "
            "(shared/ checked out beside the repository, i.e. ../shared/bench from its root, "
            f"or --shared DIR); missing there: {', '.join(missing)}"
        )
    return folder


def run_child(argv: list[str]) -> tuple[dict[str, object], float, int]:
    """Run `argv` in a fresh process; its last JSON line, wall seconds and peak RSS (bytes).
    stderr goes to a file (a profile may be long: a pipe could fill up and block the child)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read().decode()
    if code != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed ({code}):\n{err}")
    result: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    if err:
        result["stderr"] = err
    return result, wall, usage.ru_maxrss * 1024


def fresh(root: Path) -> None:
    """Remove a previous penstock run's lake, metadata and warehouse: each run starts empty."""
    for name in ("lake", ".penstock", "warehouse.duckdb", "warehouse.duckdb.wal"):
        target = root / name
        if target.is_dir():
            shutil.rmtree(target)
        target.unlink(missing_ok=True)


def differences(got: dict[str, object], expected: dict[str, object]) -> list[str]:
    return [
        f"  {name}: expected {expected[name]:,}, got {got[name]:,}"  # type: ignore[str-format]
        for name in expected
        if got.get(name) != expected[name]
    ]


def check_penstock(ours: dict[str, object], expected: dict[str, object]) -> None:
    final = expected["final_table"]
    assert isinstance(final, dict)
    want = {
        "rows_in": expected["rows_total"],
        "quarantined": expected["rows_failing_value_checks"],
        "duplicates": expected["duplicate_rows_superseded"],
        "loaded": final["rows"],
        "rows": final["rows"],
        "sum_amount_cents": final["sum_amount_cents"],
        "sum_quantity": final["sum_quantity"],
    }
    wrong = differences(ours, want)
    if ours["status"] != "success" or wrong:
        raise SystemExit(
            "penstock's result differs from expected.json (its time would mean nothing):\n"
            + "\n".join(wrong)
            + f"\n  status {ours['status']}, reasons {ours['reasons']}"
        )


def check_expert(expert: dict[str, object], expected: dict[str, object]) -> None:
    final = expected["final_table"]
    fingerprint = expert["orders_fingerprint"]
    assert isinstance(final, dict) and isinstance(fingerprint, dict)
    got = {**fingerprint, "rejected": expert["rows_rejected"]}
    want = {
        "rows": final["rows"],
        "sum_amount_cents": final["sum_amount_cents"],
        "sum_quantity": final["sum_quantity"],
        "rejected": expected["rows_failing_value_checks"],
    }
    wrong = differences(got, want)
    if wrong:
        raise SystemExit("expert_duckdb.py differs from expected.json:\n" + "\n".join(wrong))


def run_shared(rows: int, seed: int, repeat: int, profile: bool, shared: Path | None) -> None:
    bench = shared_bench(shared)
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="penstock-anchor-") as tmp:
        root = Path(tmp)
        csv = root / "landing" / "orders" / "orders.csv"
        csv.parent.mkdir(parents=True)
        started = time.perf_counter()
        subprocess.run(
            [python, str(bench / "gen_orders.py"), str(csv), str(rows), "--seed", str(seed)],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        expected = json.loads(csv.with_name(csv.name + ".expected.json").read_text())
        print(
            f"gen_orders.py: {rows:,} rows ({csv.stat().st_size / 1e6:,.0f} MB, seed {seed}) in "
            f"{time.perf_counter() - started:.1f} s; expected: "
            f"{expected['rows_failing_value_checks']:,} quarantined, "
            f"{expected['duplicate_rows_superseded']:,} duplicates superseded, "
            f"{expected['final_table']['rows']:,} rows in orders"
        )
        (root / "penstock.yml").write_text(SHARED_PROJECT)
        raw_db, expert_db = root / "raw.duckdb", root / "expert.duckdb"
        jobs = {
            "raw": [python, str(bench / "raw_duckdb_load.py"), str(csv), "--db", str(raw_db)],
            "expert": [
                python, str(bench / "expert_duckdb.py"), str(csv), "--db", str(expert_db),
                "--runs", "1",
            ],
            "penstock": [python, "-c", PENSTOCK_CHILD, str(root)],
        }  # fmt: skip
        samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in jobs}
        ours: dict[str, object] = {}
        for attempt in range(1, repeat + 1):
            for name, argv in jobs.items():
                fresh(root)
                result, wall, rss = run_child(argv)
                if name == "penstock":
                    check_penstock(result, expected)
                    ours = result
                elif name == "expert":
                    check_expert(result, expected)
                samples[name].append((float(result["seconds"]), wall, rss))  # type: ignore[arg-type]
            line = ", ".join(
                f"{n} {s[-1][0]:.2f} s ({s[-1][1]:.2f} s wall)" for n, s in samples.items()
            )
            ratio = samples["expert"][-1][0] / samples["penstock"][-1][0]
            print(f"  run {attempt}: {line}; penstock vs expert {ratio:.2f}x")
        profile_text = ""
        if profile:
            fresh(root)
            result, _, _ = run_child([*jobs["penstock"], "45"])
            check_penstock(result, expected)
            profile_text = (
                f"engine imports before the clock: {result['imports']:.2f} s; penstock.run "
                f"{result['seconds']:.2f} s under cProfile\n{result.get('stderr', '')}"
            )
        fresh(root)

    print(
        f"penstock correct: {ours['loaded']:,} loaded into {ours['table']}, "
        f"{ours['quarantined']:,} quarantined, {ours['duplicates']:,} duplicates superseded, "
        f"sum(amount) {ours['sum_amount_cents']:,} cents, sum(quantity) {ours['sum_quantity']:,} "
        "= expected.json; expert_duckdb.py likewise"
    )
    print(f"median of {repeat}{'':<26}{'job s':>8}{'wall s':>8}{'rows/s':>12}{'peak RSS':>11}")
    medians = {}
    labels = {
        "raw": "raw_duckdb_load.py (no checks)",
        "expert": "expert_duckdb.py (hand-written SQL)",
        "penstock": "penstock run (12-check contract)",
    }
    for name, runs in samples.items():
        job = statistics.median(s for s, _, _ in runs)
        wall = statistics.median(w for _, w, _ in runs)
        rss = max(r for _, _, r in runs)
        medians[name] = (job, wall)
        spread = f"  (samples {', '.join(f'{s:.2f}' for s, _, _ in runs)})"
        print(
            f"{labels[name]:<37}{job:>8.2f}{wall:>8.2f}{rows / job:>12,.0f}"
            f"{rss / 2**20:>8,.0f} MB{spread}"
        )
    ours_job, ours_wall = medians["penstock"]
    for name in ("expert", "raw"):
        job, wall = medians[name]
        print(
            f"speed penstock vs {name}: {job / ours_job:.2f}x (job seconds), "
            f"{wall / ours_wall:.2f}x (whole process)"
        )
    if profile_text:
        print(
            "cProfile of one penstock.run, cumulative "
            "(DuckDB's time is the tottime of the function issuing the SQL):"
        )
        print(profile_text)
