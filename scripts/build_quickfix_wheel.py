"""Build a wheel of quickfix from its PyPI source with TLS (OpenSSL) enabled, on every core.

PyPI ships quickfix as source only, and its setup.py builds without TLS. We compile it once per
machine into a wheel cache (see scripts/bootstrap). Two changes to the stock build, both made from
outside the untouched sdist:

- the extension is built with HAVE_SSL and linked with libssl/libcrypto, which exposes
  SSLSocketInitiator/SSLSocketAcceptor to Python;
- the ~100 C++ sources are compiled in parallel (setuptools compiles one file at a time), the
  largest first: the SWIG wrapper alone takes minutes.

Usage: python build_quickfix_wheel.py SDIST_DIR OUT_DIR
"""

from __future__ import annotations

import os
import runpy
import sys
from concurrent.futures import ThreadPoolExecutor

import setuptools
from setuptools._distutils import ccompiler


def parallel_compile(self, sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                     extra_preargs=None, extra_postargs=None, depends=None):
    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs
    )
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)

    def compile_one(obj: str) -> None:
        src, ext = build[obj]
        self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

    largest_first = sorted(objects, key=lambda obj: -os.path.getsize(build[obj][0]))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _ in pool.map(compile_one, largest_first):
            pass
    return objects


def setup_with_tls(*args, _setup=setuptools.setup, **kwargs):
    for ext in kwargs.get("ext_modules", []):
        ext.define_macros.append(("HAVE_SSL", "1"))
        ext.libraries.extend(["ssl", "crypto"])
    return _setup(*args, **kwargs)


def main() -> None:
    sdist_dir, out_dir = sys.argv[1], os.path.abspath(sys.argv[2])
    ccompiler.CCompiler.compile = parallel_compile
    setuptools.setup = setup_with_tls
    os.chdir(sdist_dir)
    sys.path.insert(0, sdist_dir)
    sys.argv = ["setup.py", "-q", "bdist_wheel", "--dist-dir", out_dir]
    runpy.run_path("setup.py", run_name="__main__")


if __name__ == "__main__":
    main()
