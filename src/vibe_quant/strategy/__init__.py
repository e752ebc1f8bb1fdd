"""The strategy layer: what every strategy stands on, whatever engine runs it.

:mod:`.ports` (what a strategy needs beyond NautilusTrader), :mod:`.account` (its view of the
account), :mod:`.leg` (the order rules per instrument), :mod:`.base` (one instrument) and
:mod:`.portfolio` (several on one account), :mod:`.registry` (strategy kinds), :mod:`.python`
(the Python kind), :mod:`.node` (ports on a paper or live node), :mod:`.builtin` (shipped strategies).
Nothing here imports the backtest: the simulated venue implements these ports.
"""
