"""The README's production recipe passes `manage.py check --deploy` with no warning.

The test runs the recipe's own `export` lines (README, "Running it for real"), so the
README cannot drift from what is checked here.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_production_exports() -> str:
    """The `export` statements of the sh block that ends in `make up` in the README's
    "Running it for real" section, continuation lines joined."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running it for real", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    recipe = next(block for block in blocks if re.search(r"^make up\b", block, flags=re.M))
    statements = recipe.replace("\\\n", " ").splitlines()
    return "\n".join(line for line in statements if line.startswith("export "))


def run_with_the_readme_recipe(*command: str) -> subprocess.CompletedProcess:
    """`command` run in a clean environment holding only what the recipe exports."""
    script = f'set -e\n{readme_production_exports()}\nexec "$@"\n'
    return subprocess.run(
        ["bash", "-c", script, "bash", *command],
        cwd=ROOT,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_production_recipe_passes_check_deploy_with_no_warning():
    assert "SECURE_HSTS_SECONDS" in readme_production_exports()
    result = run_with_the_readme_recipe(
        sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_the_readme_production_recipe_trusts_the_proxy_header_for_https():
    show = (
        "from django.conf import settings as s; "
        "print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS)"
    )
    result = run_with_the_readme_recipe(sys.executable, "manage.py", "shell", "-c", show)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "('HTTP_X_FORWARDED_PROTO', 'https') True 31536000"
