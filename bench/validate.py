"""Validation alone: penstock against pandera (polars backend) and Great Expectations (pandas).

    .venv-bench/bin/python bench/validate.py --rows 2000000 --repeat 3

The same orders CSV (`../shared/bench/gen_orders.py`) is validated with the same checks
(contract.md's 12: not-null order_id, customer_id and order_ts; order_ts a timestamp not in
the future; amount >= 0 with at most 2 decimals; status and currency in their sets; country
and email patterns; quantity 1..1000; discount 0..1; unique order_id) by each tool, each in a
fresh child process whose whole life is timed (interpreter start, imports, reading the CSV,
parsing, checking, collecting row-level results). The tools run alternately, `--repeat` times;
the script prints every time, the medians, the ratios, and whether each tool found exactly the
defects the generator planted (its `expected.json`: the value-failing rows, and the ids that
repeat).

What each side does:
  * penstock validate: the validation pass of a run, as a rebuild (or a run loading a batch
    staged earlier) makes it: on the file's staged batch (staged once before the rounds,
    untimed; a CSV file that parses cleanly is staged as its own bytes, so the input is the
    same CSV the others read), DuckDB reads it, types every value strictly and checks every
    rule in one SQL pass collecting all the reasons of each row (`quality.validate`), puts the
    failing rows in the quarantine table with their reasons and record numbers, and resolves
    repeated keys (the latest `updated_at` wins). It stops where the run would load. Why this
    and not `penstock check` (a sample of the file) or the whole run (which also copies and
    hashes the file into the lake, merges into the warehouse and records the metadata): it is
    what a validation library does, rows in and a verdict per row with its reasons out. (A run
    staging a new CSV file shares this read with staging: there the two are one pass.)
  * penstock run (context, `--no-run` leaves it out): the whole job of `penstock.run`, adding
    the merge into the warehouse table, the ledger row, quarantine files and metadata.
  * pandera: `pl.read_csv` (every column text), then a `pandera.polars` DataFrameSchema with
    the checks as polars expressions (parsing inside the checks), validated `lazy=True`; the
    failure cases (one per failing value, with its row index) are counted per row.
  * Great Expectations: `pd.read_csv` (text), typed copies of order_ts, amount, quantity and
    discount for the range checks (pandas, vectorised), then an ephemeral GX 1.x context
    validating an ExpectationSuite on the DataFrame with `result_format: COMPLETE` (every
    failing row's index, the row-level result the others give).

Installs: pandera, polars, great-expectations and pandas are the `bench` extra; GX pulls ~330
MB (altair, scipy, pandas, marshmallow...), so they go in a separate venv for this script:
    python3 -m venv .venv-bench && .venv-bench/bin/pip install -e '.[bench]'
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from batch_shared import SHARED_PROJECT, fresh, run_child, shared_bench
from bytecode import allow_bytecode

PENSTOCK_VALIDATE = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from penstock.catalog import load_project
from penstock.lake import Lake
from penstock.quality.validate import validate_chunk
from penstock.warehouse import connect_warehouse

project = load_project(Path(sys.argv[1]))
obj = project.objects["orders"]
warehouse = connect_warehouse(project)  # the run's connection: its settings, a UTC session
conn = warehouse.conn
batches = Lake(project.lake_path).batches("orders")  # the staged batch: the CSV's bytes
chunk = validate_chunk(conn, obj, batches)
(v,) = chunk.results
# the rows held back, each with its reasons (check 12: rows_duplicate, the rows superseded)
held = f"SELECT count(*) FROM {chunk.quarantine_table} WHERE NOT _loaded"
failing = conn.execute(held).fetchone()[0]
warehouse.close()
print(json.dumps({"seconds": time.perf_counter() - started, "rows": v.rows_in,
                  "failing_rows": failing, "duplicate_ids": v.rows_duplicate,
                  "duplicate_rows": None, "format": batches[0].manifest.data_file,
                  "by_check": v.reason_counts}))
"""

