"""Paper trading and live execution on NautilusTrader's ``TradingNode``: replay node, sessions, live safety,
divergence from the validation backtest, promotion gates, Binance testnet/live configuration."""
