"""tfcompact: compact Chinese language models on TPUs, from raw corpus to every export format."""
import os as _os

# Keras 3 picks its backend at import time; this project's models run on TensorFlow.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
