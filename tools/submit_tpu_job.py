#!/usr/bin/env python3
"""Submit a tfcompact pretraining experiment to a Cloud TPU VM (same as `tfcompact submit`).

    python tools/submit_tpu_job.py --config tpu_configs/albert_base_zh_v3-8.yaml \
        --tpu_name my-tpu --zone europe-west4-a --project my-project --dry_run
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfcompact.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["submit", *sys.argv[1:]]))
