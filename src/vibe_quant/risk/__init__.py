"""Sizing and risk: position sizers, circuit breakers and the entry gate every strategy's entries pass."""
