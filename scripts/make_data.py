"""Generate the example datasets of the bundled spec repo: deterministic, offline, no download.

    python scripts/make_data.py --rows 4000 --seed 13 --out data

writes data/reviews.csv (short product reviews labelled positive/negative, with a reviewer email
that the Dataset spec declares PII) and data/customers.parquet (customer activity and churn). The
same arguments give the same bytes on any machine, so the Task that runs this is a no-op on the
second apply and its run cache is shared by everyone.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import random
from pathlib import Path

POSITIVE = ["love", "great", "excellent", "works perfectly", "fast delivery", "would buy again", "solid",
            "comfortable", "exceeded expectations", "easy to use", "beautiful", "reliable"]
NEGATIVE = ["broke", "terrible", "refund", "stopped working", "slow delivery", "waste of money", "flimsy",
            "uncomfortable", "disappointed", "hard to use", "ugly", "unreliable"]
NEUTRAL = ["the", "product", "arrived", "on", "tuesday", "box", "size", "colour", "for", "my", "kitchen",
           "battery", "it", "was", "and", "price", "after", "a", "week", "daughter"]
PRODUCTS = ["headphones", "kettle", "backpack", "lamp", "keyboard", "blender", "jacket", "charger"]


def review(rng: random.Random, positive: bool) -> str:
    own, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
    words = rng.sample(NEUTRAL, 4) + rng.sample(own, 2) + ([rng.choice(other)] if rng.random() < 0.15 else [])
    rng.shuffle(words)
    return f"{rng.choice(PRODUCTS)}: " + " ".join(words)


def reviews_csv(rows: int, rng: random.Random) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["review_id", "text", "email", "label"])
    for i in range(rows):
        positive = rng.random() < 0.55
        email = f"user{rng.randrange(10**6):06d}@example.com" if rng.random() > 0.002 else ""
        writer.writerow([i + 1, review(rng, positive), email, "positive" if positive else "negative"])
    return out.getvalue().encode()


def customers_parquet(rows: int, rng: random.Random, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tenure, spend, tickets, plan, churned = [], [], [], [], []
    for _ in range(rows):
        months = rng.randrange(0, 120)
        chosen = rng.choices(["basic", "plus", "pro"], weights=[5, 3, 2])[0]
        monthly = round(rng.uniform(5, 30) * {"basic": 1, "plus": 2, "pro": 4}[chosen], 2)
        opened = min(int(rng.expovariate(0.7)), 20)
        risk = -1.2 + 0.35 * opened - 0.03 * months + (0.4 if chosen == "basic" else 0.0)
        tenure.append(months)
        spend.append(monthly if rng.random() > 0.01 else None)
        tickets.append(opened)
        plan.append(chosen)
        churned.append(rng.random() < 1 / (1 + math.exp(-risk)))
    table = pa.table({
        "customer_id": pa.array(range(1, rows + 1), pa.int64()),
        "tenure_months": pa.array(tenure, pa.int64()),
        "monthly_spend": pa.array(spend, pa.float64()),
        "support_tickets": pa.array(tickets, pa.int64()),
        "plan": pa.array(plan, pa.string()),
        "churned": pa.array(churned, pa.bool_()),
    })
    pq.write_table(table, path, compression="zstd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reviews.csv").write_bytes(reviews_csv(args.rows, random.Random(args.seed)))
    customers_parquet(args.rows, random.Random(args.seed + 1), args.out / "customers.parquet")
    print(f"wrote {args.rows} reviews and {args.rows} customers to {args.out}/")


if __name__ == "__main__":
    main()
