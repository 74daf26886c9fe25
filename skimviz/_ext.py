"""Optional C++ kernels (``skimviz/csrc``): built ahead of time, loaded if present.

    python -m skimviz._ext build     # compile skimviz/csrc/*.cpp (SOURCES) into build/ext/
    python -m skimviz._ext status    # is a build for this source and this torch present?

Nothing is compiled at import. :func:`load` returns the op namespace ``torch.ops.skimviz``
when a library built from the current sources exists, else ``None``, and
:mod:`skimviz.models.sru`, :mod:`skimviz.models.skip_rnn` and :mod:`skimviz.models.skim_rnn`
then fall back to PyTorch. The
library's file name carries a hash of the sources (and the headers they include, ``HEADERS``), the
torch version and the compiler flags, so editing a ``.cpp`` or ``.h`` or upgrading torch makes it
"not built" instead of loading a stale binary.

:func:`build` calls the C++ compiler (``$CXX``, default ``c++``; gcc >= 10 for the C++20 that
torch's headers need) directly with torch's include and library paths, so neither ninja nor
setuptools is needed. The result goes to ``<repo>/build/ext`` (git-ignored), or to
``$SKIMVIZ_EXT_DIR``.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List, Optional, Tuple

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
# One library (skimviz_ops_<hash>.so), one op namespace (torch.ops.skimviz): the SRU recurrence (ops/sru.py), the
# batch-1 Skip RNN jump loop (models/skip_rnn.py), the Skip RNN training forward/backward
# (ops/skip_rnn.py), the batch-1 Skim-RNN loop
# (models/skim_rnn.py) and the batch-1 encoder layer on a few tokens (models/transkimmer.py).
SOURCES = [Path(__file__).resolve().parent / "csrc" / name
           for name in ("sru_cpu.cpp", "skip_rnn_cpu.cpp", "skip_rnn_train_cpu.cpp",
                        "skim_rnn_cpu.cpp", "transkimmer_cpu.cpp")]
# Headers the sources include (not compiled alone, but hashed with them: see library_path).
HEADERS = [Path(__file__).resolve().parent / "csrc" / name for name in ("kernels_common.h",)]
# A checkout builds into its own build/ext; an installed package into the user's cache.
_DEFAULT_DIR = (REPO_ROOT / "build" / "ext" if (REPO_ROOT / "pyproject.toml").is_file()
                else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "skimviz" / "ext")
BUILD_DIR = Path(os.environ.get("SKIMVIZ_EXT_DIR") or _DEFAULT_DIR)
# -fopenmp: at::parallel_for is inline OpenMP code; at run time it binds to the libgomp that
# torch has already loaded, so torch.set_num_threads applies to it too.
FLAGS = ["-O3", "-std=c++20", "-fPIC", "-shared", "-fopenmp",
         f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"]
# at::vec::Vectorized as torch's own AVX2 kernels compile it (its exp/tanh call the SLEEF that
# libtorch_cpu exports), if this CPU has AVX2; else its portable scalar version. The flags are
# part of the library's name, so a build for another CPU is not picked up.
if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
    FLAGS += ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
else:
    FLAGS += ["-DCPU_CAPABILITY=DEFAULT"]

_ops: Optional[Any] = None


def library_path() -> Path:
    """Where the library for the current sources and headers, torch version and flags is (or
    would be)."""
    key = hashlib.sha256(b"".join(s.read_bytes() for s in SOURCES + HEADERS)
                         + torch.__version__.encode()
                         + " ".join(FLAGS).encode()).hexdigest()[:16]
    return BUILD_DIR / f"skimviz_ops_{key}.so"


_LIBRARY = library_path()


def _torch_paths() -> Tuple[List[str], List[str]]:
    from torch.utils import cpp_extension  # imports setuptools: only when building
    return ([str(p) for p in cpp_extension.include_paths()],
            [str(p) for p in cpp_extension.library_paths()])


def compile_commands(output: Path, objdir: Path) -> Tuple[List[List[str]], List[str]]:
    """The compiler command lines: one per source (``-c`` into ``objdir``, run in parallel),
    then the link of their objects into ``output``."""
    cxx = os.environ.get("CXX", "c++")
    includes, libs = _torch_paths()
    compiles = [[cxx, "-c", str(src), "-o", str(objdir / (src.stem + ".o")), *FLAGS]
                + [f"-I{p}" for p in includes] for src in SOURCES]
    link = ([cxx, *(str(objdir / (src.stem + ".o")) for src in SOURCES), "-o", str(output),
             *FLAGS] + [f"-L{p}" for p in libs] + [f"-Wl,-rpath,{p}" for p in libs]
            + ["-lc10", "-ltorch_cpu"])
    return compiles, link


def _run(cmd: List[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def build(verbose: bool = False, jobs: Optional[int] = None) -> Path:
    """Compile the extension (a no-op if it is already built) and return the library's path.
    The sources compile in parallel, ``jobs`` at a time (default: one per core).

    Raises ``RuntimeError`` with the compiler's output if compilation fails.
    """
    if _LIBRARY.is_file():
        return _LIBRARY
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=BUILD_DIR)  # then an atomic rename
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory(dir=BUILD_DIR) as objdir:
            compiles, link = compile_commands(Path(tmp), Path(objdir))
            jobs = max(1, min(len(compiles), jobs or os.cpu_count() or 1))
            with ThreadPoolExecutor(jobs) as pool:
                for cmd in compiles:
                    if verbose:
                        print(shlex.join(cmd), flush=True)
                list(pool.map(lambda c: _run(c, f"compiling {Path(c[2]).name}"), compiles))
            if verbose:
                print(shlex.join(link), flush=True)
            _run(link, "linking the extension")
        os.replace(tmp, _LIBRARY)
        for pattern in ("skimviz_ops_*.so", "sru_cpu_*.so"):  # older sources, flags or names
            for stale in BUILD_DIR.glob(pattern):
                if stale != _LIBRARY:
                    stale.unlink(missing_ok=True)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return _LIBRARY


def load() -> Optional[Any]:
    """``torch.ops.skimviz`` if the extension is built (loading it once), else ``None``."""
    global _ops
    if _ops is None and _LIBRARY.is_file():
        try:
            torch.ops.load_library(str(_LIBRARY))
            _ops = torch.ops.skimviz
        except (OSError, RuntimeError) as exc:  # e.g. built against another libtorch
            warnings.warn(f"skimviz: could not load {_LIBRARY}: {exc}; using PyTorch instead")
    return _ops


load()  # at import: pick up an existing build, never compile


def ensure() -> Optional[Any]:
    """:func:`load`, building the extension first if it is not built yet and
    ``SKIMVIZ_EXT_AUTOBUILD`` is not "0": what the ``skimviz`` command does on first use. A
    failed build (no compiler) only warns; the PyTorch fallback runs."""
    global _ops
    if load() is not None or os.environ.get("SKIMVIZ_EXT_AUTOBUILD") == "0":
        return _ops
    print("skimviz: compiling the C++ kernels once (about a minute; "
          "SKIMVIZ_EXT_AUTOBUILD=0 skips it)…", file=sys.stderr, flush=True)
    try:
        build()
    except (RuntimeError, OSError) as exc:
        warnings.warn(f"skimviz: the C++ kernels could not be built ({str(exc)[:300]}); "
                      "using PyTorch instead")
        return None
    return load()


def backend(env_var: str) -> str:
    """The backend a model's CPU path uses: "cpp" if the extension is loaded, else "python";
    also "python" when the environment variable ``env_var`` (e.g. ``SKIMVIZ_SKIP_BACKEND``) is
    "python" (forcing the fallback)."""
    if os.environ.get(env_var) == "python" or load() is None:
        return "python"
    return "cpp"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skimviz._ext", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "status"])
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            print(build(verbose=True))
        except (RuntimeError, OSError) as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0 if load() is not None else 1
    print(f"{_LIBRARY}: {'built' if _LIBRARY.is_file() else 'not built'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
