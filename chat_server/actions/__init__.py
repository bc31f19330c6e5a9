"""Every write. `check_*` validates and raises ActionError; `do_*` writes, then publishes
what happened only after the transaction committed."""
