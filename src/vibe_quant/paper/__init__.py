"""Paper and live trading: live safety limits, divergence from the validation backtest, promotion gates."""
