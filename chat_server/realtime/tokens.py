"""Visitor tokens are shared with the REST API; the class lives in chat_server/tokens.py."""

from ..tokens import VisitorTokens

__all__ = ["VisitorTokens"]
