"""Reinforcement learning on our costs: the trading environment on the perp kernel, training with
Stable-Baselines3 (CPU torch), the policy as a NautilusTrader strategy, walk-forward retraining and
the model registry (docs/specs.md#reinforcement-learning)."""
