"""Thin HTTP handlers: validate, call an action or a query, answer JSON."""
