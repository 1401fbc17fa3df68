"""The command line's conventions (tfcompact/cli.py's docstring), checked on the real program:
TensorFlow's start-up log lines hidden unless --verbose, --version without TensorFlow, exit
status 0 / 1 (user error) / 2 (usage) / 130 (interrupted), errors on stderr, results on stdout."""
import importlib.metadata
import os
import re
import subprocess
import sys
import threading

import pytest

import tfcompact
from tfcompact import cli

# A TensorFlow C++ log line as absl writes it: severity letter, date, time, thread, file:line].
# (TF 2.21 writes absl's format; TF 2.20, the TPU line, its older "date time: I file:line] ")
ABSL_LINE = re.compile(r"^(?:[IWEF]\d{4} \d+:\d+:\d+\.\d+ +\d+ "
                       r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] )\S+:\d+\] ", re.M)
BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"

# Lines this machine's TensorFlow 2.21 wrote on `tfcompact doctor` before the filter existed.
ONEDNN = (b"I0000 00:00:1796075653.147002    3302 port.cc:153] oneDNN custom operations are on. "
          b"You may see slightly different numerical results.")
CUDART = (b"I0000 00:00:1796075653.147470    3302 cudart_stub.cc:31] Could not find cuda drivers "
          b"on your machine, GPU will not be used.")
