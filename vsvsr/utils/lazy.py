"""The one way vsvsr imports optional heavy packages."""

from __future__ import annotations

import importlib
from types import ModuleType

from vsvsr.errors import MissingDependencyError

#: Which pip extra brings which module, for the error message.
_EXTRAS: dict[str, str] = {
    "torch": "train",
    "onnx": "export",
    "onnxruntime": "ort",
    "tensorrt": "tensorrt",
    "cupy": "cuda",
    "matplotlib": "train",
    "yaml": "train",
    "cv2": "train",
    "starlette": "web",
    "uvicorn": "web",
    "ray": "cluster",
}
#: Modules whose pip distribution has another name, for the message.
_DISTRIBUTIONS: dict[str, str] = {"cv2": "opencv-python-headless"}


def lazy_import(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise an error that says how to install it.

    Args:
        module: the module to import, e.g. ``"torch"``.
        feature: what needs it, for the message (e.g. ``"the PyTorch backend"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top)
        hint = f"pip install 'vsvsr[{extra}]'" if extra else f"pip install {top}"
        dist = f" ({_DISTRIBUTIONS[top]} on PyPI)" if top in _DISTRIBUTIONS else ""
        raise MissingDependencyError(
            f"{feature} needs the '{top}' package{dist}, which could not be imported ({exc}); "
            f"install it with: {hint}"
        ) from exc
