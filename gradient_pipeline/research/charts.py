"""Charts for research results (matplotlib, Agg backend): equity + drawdown, sweep heatmap. PNG bytes."""

from __future__ import annotations

import datetime as dt
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def utc_time_axis(ax) -> None:
    """Dates on the x axis as UTC with the year (`2025-04-10` / `2025-04-10 08:00`), labelled `time (UTC)`."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=dt.timezone.utc, minticks=3, maxticks=8)
    fmt = mdates.ConciseDateFormatter(locator, tz=dt.timezone.utc, show_offset=False,
                                      formats=["%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M",
                                               "%Y-%m-%d %H:%M:%S"],
                                      zero_formats=["%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M",
                                                    "%Y-%m-%d %H:%M"])
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(fmt)
    ax.set_xlabel("time (UTC)")


def plain_log_axis(ax, axis: str = "y") -> None:
    """A log axis with plain numbers (0.9, 1, 2, 5) instead of matplotlib's `9×10⁻¹` mathtext labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.4g}"))
    a.set_minor_formatter(NullFormatter())


def equity_png(bars: pd.DataFrame, title: str) -> bytes:
    """Net and gross equity (log scale, plain tick labels) over drawdown of the net curve; UTC dates with years."""
    eq = bars["equity"]
    gross = (1 + bars["gross"]).cumprod()
    dd = eq / np.maximum(eq.cummax(), 1.0) - 1
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    a1.plot(eq.index, eq.values, label="net of fees, slippage, funding", lw=1.2)
    a1.plot(gross.index, gross.values, label="gross (before costs)", lw=1.0, alpha=0.7)
    a1.set_yscale("log")
    plain_log_axis(a1)
    a1.set_ylabel("equity (start = 1, log scale)")
    a1.legend(loc="upper left")
    a1.set_title(title)
    a1.grid(alpha=0.3)
    a2.fill_between(dd.index, 100 * dd.values, 0, color="tab:red", alpha=0.5)
    a2.set_ylabel("drawdown (%)")
    a2.grid(alpha=0.3)
    utc_time_axis(a2)
    return _png(fig)


def heatmap_png(table: pd.DataFrame, value: str, rows: str, cols: str, title: str) -> bytes:
    """Best ``value`` over the other grid dimensions for each (rows, cols) cell."""
    piv = table.pivot_table(index=rows, columns=cols, values=value, aggfunc="max")
    fig, ax = plt.subplots(figsize=(8, 5))
    vmax = np.nanmax(np.abs(piv.values)) if piv.size else 1.0
    im = ax.imshow(piv.values, cmap="RdYlGn", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(piv.columns)), [str(c) for c in piv.columns])
    ax.set_yticks(range(len(piv.index)), [str(i) for i in piv.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            ax.text(j, i, f"{piv.values[i, j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label=value)
    ax.set_title(title)
    return _png(fig)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
