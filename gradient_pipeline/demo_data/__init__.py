"""The bundled demo extract: a small freqtrade-layout directory made from the real recorded data.

`FUTURES_DIR` is usable anywhere a freqtrade directory is (`--source freqtrade --path`, the local exchange's
`--data`). See README.md here for what it holds; `scripts/make_demo_extract.py` rebuilds it byte for byte.
"""

from pathlib import Path

FUTURES_DIR = Path(__file__).resolve().parent / "futures"
START = "2024-10-01 00:00"   # first 4h candle open time in the extract
END = "2025-05-01 00:00"     # exclusive: the last 4h candle opens at 2025-04-30 20:00
