"""Dependencies flow one way: models <- {reads, actions} <- {api, realtime} <- app."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "chat_server"

# module group -> groups it must never import
FORBIDDEN = {
    "models": {"actions", "api", "realtime", "app", "cli", "bus", "db", "frames", "views"},
    "frames": {"actions", "api", "realtime", "app", "cli", "db"},
    "views": {"actions", "api", "realtime", "app", "cli", "db"},
    "bus": {"actions", "api", "realtime", "app", "cli", "models", "db"},
    "reads": {"actions", "api", "realtime", "app", "cli", "bus", "channels", "outbound"},
    "behaviour": {"actions", "reads", "api", "realtime", "app", "cli", "bus", "db"},
    "actions": {"api", "realtime", "app", "cli"},
    "api": {"realtime", "app", "cli"},
    "realtime": {"api", "app", "cli"},
    "settings": {"actions", "api", "realtime", "app", "cli", "models", "db", "bus"},
    "channels": {"api", "realtime", "app", "cli", "outbound"},
    "outbound": {"api", "realtime", "app", "cli"},
}
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
        bad = imported_groups(path) & FORBIDDEN.get(group, set())
        checked += 1
        if bad:
            violations.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert checked > 20
    assert not violations, "\n".join(violations)


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
                    assert name.lstrip(".").removeprefix("integrations.") in ("base", ""), f"{path.name} imports {name}"
        checked += 1
    assert checked >= 4
