"""Python strategies shipped with vibe-quant (registered by name in ``strategy/registry.py``)."""
