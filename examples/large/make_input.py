"""Write a large synthetic JSONL input for examples/large (review sentiment labelling).

    python examples/large/make_input.py --size-mib 512

The file is streamed to disk line by line, so any size can be made with flat memory.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

ASPECTS = [
    "battery",
    "screen",
    "delivery",
    "price",
    "support",
    "camera",
    "fit",
    "taste",
    "noise",
    "manual",
]
OPINIONS = [
    "great",
    "terrible",
    "fine",
    "disappointing",
    "excellent",
    "average",
    "surprising",
    "broken",
]
SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"enum": ["positive", "neutral", "negative"]},
        "aspects": {"type": "array"},
    },
    "required": ["sentiment"],
}


def review(rnd: random.Random) -> str:
    parts = [
        f"The {rnd.choice(ASPECTS)} was {rnd.choice(OPINIONS)}." for _ in range(rnd.randint(2, 12))
    ]
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "data" / "reviews.jsonl"
    )
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    target = args.size_mib << 20
    written = count = 0
    with args.out.open("w", encoding="utf-8") as handle:
        while written < target:
            line = json.dumps(
                {
                    "key": f"review-{count:09d}",
                    "request": {
                        "contents": [
                            {
                                "role": "user",
                                "parts": [{"text": "Label this review: " + review(rnd)}],
                            }
                        ],
                        "generationConfig": {
                            "temperature": 0,
                            "responseMimeType": "application/json",
                            "responseJsonSchema": SCHEMA,
                        },
                    },
                }
            )
            handle.write(line + "\n")
            written += len(line) + 1
            count += 1
    print(f"wrote {args.out} ({written / 2**20:.0f} MiB, {count:,} requests)")


if __name__ == "__main__":
    main()
