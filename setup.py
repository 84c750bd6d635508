"""Ships the checkout's ``templates/`` (beside ``mobilekit/``, where the design puts the Android, iOS, head, sample-app
and report templates) as ``mobilekit/templates`` package data in the wheel; everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "templates"
        target = Path(self.build_lib) / "mobilekit" / "templates"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)


setup(cmdclass={"build_py": BuildPy})
