"""Hatch build hook: compiles ``connector/adapters/_avro_body.pyx`` (the C body writer).

Runs for every wheel, editable installs included (``pip install -e .``: the extension is built
next to its source). Without a C compiler the build goes on as pure Python, with a warning: the
connector then writes every body with the Python writers, about 4x slower per event, with the
same bytes. Not part of the installed package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "connector/adapters/_avro_body.pyx"
MODULE = "connector.adapters._avro_body"


def compile_in_place(root: str) -> Path:
    """Cythonize and compile the extension into the source tree; its path."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    cwd = os.getcwd()
    os.chdir(root)
    try:
        modules = cythonize([Extension(MODULE, [SOURCE])], quiet=True, language_level=3)
        command = Distribution({"ext_modules": modules}).get_command_obj("build_ext")
        command.inplace = True
        command.ensure_finalized()
        command.run()
        return Path(root) / command.get_ext_fullpath(MODULE)
    finally:
        os.chdir(cwd)


class NativeBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        try:
            built = compile_in_place(self.root)
        except Exception as exc:  # no compiler, no Python headers: pure Python
            self.app.display_warning(f"the C body writer was not built ({exc}); pure Python")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version == "standard":  # an editable install imports it from the source tree
            build_data["force_include"][str(built)] = f"connector/adapters/{built.name}"
