"""Mutation run over the strategy kernels: apply each listed mutation, run the strategy tests, count the kills.

A mutation is one exact source edit (the pattern must occur exactly once, or the script stops: a list that
silently no longer applies would report a meaningless kill rate). Each mutant runs in a fresh
``NUMBA_CACHE_DIR`` — numba's on-disk cache only checks the timestamp of the file holding the jitted function,
not of the helpers it inlines from other modules, so a shared cache would run stale machine code — and the
source is restored afterwards whatever happens (the script checks ``git diff`` is empty at the end).

    uv run python scripts/mutation_run.py            # every mutation (~1–3 min each on a 2-core machine)
    uv run python scripts/mutation_run.py --only sigma_for_inverse_sigma,tie_break_reversed
    uv run python scripts/mutation_run.py --list

A mutant is *killed* when the tests fail (pytest exit code 1) or the code no longer imports/compiles (exit
2–4, reported separately); it *survives* when every test passes. Prints one line per mutant and the kill rate.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PF = "gradient_pipeline/core/portfolio.py"
SW = "gradient_pipeline/core/sweep.py"
BT = "gradient_pipeline/core/backtest.py"
CO = "gradient_pipeline/core/costs.py"
SG = "gradient_pipeline/core/signals.py"

# fastest first: -x stops at the first failure, so a killed mutant costs little
TESTS = [
    "gradient_pipeline_tests/core/test_portfolio.py",
    "gradient_pipeline_tests/core/test_backtest.py",
    "gradient_pipeline_tests/core/test_sweep.py",
    "gradient_pipeline_tests/reference/test_reference.py",
]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    what: str


MUTATIONS = [
    Mutation("sigma_for_inverse_sigma", PF, "return 1.0 if equal_w else inv_sigma",
             "return 1.0 if equal_w else 1.0 / inv_sigma", "weights ∝ σ instead of 1/σ (both kernels)"),
    Mutation("tie_break_reversed", PF, "        for i in range(N):\n            if eligible[t, i]:\n                idx[m] = i",
             "        for i in range(N - 1, -1, -1):\n            if eligible[t, i]:\n                idx[m] = i",
             "ties ranked Z→A instead of A→Z"),
    Mutation("cap_without_redistribution", PF, "        if not over:\n", "        if True:\n",
             "names over the cap are clipped, the excess is not redistributed"),
    Mutation("vol_window_off_by_one", PF, "row = hist_off + t - vol_window + 1 + s",
             "row = hist_off + t - vol_window + s", "vol-target window ends one bar early (dense kernel)"),
    Mutation("vol_window_off_by_one_sweep", SW, "row = hist_off + t - vol_window + 1 + s",
             "row = hist_off + t - vol_window + s", "vol-target window ends one bar early (sweep kernel)"),
    Mutation("adv_window_off_by_one", SG, "k = t - adv_bars + 1 + j", "k = t - adv_bars + j",
             "ADV window shifted one bar back"),
    Mutation("rebalance_phase_off_by_one_bar", PF, "end_hours = (pd.DatetimeIndex(times) + BAR).asi8",
             "end_hours = (pd.DatetimeIndex(times)).asi8", "rebalance on the bar opening (not ending) on the grid"),
    Mutation("k_floor_not_ceil", PF, "k = int(math.ceil(m * conc / 100.0 - 1e-9))",
             "k = int(math.floor(m * conc / 100.0 + 1e-9))", "names per side rounded down"),
    Mutation("k_not_clamped_to_half", PF, "        if k > m // 2:\n            k = m // 2\n",
             "        if k > m:\n            k = m\n", "k may exceed half the eligible names (a coin both long and short)"),
    Mutation("smoothing_weights_swapped", PF, "x = smoothing * target + (1.0 - smoothing) * prev",
             "x = (1.0 - smoothing) * target + smoothing * prev", "smoothing weights the previous weight by a"),
    Mutation("band_on_smoothed_change", PF,
             "            and abs(target - prev) < band:",
             "            and abs(smoothing * (target - prev)) < band:",
             "the old rule: band tested on a·(τ − p) (the dead zone)"),
    Mutation("no_snap_to_target", PF, "    if abs(target - x) < thr:\n", "    if False:\n",
             "a smoothing step never completes to the target / exits never close below the band"),
    Mutation("vol_scale_ignores_cap", PF, "if big > 0.0 and scale * big > cap:", "if False:",
             "vol-target scaling may push a name beyond the position cap"),
    Mutation("leverage_cap_doubled", PF, "        if gross > max_lev:\n            f = max_lev / gross",
             "        if gross > 2 * max_lev:\n            f = max_lev / gross", "gross above max leverage kept"),
    Mutation("liquidity_filter_10x_looser", PF, "(params.liquidity_impact_pct / 100.0) * adv",
             "(params.liquidity_impact_pct / 10.0) * adv", "eligibility uses 10× the allowed share of ADV"),
    Mutation("ineligible_kept", PF, "    if not eligible or (smooth and abs(x) < min_weight):",
             "    if smooth and abs(x) < min_weight:", "an ineligible (delisted, illiquid) coin keeps its weight"),
    Mutation("funding_sign_flipped", BT, "fu += p * funding[t, i]", "fu -= p * funding[t, i]",
             "longs receive positive funding (dense backtest)"),
    Mutation("fee_bps_scale", BT, "fees = to * fee / 1e4", "fees = to * fee / 1e5", "fees 10× too small (dense)"),
    Mutation("slippage_linear_not_sqrt", CO, "return base_bps + coef * 1e4 * math.sqrt(ratio)",
             "return base_bps + coef * 1e4 * ratio", "impact linear in participation instead of square root"),
    Mutation("lookahead_return", BT, "c1 = close[t, i]", "c1 = close[min(t + 1, T - 1), i]",
             "positions earn the next bar's return (look-ahead)"),
]


def run_tests(tests: list[str], timeout: float) -> tuple[int, float]:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="numba-mut-") as cache:
        env["NUMBA_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        try:
            rc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -1
        return rc, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=None, help="comma-separated mutation names")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant's test run")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    a = ap.parse_args()
    muts = MUTATIONS
    if a.only:
        want = set(a.only.split(","))
        unknown = want - {m.name for m in MUTATIONS}
        if unknown:
            raise SystemExit(f"unknown mutation(s): {sorted(unknown)}")
        muts = [m for m in MUTATIONS if m.name in want]
    if a.list:
        for m in muts:
            print(f"{m.name:32s} {m.path:40s} {m.what}")
        return 0
    for m in muts:  # every pattern must apply exactly once before anything runs
        n = (ROOT / m.path).read_text().count(m.old)
        if n != 1:
            raise SystemExit(f"mutation {m.name}: pattern found {n} times in {m.path} (expected once): update the list")
    if not a.no_baseline:
        rc, secs = run_tests(TESTS, a.timeout)
        print(f"{'baseline (no mutation)':32s} {'pass' if rc == 0 else f'FAIL rc={rc}':>10s} {secs:7.0f} s", flush=True)
        if rc != 0:
            raise SystemExit("the unmutated code fails its tests: fix that first")
    killed = errors = 0
    for m in muts:
        path = ROOT / m.path
        original = path.read_text()
        try:
            path.write_text(original.replace(m.old, m.new))
            rc, secs = run_tests(TESTS, a.timeout)
        finally:
            path.write_text(original)
        status = {0: "SURVIVED", 1: "killed"}.get(rc, "timeout" if rc == -1 else f"error rc={rc}")
        killed += rc != 0
        errors += rc not in (0, 1)
        print(f"{m.name:32s} {status:>10s} {secs:7.0f} s   {m.what}", flush=True)
    dirty = subprocess.run(["git", "diff", "--stat", "--", *{m.path for m in muts}], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        print(f"WARNING: sources not restored:\n{dirty}")
    print(f"kill rate: {killed}/{len(muts)} = {killed / max(len(muts), 1):.0%} "
          f"({errors} of the kills by import/compile error or timeout)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
