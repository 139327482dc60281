"""Project files written by `penstock init` (plain and `--demo`)."""

from __future__ import annotations

import json

DEMO_PROJECT = """\
# penstock demo project: `penstock run`, then `penstock status` and `penstock quarantine orders`.
name: shop_demo
warehouse: duckdb:///warehouse.duckdb
lake: ./lake
metadata: sqlite:///.penstock/metadata.db
include: [objects/*.yml]
sources:
  landing: {kind: files, path: ./landing, owner: "demo <demo@example.com>"}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    format: csv
    key: [order_id]
    order_by: updated_at
    load: merge
    group: raw
    columns:
      order_id:    {type: bigint, required: true}
      customer_id: {type: bigint, required: true}
      order_ts:    {type: timestamp, required: true, max: now}
      status:      {type: text, in: [placed, shipped, delivered, cancelled, returned]}
      amount:      {type: "decimal(12,2)", min: 0}
      country:     {type: text, pattern: "^[A-Z]{2}$"}
      email:       {type: text, pattern: "^[^@ ]+@[^@ ]+[.][^@ ]+$"}
      quantity:    {type: integer, min: 1, max: 1000}
      updated_at:  {type: timestamp, required: true}
    checks:
      - {name: updated_after_order, expression: "updated_at >= order_ts"}
      - {row_count: {min: 1}}
"""

DEMO_CUSTOMERS = """\
# Included by penstock.yml (include: [objects/*.yml]).
objects:
  customers:
    source: landing
    files: "customers/*.jsonl"
    format: jsonl
    key: [customer_id]
    order_by: updated_at
    load: scd2
    group: raw
    columns:
      customer_id: {type: bigint, required: true}
      name:        {type: text, required: true}
      email:       {type: text, pattern: "^[^@ ]+@[^@ ]+[.][^@ ]+$"}
      country:     {type: text, pattern: "^[A-Z]{2}$"}
      segment:     {type: text, in: [consumer, business]}
      signup_date: {type: date, max: now}
      updated_at:  {type: timestamp, required: true}
"""

# a consume model (models/*.sql): what it reads comes from its SQL, no ref()
DEMO_MODEL_PATH = "models/revenue_by_country.sql"
DEMO_MODEL = """\
-- materialized: table
-- checks:
--   - {name: revenue_not_negative, expression: "revenue >= 0"}
--   - {row_count: {min: 1}}

-- Revenue per customer country and segment: the orders (not cancelled) with their
-- customers' current versions. `penstock lineage revenue_by_country.revenue` traces it.
SELECT c.country,
       c.segment,
       count(*) AS orders,
       sum(o.amount) AS revenue
FROM orders o
JOIN customers c ON c.customer_id = o.customer_id AND c._is_current
WHERE o.status <> 'cancelled'
GROUP BY c.country, c.segment
"""

_EMPTY_PROJECT = """\
# penstock project. Declare sources and objects; `penstock check` validates this file,
# `penstock run` extracts, validates, quarantines and loads every object.
name: {name}
warehouse: duckdb:///warehouse.duckdb       # a DuckDB file (?memory_limit=4GB&threads=2)
lake: ./lake                                # a local directory: the stage zone
metadata: sqlite:///.penstock/metadata.db   # or postgresql://user@host/db
# include: [objects/*.yml]                  # more objects/sources, merged in

sources:
  landing: {{kind: files, path: ./landing}}

objects:
  # An example: put CSV files with the header `event_id,occurred_at` into landing/events/.
  events:
    source: landing
    files: "events/*.csv"
    format: csv
    key: [event_id]
    order_by: occurred_at       # on duplicate keys within a batch the greatest wins
    load: append                # append | merge | scd2 | replace
    group: raw
    columns:
      event_id:    {{type: bigint, required: true}}
      occurred_at: {{type: timestamp, required: true, max: now}}
"""


def empty_project(name: str) -> str:
    """The starter penstock.yml; `name` is written as a quoted YAML (JSON) string."""
    return _EMPTY_PROJECT.format(name=json.dumps(name, ensure_ascii=False))
