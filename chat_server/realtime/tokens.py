"""Visitor tokens are shared with the REST API; the class lives in chat_server/tokens.py."""

from ..tokens import VisitorClaim, VisitorTokens, visitor_tokens

__all__ = ["VisitorClaim", "VisitorTokens", "visitor_tokens"]
