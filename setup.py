"""Build hook for the optional compiled Philox words (``initlab.scale._philox``).

All metadata lives in pyproject.toml; this file only declares the C extension. It is
``optional``: without a working C compiler the build skips it and installs the pure-Python
package, whose counter stream then takes its words from NumPy's Philox (the same words, bit for
bit; see docs/scale.md, "Choosing the generator").
"""

import sys

from setuptools import Extension, setup

# -ffp-contract=off: every float step of the v2 kernels is one IEEE operation (never a fused
# multiply-add, whatever -march the environment's CFLAGS add), so they equal torch's ops bit for bit
_ARGS = [] if sys.platform == "win32" else ["-O3", "-ffp-contract=off"]

setup(ext_modules=[Extension("initlab.scale._philox", ["src/initlab/scale/_philox.c"],
                             extra_compile_args=_ARGS, optional=True)])
