"""Paper trading and live execution on NautilusTrader's ``TradingNode``."""