PENSTOCK_RUN = """
import json, sys, time
started = time.perf_counter()
import penstock
result = penstock.run(sys.argv[1])
(load,) = result.loads()
print(json.dumps({"seconds": time.perf_counter() - started, "rows": load.rows_in,
                  "failing_rows": load.rows_quarantined, "duplicate_ids": load.rows_duplicate,
                  "duplicate_rows": None, "by_check": load.reason_counts}))
"""

PANDERA = """
import json, sys, time
started = time.perf_counter()
from datetime import UTC, datetime
import polars as pl
import pandera.polars as pa

EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$"
now = datetime.now(UTC).replace(tzinfo=None)

def parses_int(data):
    return data.lazyframe.select(pl.col(data.key).str.to_integer(strict=False).is_not_null())

def ts_ok(data):
    parsed = pl.col(data.key).str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S", strict=False)
    return data.lazyframe.select(parsed.is_not_null() & (parsed <= now))

def money_ok(data):
    col = pl.col(data.key)
    return data.lazyframe.select(
        col.str.contains(r"^-?\\d+(\\.\\d{1,2})?$") & (col.cast(pl.Float64, strict=False) >= 0)
    )

def int_between(lo, hi):
    def check(data):
        v = pl.col(data.key).str.to_integer(strict=False)
        return data.lazyframe.select(v.is_between(lo, hi).fill_null(False))
    return check

def float_between(lo, hi):
    def check(data):
        v = pl.col(data.key).cast(pl.Float64, strict=False)
        return data.lazyframe.select(v.is_between(lo, hi).fill_null(False))
    return check

def text(*checks, unique=False):
    return pa.Column(pl.Utf8, nullable=False, unique=unique, checks=list(checks))

schema = pa.DataFrameSchema({
    "order_id": text(pa.Check(parses_int, name="order_id_int"), unique=True),     # 1, 12
    "customer_id": text(pa.Check(parses_int, name="customer_id_int")),            # 2
    "order_ts": text(pa.Check(ts_ok, name="order_ts_not_future")),                # 3, 4
    "status": text(pa.Check.isin(["placed", "shipped", "delivered", "cancelled", "returned"])),
    "amount": text(pa.Check(money_ok, name="amount_ge_0")),                       # 5
    "currency": text(pa.Check.isin(["USD", "EUR", "GBP"])),                       # 7
    "country": text(pa.Check.str_matches(r"^[A-Z]{2}$")),                         # 8
    "email": text(pa.Check.str_matches(EMAIL)),                                   # 9
    "quantity": text(pa.Check(int_between(1, 1000), name="quantity_1_1000")),     # 10
    "discount": text(pa.Check(float_between(0, 1), name="discount_0_1")),         # 11
    "updated_at": pa.Column(pl.Utf8, nullable=True),
})
df = pl.read_csv(sys.argv[1], infer_schema=False)
try:
    schema.validate(df, lazy=True)
    cases = pl.DataFrame({"check": [], "column": [], "index": [], "failure_case": []})
except pa.errors.SchemaErrors as exc:
    cases = exc.failure_cases
unique = pl.col("check").cast(pl.Utf8).str.contains("uniqueness")
failing = cases.filter(~unique & pl.col("index").is_not_null())["index"].n_unique()
dup = cases.filter(unique & pl.col("failure_case").is_not_null())  # NULL ids: not_nullable
by_check = {f"{c}:{k}": n for c, k, n in cases.group_by("column", "check").len().iter_rows()}
print(json.dumps({"seconds": time.perf_counter() - started, "rows": df.height,
                  "failing_rows": failing, "duplicate_ids": dup["failure_case"].n_unique(),
                  "duplicate_rows": dup["index"].n_unique(), "by_check": by_check}))
"""

