"""State database: the tables of docs/specs.md#state-database plus the data stage's index, behind ``StateManager``."""

from vibe_quant.state.db import SCHEMA_VERSION, connect, transaction
from vibe_quant.state.manager import StateManager

__all__ = ["SCHEMA_VERSION", "StateManager", "connect", "transaction"]
