"""Research experiments over the backtest core: the LPI walk-forward experiment runner and its bundles
(``docs/specs.md#lpi-experiments``)."""