GREAT_EXPECTATIONS = """
import json, sys, time
started = time.perf_counter()
import warnings
warnings.filterwarnings("ignore")
from datetime import UTC, datetime
import pandas as pd
import great_expectations as gx
import great_expectations.expectations as gxe

EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$"
INT = r"^-?\\d+$"
now = datetime.now(UTC).replace(tzinfo=None)
df = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False, na_values=[""])
# typed copies for the range checks (a value that does not parse is NaN there: the format
# expectations report it)
df["order_ts_t"] = pd.to_datetime(df["order_ts"], format="%Y-%m-%dT%H:%M:%S", errors="coerce")
for col in ("amount", "quantity", "discount"):
    df[col + "_n"] = pd.to_numeric(df[col], errors="coerce")
value_checks = [
    gxe.ExpectColumnValuesToNotBeNull(column="order_id"),                               # 1
    gxe.ExpectColumnValuesToMatchRegex(column="order_id", regex=INT),
    gxe.ExpectColumnValuesToNotBeNull(column="customer_id"),                            # 2
    gxe.ExpectColumnValuesToMatchRegex(column="customer_id", regex=INT),
    gxe.ExpectColumnValuesToNotBeNull(column="order_ts"),                               # 3
    gxe.ExpectColumnValuesToMatchStrftimeFormat(                                        # 4
        column="order_ts", strftime_format="%Y-%m-%dT%H:%M:%S"),
    gxe.ExpectColumnValuesToBeBetween(column="order_ts_t", max_value=now),
    gxe.ExpectColumnValuesToMatchRegex(column="amount", regex=r"^-?\\d+(\\.\\d{1,2})?$"),  # 5
    gxe.ExpectColumnValuesToBeBetween(column="amount_n", min_value=0),
    gxe.ExpectColumnValuesToBeInSet(                                                    # 6
        column="status", value_set=["placed", "shipped", "delivered", "cancelled", "returned"]),
    gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=["USD", "EUR", "GBP"]),  # 7
    gxe.ExpectColumnValuesToMatchRegex(column="country", regex=r"^[A-Z]{2}$"),          # 8
    gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL),                    # 9
    gxe.ExpectColumnValuesToMatchRegex(column="quantity", regex=INT),                   # 10
    gxe.ExpectColumnValuesToBeBetween(column="quantity_n", min_value=1, max_value=1000),
    gxe.ExpectColumnValuesToMatchRegex(                                                 # 11
        column="discount", regex=r"^-?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?$"),
    gxe.ExpectColumnValuesToBeBetween(column="discount_n", min_value=0, max_value=1),
]
for col in ("status", "currency", "country", "email", "amount", "quantity", "discount"):
    value_checks.append(gxe.ExpectColumnValuesToNotBeNull(column=col))
unique = gxe.ExpectColumnValuesToBeUnique(column="order_id")                            # 12
context = gx.get_context(mode="ephemeral")
batch = (
    context.data_sources.add_pandas("pandas")
    .add_dataframe_asset("orders")
    .add_batch_definition_whole_dataframe("all")
    .get_batch(batch_parameters={"dataframe": df})
)
suite = context.suites.add(gx.ExpectationSuite(name="orders", expectations=[*value_checks, unique]))
result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
failing, dup_rows, by_check = set(), set(), {}
for r in result.results:
    config = r.expectation_config
    by_check[config.type + ":" + config.kwargs["column"]] = r.result.get("unexpected_count", 0)
    rows = r.result.get("unexpected_index_list") or []
    (dup_rows if config.type == "expect_column_values_to_be_unique" else failing).update(rows)
dup_ids = df.loc[sorted(dup_rows), "order_id"].nunique() if dup_rows else 0
print(json.dumps({"seconds": time.perf_counter() - started, "rows": len(df),
                  "failing_rows": len(failing), "duplicate_ids": int(dup_ids),
                  "duplicate_rows": len(dup_rows), "by_check": by_check}))
"""

LABELS = {
    "penstock": "penstock validate (the run's validation pass)",
    "pandera": "pandera 0.x, polars backend",
    "gx": "Great Expectations 1.x, pandas",
    "run": "penstock run (whole job, for context)",
}