CUINIT = (b"E0000 00:00:1796075655.060334    3302 cuda_platform.cc:52] failed call to cuInit: "
          b"INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
TFLITE_INFO = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
OTHER_WARNING = b"W0000 00:00:1796075983.781399    5049 some_kernel.cc:77] a real warning"
# The same kinds of line as TensorFlow 2.20 (tensorflow-tpu) wrote them in the TPU stand-in.
ONEDNN_220 = (b"2026-11-30 23:12:50.668421: I tensorflow/core/util/port.cc:153] oneDNN custom "
              b"operations are on.")
LIBTPU_220 = (b"2026-11-30 23:12:53.486734: I tensorflow/core/tpu/tpu_api_dlsym_initializer.cc:138] "
              b"FindAndLoadTpuLibrary failed with INTERNAL: Failed to open libtpu libtpu.so")
WARNING_220 = b"2026-11-30 23:12:53.486734: W tensorflow/core/some_kernel.cc:77] a real warning"
OTHER_ERROR = b"E0000 00:00:1796075983.781399    5049 some_kernel.cc:77] a real error"


def _tfcompact(*args, env_extra=None, timeout=300):
    """The installed entry point (`python -m tfcompact.cli`, what the console script calls) in a
    fresh process, with no TF_CPP_MIN_LOG_LEVEL of this test process (in-process calls set it)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "tfcompact.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)


def _vocab_args(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("今天北京的天气很好。\n我们在学校学习中文。\n\n老师讲了一个有趣的故事。\n",
                      encoding="utf-8")
    return ["build-vocab", "--input", str(corpus), "--vocab_size", "200",
            "--output", str(tmp_path / "vocab.txt")]


# ------------------------------------------------------------------ the real program, quiet

def test_presets_writes_nothing_on_stderr():
    r = _tfcompact("presets")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith("preset ")


def test_doctor_imports_tensorflow_without_its_start_up_lines():
    """doctor loads TensorFlow and probes the devices: on this machine TensorFlow writes the
    absl banner, oneDNN, cudart_stub and (E level) cuInit lines; none may show."""
    r = _tfcompact("doctor")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stderr == "", r.stderr
    assert r.stdout.splitlines()[-1] == "doctor: ok"
    assert re.search(r"^tensorflow: +\d+\.\d+", r.stdout, re.M)  # it did load TensorFlow


def test_verbose_brings_tensorflow_lines_back_before_or_after_the_command(tmp_path):
    """build-vocab imports TensorFlow (tensorflow-text's learner) and writes a vocabulary."""
    (tmp_path / "quiet").mkdir()
    quiet = _tfcompact(*_vocab_args(tmp_path / "quiet"))
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert quiet.stdout.startswith("build-vocab: wrote ")  # a result: stdout
    for where in ("before", "after"):
        (tmp_path / where).mkdir()
        argv = _vocab_args(tmp_path / where)
        argv = ["--verbose", *argv] if where == "before" else [*argv, "--verbose"]
        r = _tfcompact(*argv)
        assert r.returncode == 0, r.stderr
        assert ABSL_LINE.search(r.stderr), (where, r.stderr)
        assert (tmp_path / where / "vocab.txt").read_text(encoding="utf-8").startswith("[PAD]\n")


def test_a_level_set_by_the_user_is_kept(tmp_path):
    """TF_CPP_MIN_LOG_LEVEL=0 from the user: everything TensorFlow writes shows, as --verbose."""
    r = _tfcompact(*_vocab_args(tmp_path), env_extra={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert r.returncode == 0 and ABSL_LINE.search(r.stderr), r.stderr


# ------------------------------------------------------------------ --version, exit status

def test_version_without_tensorflow():
    r = _tfcompact("--version")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == f"tfcompact {importlib.metadata.version('tfcompact')}\n"
    assert tfcompact.__version__ == importlib.metadata.version("tfcompact")
    probe = ("import sys; from tfcompact import cli; code = cli.main(['--version']); "
             "print('tensorflow' in sys.modules, 'keras' in sys.modules, code)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120).stdout.splitlines()
    assert out[-1] == "False False 0", out


def test_user_error_is_status_1_and_one_line_on_stderr():
    r = _tfcompact("presets", "electra_bsae_zh")
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfcompact presets: error: "), lines
    assert "electra_bsae_zh" in lines[0]


@pytest.mark.parametrize("argv, expect", [
    (["presets", "--no_such_flag"], "unrecognized arguments: --no_such_flag"),
    (["no-such-command"], "invalid choice: 'no-such-command'"),
    (["build-vocab", "--vocab_size", "many"], "argument --vocab_size: invalid int value: 'many'"),
], ids=["unknown-flag", "unknown-command", "malformed-value"])
def test_usage_error_is_status_2(argv, expect):
    r = _tfcompact(*argv)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("usage: tfcompact") and expect in r.stderr.splitlines()[-1]


@pytest.mark.parametrize("argv", [[], ["--verbose"]], ids=["nothing", "only-verbose"])
def test_no_command_prints_the_help_and_is_status_2(argv):
    r = _tfcompact(*argv)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("usage: tfcompact") and "Exit status:" in r.stderr


def test_help_documents_the_exit_status(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("  0    success", "  1    user error", "  2    usage error", "  130  interrupted"):
        assert line in out, out


def test_interrupted_is_status_130(monkeypatch, capsys):
    from tfcompact.commands import presets

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(presets, "run", interrupted)
    assert cli.main(["presets"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "tfcompact presets: interrupted\n" and captured.out == ""


# ------------------------------------------------------------------ the environment

def test_quiet_sets_the_level_verbose_and_the_user_keep_theirs(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert cli.quiet_tensorflow_logs(verbose=True, filter_fd=False) is None
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    cli.quiet_tensorflow_logs(verbose=False, filter_fd=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"  # warnings and errors stay
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    cli.quiet_tensorflow_logs(verbose=False, filter_fd=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


# ------------------------------------------------------------------ the stderr filter

@pytest.mark.parametrize("line, min_level, drop_noise, kept", [
    (ONEDNN, 1, True, False),          # INFO below WARNING
    (CUDART, 1, True, False),
    (BANNER.encode(), 1, True, False),
    (TFLITE_INFO, 1, True, False),     # the TFLite interpreter's INFO
    (CUINIT, 1, True, False),          # an ERROR line known to mean "no GPU driver"
    (CUINIT, 2, False, True),          # ... shown at a level the user chose
    (CUINIT, 3, False, False),
    (OTHER_WARNING, 1, True, True),
    (OTHER_WARNING, 2, False, False),
    (OTHER_ERROR, 1, True, True),
    (ONEDNN, 0, False, True),
    (ONEDNN_220, 1, True, False),      # TF 2.20's format: INFO below WARNING
    (LIBTPU_220, 1, True, False),
    (WARNING_220, 1, True, True),
    (ONEDNN_220, 0, False, True),
    (b"tfcompact pretrain: error: exp.yaml: field 'x': unknown field", 1, True, True),
    (b"Error: not a log line", 1, True, True),
    (b"INFO:absl:a Python absl line", 1, True, True),  # Python's loggers are not filtered here
], ids=["onednn", "cudart", "banner", "tflite-info", "cuinit", "cuinit-user-2", "cuinit-user-3",
        "warning", "warning-user-2", "error", "level-0", "onednn-tf220", "libtpu-tf220", "warning-tf220",
        "level-0-tf220", "our-error", "E-word", "python-absl"])
def test_which_lines_are_kept(line, min_level, drop_noise, kept):
    assert cli.keep_stderr_line(line + b"\n", min_level, drop_noise) is kept


def _filtered(chunks, min_level=1, drop_noise=True):
    """What filter_stderr writes for `chunks` written one by one into its pipe."""
    src_r, src_w = os.pipe()
    dst_r, dst_w = os.pipe()
    worker = threading.Thread(target=cli.filter_stderr, args=(src_r, dst_w, min_level, drop_noise))
    worker.start()
    for chunk in chunks:
        os.write(src_w, chunk)
    os.close(src_w)
    worker.join(timeout=30)
    os.close(dst_w)
    with os.fdopen(dst_r, "rb") as f:
        out = f.read()
    os.close(src_r)
    return out


def test_filter_keeps_order_partial_lines_and_drops_split_log_lines():
    chunks = [BANNER.encode() + b"\n" + ONEDNN[:30],           # a log line split over two writes
              ONEDNN[30:] + b"\nstep 1/2 | loss 9.5\n",
              b"\rcreate-data: 0.1/0.2 MB", b"\rcreate-data: 0.2/0.2 MB\n",  # progress with \r
              CUINIT + b"\n" + OTHER_WARNING + b"\nlast line without newline"]
    assert _filtered(chunks) == (b"step 1/2 | loss 9.5\n\rcreate-data: 0.1/0.2 MB"
                                 b"\rcreate-data: 0.2/0.2 MB\n" + OTHER_WARNING
                                 + b"\nlast line without newline")


def test_filter_passes_a_partial_line_before_the_writer_finishes():
    """A progress line without a newline must show while the command works, not at its end."""
    src_r, src_w = os.pipe()
    dst_r, dst_w = os.pipe()
    worker = threading.Thread(target=cli.filter_stderr, args=(src_r, dst_w, 1, True))
    worker.start()
    try:
        os.write(src_w, b"\rcreate-data: 0.1/0.2 MB")
        assert os.read(dst_r, 100) == b"\rcreate-data: 0.1/0.2 MB"  # blocks until it is written
    finally:
        os.close(src_w)
        worker.join(timeout=30)
        for fd in (src_r, dst_r, dst_w):
            os.close(fd)


@pytest.mark.parametrize("how", ["no-python", "cannot-import"])
def test_stderr_is_left_alone_when_the_filter_cannot_start(monkeypatch, how):
    """A filter that is not running must not take stderr: every later message would be lost."""
    if how == "no-python":
        monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    else:  # the filter process runs with -I -S: without the package root nothing imports
        monkeypatch.setattr(cli, "__file__", "/nonexistent/tfcompact/cli.py")
    before = os.fstat(2)
    assert cli._start_stderr_filter(1, True) is None
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


_KERAS_NO_GRADIENT = """
import sys, warnings
from tfcompact import cli
if sys.argv[1] == "quiet":
    cli.ignore_python_noise()
import keras
trained, head = keras.Variable([1.0], name="trained"), keras.Variable([2.0], name="head_kernel")
keras.optimizers.SGD(0.1).apply([keras.ops.ones((1,)), None], [trained, head])
warnings.warn("a real warning stays", UserWarning)
"""


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_python_noise_is_hidden_and_real_warnings_stay(mode):
    """Keras's 'Gradients do not exist' (a distillation stage leaving a head alone on purpose)
    is hidden by the program unless --verbose; any other warning still shows."""
    r = subprocess.run([sys.executable, "-c", _KERAS_NO_GRADIENT, mode], capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert r.returncode == 0, r.stderr
    assert "a real warning stays" in r.stderr
    assert ("Gradients do not exist for variables ['head_kernel']" in r.stderr) is (mode == "verbose")
