"""Interop: every format a tfcompact model goes out in, and released TF1 checkpoints coming in.

- `tf1_names`: the exact TF1 variable names and shapes per architecture (original releases).
- `name_maps`: the (TF1 name, Keras variable path, transform) table per architecture, checked
  against the model both ways.
- `tf1_checkpoint`: read/write name-based TF1 checkpoints (`model.ckpt.{index,data-*}`).
- `convert`: `tfcompact export` / `tfcompact import-tf1` workflows (atomic output directories).
- `savedmodel` / `preprocessing`: TF Hub "common SavedModel API for text" encoder and
  preprocessor; text -> embeddings needs only TensorFlow and tensorflow-text.
- `tflite`: fixed-shape TFLite export (fp32, fp16, dynamic-range) and the SavedModel check.
- `hf_names` / `huggingface`: HuggingFace directories (config.json + model.safetensors) out and
  in, without torch.
- `hf_parity`: optional check that HuggingFace's TF1 loaders read our exports exactly.
"""

# `tfcompact export --format`: here so the command line can list them without importing TensorFlow.
EXPORT_FORMATS = ("tf1", "savedmodel", "tflite", "huggingface")
