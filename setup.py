"""Build hook: ship the demo world inside the package.

``data/demo/`` is the demo world's source (its generator, README and files live there, beside
the format notes for real data). A wheel must carry it too, so that ``pip install .`` followed
by ``marginrank demo`` works from any directory: this hook copies the world's files into
``ranking/app/demo_world/`` of the build, where the CLI looks first. Everything else about the
build is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

#: The demo world's files the package needs (the generator stays in the source tree).
DEMO_FILES = ("catalog.csv", "judgments.csv", "transactions.csv.gz", "weights.yaml", "README.md")
DEMO_SOURCE = Path(__file__).resolve().parent / "data" / "demo"
DEMO_TARGET = Path("ranking") / "app" / "demo_world"


class BuildWithDemoWorld(build_py):
    """build_py, then a copy of the demo world into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads data/demo in place
            return
        target = Path(self.build_lib) / DEMO_TARGET
        target.mkdir(parents=True, exist_ok=True)
        for name in DEMO_FILES:
            shutil.copyfile(DEMO_SOURCE / name, target / name)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return [*outputs, *(str(Path(self.build_lib) / DEMO_TARGET / n) for n in DEMO_FILES)]


setup(cmdclass={"build_py": BuildWithDemoWorld})
