"""The README stays true and short: its two commands, CI running the test command verbatim and
building the docs strictly, its links, the feature table (on its docs page) matching the code,
and the tree passing ruff."""

from __future__ import annotations

import re
import subprocess
import sys

from ranking.features import FEATURES
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
#: The page that lists the LambdaMART features (ranking/features.py is its source).
FEATURES_PAGE = DOCS / "guide" / "features.md"


def bash_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, flags=re.S)]


def test_readme_starts_with_the_two_commands() -> None:
    install_demo, test = bash_blocks()[:2]
    assert README.index(install_demo) < README.index("## ")
    assert "pip install" in install_demo and install_demo.endswith("marginrank demo")
    assert "pytest" in test and "\n" not in test


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= 200


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    test = bash_blocks()[1]
    assert test in ci.splitlines()
    assert "python3 -m venv .venv" in ci
    # CI installs at least the extras the README's install line names (the tests need them).
    readme_extras = set(re.search(r'"\.\[([a-z,]+)\]"', bash_blocks()[0]).group(1).split(","))
    ci_extras = set(re.search(r'"\.\[([a-z,]+)\]"', ci).group(1).split(","))
    assert readme_extras <= ci_extras, readme_extras - ci_extras


def test_ci_builds_the_docs_strictly_before_the_tests() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    docs = [i for i, line in enumerate(lines) if "mkdocs build --strict" in line]
    assert docs and docs[0] < lines.index(bash_blocks()[1])
    assert "docs" in re.search(r'"\.\[([a-z,]+)\]"', "\n".join(lines)).group(1).split(",")


def test_readme_links_point_at_files() -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (ROOT / target).is_file(), target


def test_feature_table_matches_the_code() -> None:
    page = FEATURES_PAGE.read_text(encoding="utf-8")
    for name, meaning in FEATURES:
        assert f"| `{name}` | {meaning} |" in page, name


def test_no_unfilled_placeholders() -> None:
    for path in [ROOT / "README.md", *sorted((DOCS / "guide").glob("*.md")), DOCS / "index.md"]:
        assert not re.search(r"\b[A-Z]{3,}_[A-Z_]{3,}\b", path.read_text(encoding="utf-8")), path


def test_ruff_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