def found(name: str, got: dict[str, object], expected: dict[str, object]) -> str:
    """Whether a tool found exactly the planted defects: 'yes', or what differs."""
    want = {
        "failing_rows": expected["rows_failing_value_checks"],
        "duplicate_ids": expected["order_ids_with_duplicates"],
    }
    if got.get("duplicate_rows") is not None:
        want["duplicate_rows"] = expected["rows_involved_in_duplicates"]
    wrong = [f"{k} {got.get(k)} (expected {v})" for k, v in want.items() if got.get(k) != v]
    return "yes" if not wrong else "NO: " + ", ".join(wrong)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-run", action="store_true", help="leave out the whole penstock run")
    parser.add_argument("--shared", type=Path, help="the shared bench folder (gen_orders.py)")
    args = parser.parse_args()
    allow_bytecode()
    shared = args.shared
    if shared is None and os.environ.get("PENSTOCK_SHARED"):
        shared = Path(os.environ["PENSTOCK_SHARED"]) / "bench"
    bench = shared_bench(shared)
    python = sys.executable
    load = os.getloadavg()
    cores = os.cpu_count()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({cores} cores)")
    with tempfile.TemporaryDirectory(prefix="penstock-validate-") as tmp:
        root = Path(tmp)
        csv = root / "landing" / "orders" / "orders.csv"
        csv.parent.mkdir(parents=True)
        generate = [python, str(bench / "gen_orders.py"), str(csv), str(args.rows)]
        subprocess.run(
            [*generate, "--seed", str(args.seed)],
            check=True,
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        expected = json.loads(csv.with_name(csv.name + ".expected.json").read_text())
        print(
            f"gen_orders.py: {args.rows:,} rows ({csv.stat().st_size / 1e6:,.0f} MB); planted: "
            f"{expected['rows_failing_value_checks']:,} value-failing rows, "
            f"{expected['order_ids_with_duplicates']:,} repeated ids "
            f"({expected['rows_involved_in_duplicates']:,} rows)"
        )
        (root / "penstock.yml").write_text(SHARED_PROJECT)
        jobs = {
            "penstock": [python, "-c", PENSTOCK_VALIDATE, str(root)],
            "pandera": [python, "-c", PANDERA, str(csv)],
            "gx": [python, "-c", GREAT_EXPECTATIONS, str(csv)],
        }
        if not args.no_run:
            jobs["run"] = [python, "-c", PENSTOCK_RUN, str(root)]
        walls: dict[str, list[float]] = {name: [] for name in jobs}
        inside: dict[str, list[float]] = {name: [] for name in jobs}  # the child's own clock
        results: dict[str, dict[str, object]] = {}
        # stage the file once (untimed): penstock validates the staged batch, as a run's
        # validation pass (and a rebuild) reads it; the run side stages again each time
        fresh(root)
        run_child([python, "-c", PENSTOCK_RUN, str(root)])
        for attempt in range(1, args.repeat + 1):
            for name, argv in jobs.items():
                if name == "run":
                    fresh(root)
                else:  # the stage zone stays, the warehouse goes
                    for leftover in ("warehouse.duckdb", "warehouse.duckdb.wal"):
                        (root / leftover).unlink(missing_ok=True)
                result, wall, _ = run_child(argv)
                results[name] = result
                walls[name].append(wall)
                inside[name].append(float(result["seconds"]))  # type: ignore[arg-type]
            times = ", ".join(f"{n} {w[-1]:.2f} s" for n, w in walls.items())
            print(f"  round {attempt}: {times}", flush=True)
        fresh(root)
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    head = f"whole process, median of {args.repeat}"
    print(f"\n{head:<50}{'seconds':>9}{'in child':>10}  found the planted defects?")
    medians = {name: statistics.median(w) for name, w in walls.items()}
    for name, seconds in medians.items():
        samples = ", ".join(f"{w:.2f}" for w in walls[name])
        print(
            f"{LABELS[name]:<50}{seconds:>9.2f}{statistics.median(inside[name]):>10.2f}  "
            f"{found(name, results[name], expected)}"
            f"  (samples {samples})"
        )
    ours = medians["penstock"]
    print(f"\npandera / penstock validate: {medians['pandera'] / ours:.2f}x")
    print(f"GX / penstock validate: {medians['gx'] / ours:.2f}x")
    if "run" in medians:
        print(
            f"pandera / penstock run: {medians['pandera'] / medians['run']:.2f}x; "
            f"GX / penstock run: {medians['gx'] / medians['run']:.2f}x"
        )
    print("\nrows per check (last round):")
    for name, result in results.items():
        print(f"  {name}: {json.dumps(result.get('by_check'), sort_keys=True)}")


if __name__ == "__main__":
    main()
