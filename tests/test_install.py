"""The library installs as a package: `pip install .` gives `import skimviz` and the `skimviz`
command from any folder, with the C++ sources shipped for the first-use build."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_pip_install_gives_the_package_and_the_command(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "install",
                    "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    pkg = target / "skimviz"
    assert (pkg / "csrc" / "kernels_common.h").is_file()
    assert {p.name for p in (pkg / "csrc").glob("*.cpp")} >= {"sru_cpu.cpp", "skip_rnn_cpu.cpp"}
    assert not (target / "pages").exists() and not (target / "ui").exists()   # the app stays out
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "SKIMVIZ_EXT_DIR": str(tmp_path / "ext")}
    code = "import skimviz, skimviz.models; print(skimviz.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    assert out.strip().startswith(str(target))                # not the checkout's copy
    cmd = target / "bin" / "skimviz"
    help_ = subprocess.run([str(cmd), "--help"], cwd=elsewhere, env=env, capture_output=True,
                           text=True, timeout=300)
    assert help_.returncode == 0 and "usage: skimviz" in help_.stdout
    status = subprocess.run([str(cmd), "ext", "status"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 0 and str(tmp_path / "ext") in status.stdout
