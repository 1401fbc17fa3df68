"""Run a test script on two logical CPU devices in a fresh process (logical devices must be
set before TensorFlow initialises, so it cannot share the pytest process).

The script body may use `tf`, `np`, `json`, `os`, `sys` (the repository is on sys.path) and
reports by printing one line `RESULT <json>`; `run_two_replicas` returns that JSON.
"""
import json
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]

PREAMBLE = textwrap.dedent(r'''
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    sys.path.insert(0, sys.argv[1])
    import numpy as np
''')


def run_two_replicas(tmp_path, body: str, timeout: int = 240):
    """The RESULT JSON the script (PREAMBLE + `body`) prints; fails with its stderr if none."""
    script = tmp_path / "two_replicas.py"
    script.write_text(PREAMBLE + textwrap.dedent(body))
    proc = subprocess.run([sys.executable, str(script), str(ROOT)], capture_output=True,
                          text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])
