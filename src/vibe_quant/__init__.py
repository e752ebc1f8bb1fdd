"""vibe-quant: Binance perpetual-futures research to live trading on NautilusTrader."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vibe-quant")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"


def code_version() -> str:
    """Return the versions that determine what an ingest or backtest produces."""
    import nautilus_trader
    import pyarrow

    return f"vibe-quant {__version__}; nautilus_trader {nautilus_trader.__version__}; pyarrow {pyarrow.__version__}"
