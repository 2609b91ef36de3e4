"""Make the bundled demo extract (gradient_pipeline/demo_data/futures) from the shared freqtrade data. Reproducible.

    uv run python scripts/make_demo_extract.py [--src ../shared/data/hyperliquid-freqtrade/user_data/data/hyperliquid/futures]

Keeps freqtrade's layout and file format (feather, `date` tz-aware UTC) so every reader of a freqtrade directory
reads it unchanged. Selection (see README in the output directory): 24 liquid perps trading since before the range,
2 listed inside it (pre-trade back-fill rows kept, as freqtrade stores them) and 4 delisted inside it (data ends
April 2025). Range 2024-10-01 → 2025-05-01: 1,272 4h bars, i.e. the strategy's 1024-bar longest span plus ~6 weeks
to trade; funding over the same range; 1h candles for April 2025 only. Rows are copied, never altered; files are
zstd-compressed.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = ROOT.parent / "shared" / "data" / "hyperliquid-freqtrade" / "user_data" / "data" / "hyperliquid" / "futures"
OUT = ROOT / "gradient_pipeline" / "demo_data" / "futures"

START = pd.Timestamp("2024-10-01", tz="UTC")
END = pd.Timestamp("2025-05-01", tz="UTC")
LIQUID = ["BTC", "ETH", "SOL", "XRP", "kBONK", "kPEPE", "SUI", "DOGE", "AAVE", "WIF", "ENA", "SEI", "ADA", "LINK",
          "POPCAT", "ARB", "AVAX", "CRV", "WLD", "UNI", "BNB", "TAO", "LTC", "ONDO"]
LISTED_IN_RANGE = ["TRUMP", "BERA"]
DELISTED_IN_RANGE = ["AI", "NTRN", "ILV", "BADGER"]
COINS = LIQUID + LISTED_IN_RANGE + DELISTED_IN_RANGE
# 1h candles are the bulkiest and nothing in the strategy needs their history: keep only the last month of them.
SUFFIX_START = {"4h-futures": START, "1h-futures": pd.Timestamp("2025-04-01", tz="UTC"), "1h-funding_rate": START}
SUFFIXES = list(SUFFIX_START)


def extract(src: Path, out: Path) -> list[tuple[str, int, str]]:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.feather"):
        old.unlink()
    manifest = []
    for coin in COINS:
        for suffix in SUFFIXES:
            name = f"{coin}_USDC_USDC-{suffix}.feather"
            table = feather.read_table(src / name)
            dates = table.column("date")
            start = SUFFIX_START[suffix]
            keep = pc.and_(pc.greater_equal(dates, pa.scalar(start.to_pydatetime(), dates.type)),
                           pc.less(dates, pa.scalar(END.to_pydatetime(), dates.type)))
            part = table.filter(keep).replace_schema_metadata(None)
            feather.write_feather(part, out / name, compression="zstd", compression_level=19)
            manifest.append((name, part.num_rows, hashlib.sha256((out / name).read_bytes()).hexdigest()[:16]))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    manifest = extract(args.src, args.out)
    lines = ["file,rows,sha256_16"] + [f"{n},{r},{h}" for n, r, h in manifest]
    (args.out / "MANIFEST.csv").write_text("\n".join(lines) + "\n")
    total = sum(p.stat().st_size for p in args.out.glob("*.feather"))
    print(f"{len(manifest)} files, {sum(r for _, r, _ in manifest)} rows, {total / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
