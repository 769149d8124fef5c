"""Import boundaries that import-linter does not express (its contracts live in pyproject.toml).

- pyscard is an optional extra (`pcsc`): the `idp` command and the card layer import without it;
  only commands that talk to a reader need it.
- The vpcd bridge is standard library only, so it can run anywhere a virtual card runs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import idp.card.vpcd

WITHOUT_PYSCARD = """
import sys
sys.modules["smartcard"] = None  # any import of pyscard now fails
from click.testing import CliRunner
from idp.cli import main
import idp.card.jpki, idp.card.virtual, idp.card.vpcd
result = CliRunner().invoke(main, ["card", "emulate", "--list-residents"])
assert result.exit_code == 0, result.output
assert "yamada" in result.output
assert "smartcard" not in {name.split(".")[0] for name in sys.modules if sys.modules[name]}
print("ok")
"""


def test_idp_works_without_pyscard() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYSCARD], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_vpcd_bridge_imports_only_the_standard_library() -> None:
    source = Path(idp.card.vpcd.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= sys.stdlib_module_names | {"__future__"}, imported
