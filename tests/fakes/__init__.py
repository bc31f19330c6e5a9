"""Local servers that speak the services' wire formats, for the real client libraries."""
