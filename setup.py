"""Build hook for the optional compiled Philox words (``initlab.scale._philox``).

All metadata lives in pyproject.toml; this file only declares the C extension. It is
``optional``: without a working C compiler the build skips it and installs the pure-Python
package, whose counter stream then takes its words from NumPy's Philox (the same words, bit for
bit; see docs/scale.md, "Choosing the generator").
"""

import sys

from setuptools import Extension, setup

_ARGS = [] if sys.platform == "win32" else ["-O3"]

setup(ext_modules=[Extension("initlab.scale._philox", ["src/initlab/scale/_philox.c"],
                             extra_compile_args=_ARGS, optional=True)])
