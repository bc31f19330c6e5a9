"""Dependencies flow one way, and every module has its place in the map."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "chat_server"

# Every module (a top-level module, or a package taken whole) has a place here: the groups it
# may import. A module missing from this map fails the test, so a new module has to be given
# its place. Dependencies flow one way:
#   models <- {frames, views} <- {reads, actions} <- {api, realtime, channels, outbound} <- app <- cli
# and the pure corner (behaviour) sees only models.
LEAVES: set[str] = set()
ALLOWED: dict[str, set[str]] = {
    # Foundations: no knowledge of the product's other parts.
    "settings": LEAVES, "logs": LEAVES, "metrics": LEAVES, "bus": LEAVES,
    "tokens": {"settings"},  # visitor tokens: signed with the secret key
    "login_limits": {"settings"},  # failed-login counters, in Redis when configured
    "group_commit": LEAVES, "models": LEAVES, "backup": LEAVES,
    "db": {"bus", "settings"},  # the unit of work hands committed dispatches to the bus
    "migrate": {"db"},
    "queue_runner": LEAVES,  # the claim-send-record loop the durable queues share
    "webhook_addresses": LEAVES,  # which addresses webhook deliveries may connect to
    "attachments": LEAVES,  # what may be sent as a file: types, sizes, names
    "file_store": {"attachments", "file_store_s3", "settings"},  # where the bytes live: this disk or object storage
    "file_store_s3": {"attachments", "settings"},
    # (and, for type annotations only, the group commit's item and result types from actions)
    "runtime": {"actions", "bus", "db", "file_store", "group_commit", "login_limits", "metrics", "settings"},
    "frames": {"models"},
    # Automatic emails: signed tracking links and the HTML part (no rows; the secret and public URL).
    "automatic_email": {"models", "settings"},
    "views": {"frames", "models"},
    "behaviour": {"models"},  # pure: snapshots in, decisions out
    # Every read query.
    "reads": {"behaviour", "db", "frames", "models", "runtime", "views"},
    # Every write.
    "actions": {"attachments", "behaviour", "bus", "db", "frames", "group_commit", "metrics", "models", "reads", "runtime",
                "settings", "tokens", "views", "automatic_email", "webhook_addresses"},
    # The edges: sockets, HTTP, channel loops, the outbound worker.
    "channels": {"actions", "attachments", "models", "reads", "runtime"},
    "outbound": {"actions", "attachments", "channels", "models", "queue_runner", "reads", "runtime", "automatic_email"},
    "realtime": {"actions", "bus", "db", "frames", "metrics", "models", "reads", "runtime", "tokens", "views"},
    "webhooks": {"actions", "queue_runner", "runtime", "webhook_addresses"},  # the outgoing webhooks' worker
    "api": {"actions", "attachments", "behaviour", "channels", "db", "frames", "models", "reads", "runtime", "tokens", "views",
            "automatic_email"},
    # Composition.
    "sweeps": {"actions", "models", "runtime"},
    "app": {"actions", "api", "bus", "channels", "db", "file_store", "login_limits", "metrics", "migrate", "outbound",
            "realtime", "runtime", "settings", "sweeps", "webhooks"},
    # The import command's reading of files: rows checked, then written by the actions.
    "imports": {"actions", "behaviour", "models", "runtime"},
    "cli": {"actions", "app", "backup", "bus", "db", "file_store", "imports", "logs", "metrics", "migrate", "models",
            "runtime", "settings"},
    "__main__": {"cli"},
    "__init__": LEAVES,
}
# Triggers: the definition, templates and evaluation are pure (like behaviour); the worker
# composes them with the actions. The tracking pipeline (actions) schedules sends through them.
ALLOWED["triggers"] = {"actions", "behaviour", "models", "reads", "runtime"}
ALLOWED["actions"] = ALLOWED["actions"] | {"triggers"}
ALLOWED["reads"] = ALLOWED["reads"] | {"triggers"}
ALLOWED["api"] = ALLOWED["api"] | {"triggers"}
ALLOWED["app"] = ALLOWED["app"] | {"triggers"}
INTEGRATIONS = PACKAGE.parent / "integrations"


def group_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def imported_groups(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    groups: set[str] = set()
    package_parts = path.relative_to(PACKAGE).parent.parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = list(package_parts[: len(package_parts) - (node.level - 1)])
                target = base + (node.module.split(".") if node.module else [])
                names = target or [alias.name for alias in node.names]
                if target:
                    groups.add(target[0])
                else:
                    groups.update(names)
            elif node.module and node.module.startswith("chat_server."):
                groups.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("chat_server."):
                    groups.add(alias.name.split(".")[1])
    return groups


def test_imports_follow_the_layers() -> None:
    violations = []
    checked = 0
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        group = group_of(path)
        if group not in ALLOWED:
            violations.append(f"{path.relative_to(PACKAGE)} has no place in the layer map")
            continue
        bad = imported_groups(path) - ALLOWED[group] - {group}
        checked += 1
        if bad:
            violations.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert checked > 20
    assert not violations, "\n".join(violations)


def test_the_layer_map_names_only_modules_that_exist() -> None:
    groups = {group_of(p) for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    assert set(ALLOWED) - groups == set()


# Where SQL may be written: the reads, the actions and the migrations; besides them only the
# plumbing (engines, migrations runner, statement counter) and the filters' clause compiler.
SQL_HOMES = {"reads", "actions", "migrations", "models", "behaviour", "db", "migrate", "metrics"}


def test_sql_lives_in_reads_and_actions() -> None:
    writers = []
    for path in PACKAGE.rglob("*.py"):
        if group_of(path) in SQL_HOMES:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n.split(".")[0] in ("sqlalchemy", "sqlmodel") for n in names):
                writers.append(str(path.relative_to(PACKAGE)))
    assert writers == [], writers


def test_only_settings_reads_the_environment() -> None:
    readers = [
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
        if "os.environ" in p.read_text() or "getenv" in p.read_text()
    ]
    assert readers == [], readers


def test_integrations_import_only_their_base_and_their_sdk() -> None:
    """Adapters translate; they never reach into the server (database, bus, actions)."""
    checked = 0
    for path in INTEGRATIONS.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                assert not name.startswith("chat_server"), f"{path.name} imports {name}"
                if name.startswith(".") or name.startswith("integrations"):
                    # base, or a helper module of the same channel (email.py -> email_quotes.py -> email_html.py)
                    module = name.lstrip(".").removeprefix("integrations.")
                    channel = path.stem.split("_")[0]
                    assert module in ("base", "") or module.startswith(channel + "_"), f"{path.name} imports {name}"
        checked += 1
    assert checked >= 4
