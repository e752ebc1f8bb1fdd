from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.tags import sys_tags

from vibe_quant.errors import ConfigError, UserError
from vibe_quant.rl.torch_setup import CPU_INDEX, check_cpu_build, find_cpu_wheel, install_command


def this_platform_wheel(folder: Path) -> Path:
    tag = next(t for t in sys_tags() if t.interpreter == "cp311" and t.abi == "cp311")
    path = folder / f"torch-2.13.0+cpu-cp311-cp311-{tag.platform}.whl"
    path.write_bytes(b"")
    return path


@pytest.fixture
def no_explicit_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VQ_TORCH_WHEEL", raising=False)


def test_find_cpu_wheel_looks_in_pip_find_links_first(tmp_path: Path, monkeypatch, no_explicit_wheel) -> None:
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-win_amd64.whl").write_bytes(b"")  # another platform
    (tmp_path / "torch-2.12.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")  # another version
    wheel = this_platform_wheel(tmp_path)
    monkeypatch.setenv("PIP_FIND_LINKS", f"https://example.invalid/wheels file://{tmp_path}")
    assert find_cpu_wheel() == wheel


def test_find_cpu_wheel_skips_a_folder_without_a_fitting_wheel(tmp_path: Path, monkeypatch, no_explicit_wheel) -> None:
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    (empty / "torch-2.13.0+cpu-cp311-cp311-win_amd64.whl").write_bytes(b"")
    wheel = this_platform_wheel(full)
    monkeypatch.setenv("PIP_FIND_LINKS", f"{empty} {full}")
    assert find_cpu_wheel() == wheel


def test_vq_torch_wheel_wins_and_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = this_platform_wheel(tmp_path)
    monkeypatch.setenv("VQ_TORCH_WHEEL", str(wheel))
    monkeypatch.setenv("PIP_FIND_LINKS", "/nowhere")
    assert find_cpu_wheel() == wheel
    monkeypatch.setenv("VQ_TORCH_WHEEL", str(tmp_path / "missing.whl"))
    with pytest.raises(ConfigError, match=r"VQ_TORCH_WHEEL=.*missing\.whl.*Fix: point it at the CPU wheel"):
        find_cpu_wheel()


def test_install_command_uses_the_wheel_or_the_cpu_index_never_pypi(tmp_path: Path) -> None:
    wheel = tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert install_command(wheel, python="/py", uv="/bin/uv") == [
        "/bin/uv", "pip", "install", "--no-config", "--python", "/py", "--no-deps", str(wheel),
    ]  # fmt: skip
    assert install_command(None, python="/py", uv="") == [
        "/py", "-m", "pip", "install", "--no-deps", "torch==2.13.0", "--index-url", CPU_INDEX,
    ]  # fmt: skip
    assert CPU_INDEX == "https://download.pytorch.org/whl/cpu"
    assert install_command(None)[-3:] == ["torch==2.13.0", "--index-url", CPU_INDEX]
    assert sys.executable in install_command(None)


def stub_torch(version: str, gpu: bool) -> SimpleNamespace:
    return SimpleNamespace(__version__=version, cuda=SimpleNamespace(is_available=lambda: gpu))


def test_a_cuda_build_that_sees_a_gpu_is_refused() -> None:
    assert check_cpu_build(stub_torch("2.13.0+cpu", gpu=False)) == "2.13.0+cpu"
    assert check_cpu_build(stub_torch("2.13.0", gpu=False)) == "2.13.0"  # macOS wheels carry no +cpu
    with pytest.raises(UserError, match=r"torch 2\.13\.0\+cu126 is a CUDA build and sees a GPU.*Fix: uninstall it"):
        check_cpu_build(stub_torch("2.13.0+cu126", gpu=True))


def test_the_session_runs_on_the_cpu_build(cpu_torch: str) -> None:
    import torch

    assert cpu_torch == torch.__version__ == "2.13.0+cpu"
