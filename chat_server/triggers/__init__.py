"""Triggers: automatic messages that fire on behaviour, with limits, experiments and results."""
