"""vsvsr: temporally stable video super-resolution for VapourSynth."""

from setuptools import find_packages, setup

RUNTIME = [
    "numpy>=1.26",
    "vapoursynth>=74",  # R81 verified; >= 74 needs Python 3.12
    "vapoursynth-bestsource",  # the source filter the CLI and examples use
    "imageio-ffmpeg>=0.5",  # ships an ffmpeg binary (libx264/libx265/ffv1), found at run time
    "onnxruntime>=1.18",  # the CPU backend every machine has
    "openvino>=2026.4",  # the fast CPU backend (bf16 on AMX/AVX512-BF16), auto's CPU pick
    "pillow>=10",
    "tqdm>=4.66",
    "scikit-image>=0.22",  # ships the photographs the built-in sample clip is made from
]
TORCH = ["torch==2.14.1"]
WEB = ["starlette==1.10.0", "uvicorn==0.54.0"]  # vsvsr serve
CLUSTER = ["ray==2.60.0"]  # vsvsr farm

setup(
    name="vsvsr",
    version="0.1.0",
    description="Temporally stable recurrent video super-resolution for VapourSynth",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.12",
    packages=find_packages(include=["vsvsr", "vsvsr.*", "plugin_build", "plugin_build.*"]),
    package_data={"vsvsr": ["py.typed", "models/weights/*.onnx", "models/weights/*.pth",
                            "models/weights/*.json", "web/static/*"]},
    install_requires=RUNTIME,
    extras_require={
        "ort": [],  # onnxruntime is a runtime requirement; kept so 'vsvsr[ort]' hints work
        "export": ["onnx>=1.16"],
        "train": TORCH + ["onnx>=1.16", "matplotlib>=3.8", "pyyaml>=6",
                          "opencv-python-headless>=4.8"],  # cv2: tOF in vsvsr eval
        "cuda": ["cupy-cuda12x"],
        "tensorrt": ["tensorrt"],
        "scenechange": ["vapoursynth-scenechange"],
        "web": WEB,
        "cluster": CLUSTER,
        "dev": TORCH + WEB + CLUSTER + ["onnx>=1.16", "pytest>=8", "pytest-timeout", "ruff",
                                        "httpx2==2.16.2",  # starlette's test client
                                        "selenium==4.51.0",  # the browser test (chromium)
                                        "vapoursynth-scenechange", "matplotlib>=3.8",
                                        "pyyaml>=6", "opencv-python-headless>=4.8"],
    },
    entry_points={"console_scripts": ["vsvsr=vsvsr.cli.main:main"]},
)
