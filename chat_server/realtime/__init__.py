"""WebSocket endpoints for the widget and the inbox, and the hub that routes to them."""
