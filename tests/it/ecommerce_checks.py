"""Independent checks of the e-commerce pipeline's tables with pyarrow (not Medallion's reader).

Usage: python3 ecommerce_checks.py LAKEHOUSE; prints one JSON object with the findings.
"""
import json
import os
import re
import sys
from collections import defaultdict
from decimal import Decimal, ROUND_HALF_UP

import deltalake


def rows(lake, table):
    return deltalake.DeltaTable(os.path.join(lake, table)).to_pyarrow_table().to_pylist()


def norm_id(text):
    if text is None:
        return None
    t = text.strip()
    m = re.fullmatch(r"(-?\d+)(\.0+)?", t)
    return int(m.group(1)) if m else None


def main(lake):
    out = {}
    # Gold revenue per day, recomputed from silver: completed orders, net = q * p * (1 - d), cents.
    orders = {o["order_id"]: o for o in rows(lake, "silver/orders")}
    per_day = defaultdict(Decimal)
    per_customer = defaultdict(Decimal)
    for i in rows(lake, "silver/order_items"):
        o = orders.get(i["order_id"])
        if o is None or o["status"] != "completed":
            continue
        net = (Decimal(i["quantity"]) * Decimal(i["unit_price"]) * (1 - Decimal(i["discount"])))
        net = net.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        per_day[o["order_ts"].date().isoformat()] += net
        per_customer[o["customer_id"]] += net
    gold_day = {r["order_date"].isoformat(): Decimal(r["revenue"]) for r in rows(lake, "gold/agg_daily_sales")}
    out["daily_revenue_mismatches"] = sum(
        1 for d in set(per_day) | {d for d, v in gold_day.items() if v != 0}
        if abs(per_day.get(d, Decimal(0)) - gold_day.get(d, Decimal(0))) > Decimal("0.011")
    )
    out["days_checked"] = len(per_day)
    gold_cust = {r["customer_id"]: Decimal(r["revenue"]) for r in rows(lake, "gold/customer_value")}
    out["customer_revenue_mismatches"] = sum(
        1 for c in set(per_customer) | set(gold_cust)
        if abs(per_customer.get(c, Decimal(0)) - gold_cust.get(c, Decimal(0))) > Decimal("0.011")
    )
    # Row accounting for orders: every bronze row was logged as a change or quarantined, once;
    # silver holds one row per logged key, its change with the latest updated_at.
    bronze = rows(lake, "bronze/orders_raw")
    changes = rows(lake, "silver/orders__changes")
    silver = rows(lake, "silver/orders")
    latest = {}
    for c in changes:
        k = c["order_id"]
        if k not in latest or c["updated_at"] > latest[k]:
            latest[k] = c["updated_at"]
    out["orders_accounting"] = {
        "bronze": len(bronze), "changes": len(changes),
        "quarantined": len(rows(lake, "silver/orders__quarantine")),
        "logged_keys": len(latest), "silver": len(silver),
        "not_latest": sum(1 for o in silver if o["updated_at"] != latest.get(o["order_id"])),
    }
    # SCD2: per customer, versions chain (valid_to = next valid_from) and exactly one current row,
    # the latest one.
    history = defaultdict(list)
    for c in rows(lake, "silver/customers"):
        history[c["customer_id"]].append(c)
    broken = 0
    for versions in history.values():
        versions.sort(key=lambda v: v["valid_from"])
        for a, b in zip(versions, versions[1:]):
            broken += a["valid_to"] != b["valid_from"] or a["is_current"]
        broken += not versions[-1]["is_current"] or versions[-1]["valid_to"] is not None
    out["scd2_customers"] = len(history)
    out["scd2_multi_version_customers"] = sum(1 for v in history.values() if len(v) > 1)
    out["scd2_broken"] = broken
    # Recommendations: up to 10 per customer, ranked 1..n, never a product the customer bought
    # (completed order) or rated — the interactions the model was trained on.
    interacted = {(r["customer_id"], r["product_id"]) for r in rows(lake, "silver/ratings")}
    for i in rows(lake, "silver/order_items"):
        o = orders.get(i["order_id"])
        if o is not None and o["status"] == "completed":
            interacted.add((o["customer_id"], i["product_id"]))
    recs = defaultdict(list)
    for r in rows(lake, "ml/product_recommendations"):
        recs[r["user"]].append(r)
    out["recommended_customers"] = len(recs)
    out["recommendation_errors"] = sum(
        1 for user, rs in recs.items()
        for n, r in enumerate(sorted(rs, key=lambda r: r["rank"]), 1)
        if r["rank"] != n or n > 10 or (user, r["item"]) in interacted
    )
    metrics = {m["metric"]: m["value"] for m in rows(lake, "ml/product_recommendations__metrics")}
    out["recommendation_ndcg"] = metrics.get("ndcg_at_k")
    # PII: no e-mail address or phone number in any silver or gold table.
    pii = re.compile(r"@|example\.com|\+1-555|\(555\)|^555\d{7}$")
    leaks = []
    for layer in ("silver", "gold"):
        for name in sorted(os.listdir(os.path.join(lake, layer))):
            for r in rows(lake, f"{layer}/{name}"):
                for k, v in r.items():
                    if isinstance(v, str) and pii.search(v):
                        leaks.append(f"{layer}/{name}.{k}")
    out["pii_leaks"] = sorted(set(leaks))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
    os._exit(0)
