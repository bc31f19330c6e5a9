"""Every read query, per resource: handlers and actions call these instead of writing SQL."""
