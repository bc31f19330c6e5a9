"""Every read query, one module per resource. Functions take a session (when a caller reads
several things in one) or the Database (when a handler wants one answer), and return rows or
views. Reads judge nothing: a missing row is None, and the caller says what that means."""
