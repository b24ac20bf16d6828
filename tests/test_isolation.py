"""The native interpreters run in a child process: their aborts are error lines, not our exit."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tinyml_ptq.interpreters.isolation import InterpreterFailure, IsolatedInterpreter
from tinyml_ptq.interpreters.reference import ReferenceInterpreter

from harness import convert_int8


@pytest.fixture(scope="module")
def dead_softmax() -> bytes:
    """A dead layer before a softmax (all-zero weights, as a degenerate MobileNetV2 head gives):
    the converter gives the softmax input scale 7.8e-9, below 2^-26, and TFLM's Prepare abort()s."""
    dense = tf.keras.layers.Dense(4, kernel_initializer="zeros", bias_initializer="zeros")
    dense.build((1, 8))
    return convert_int8(lambda x: tf.nn.softmax(dense(x)), [(8,)])


def test_tflm_really_aborts_on_the_dead_softmax(dead_softmax, tmp_path):
    """What used to happen in-process: exit 134 (SIGABRT), whatever the caller does."""
    (tmp_path / "m.tflite").write_bytes(dead_softmax)
    script = ("from tflite_micro.python.tflite_micro import runtime; import sys; "
              "runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=1 << 20)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.tflite")], capture_output=True)
    assert done.returncode == -6, done


def test_abort_in_tflm_is_an_error_and_the_toolkit_goes_on(dead_softmax, digits_int8_tflite):
    with pytest.raises(InterpreterFailure, match="^the TFLite Micro reference interpreter crashed loading the "
                                                 "model: signal SIGABRT") as info:
        ReferenceInterpreter(dead_softmax)
    assert info.value.crashed and info.value.exit_code == 2
    reference = ReferenceInterpreter(digits_int8_tflite.read_bytes())  # still here, and the next model runs
    assert reference.invoke(np.zeros(reference.input.shape, np.int8)).shape == reference.output.shape


def test_a_wide_flat_softmax_abort_in_invoke_names_its_cause():
    """600 nearly equal logits (an untrained 1000-class head, as EfficientNetB0 built with
    weights=None gives): TFLM's int8 softmax sums 600 exponentials of about 1 and aborts at 512
    in invoke; the error says which operator and what to do. 500 classes stay under the limit."""
    def head(classes):
        dense = tf.keras.layers.Dense(classes, kernel_initializer=tf.keras.initializers.RandomNormal(0, 1e-3, seed=1))
        return convert_int8(lambda x: tf.nn.softmax(dense(x)), [(16,)])

    reference = ReferenceInterpreter(head(600))
    with pytest.raises(InterpreterFailure, match=r"crashed in invoke\(\): signal SIGABRT.*; the likely cause is "
                                                 r"SOFTMAX \(node 1\) over 600 classes: .* train the model") as info:
        reference.invoke(np.full(reference.input.shape, 100, np.int8))
    assert "\n" not in str(info.value)
    narrower = ReferenceInterpreter(head(500))
    assert narrower.invoke(np.full(narrower.input.shape, 100, np.int8)).shape == (1, 500)


def test_an_interpreter_error_is_one_line_and_the_child_ends(digits_int8_tflite):
    reference = ReferenceInterpreter(digits_int8_tflite.read_bytes())
    with pytest.raises(InterpreterFailure, match=r"failed in set_input\(\): \w+Error: .*") as info:
        reference._interp.set_input(np.zeros(3, np.int8), 0)  # the wrong size: TFLM's error, in the child
    assert not info.value.crashed and "\n" not in str(info.value)
    child = reference._interp._child
    reference._interp.close()
    assert child.returncode == 0


def test_segfault_in_the_child_is_reported_with_its_signal(digits_int8_tflite):
    interpreter = IsolatedInterpreter("litert", digits_int8_tflite.read_bytes())
    os.kill(interpreter._child.pid, 11)  # what an out-of-bounds read does to a native interpreter
    with pytest.raises(InterpreterFailure, match=r"LiteRT interpreter crashed in invoke\(\): signal SIGSEGV"):
        interpreter.invoke()


def test_quantize_of_a_degenerate_model_warns_and_writes_the_model(tmp_path):
    """The quantize report's int8 inference (TFLM) aborted with exit 134; now the int8 model is
    written, the report says what it could not measure, and the exit status is 0."""
    inp = tf.keras.Input((8,))
    out = tf.keras.layers.Dense(4, kernel_initializer="zeros", bias_initializer="zeros", activation="softmax")(inp)
    tf.keras.Model(inp, out).save(tmp_path / "dead.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.uniform(-1, 1, (16, 8)).astype(np.float32), y=rng.integers(0, 4, 16))
    done = subprocess.run([sys.executable, "-m", "tinyml_ptq", "quantize", str(tmp_path / "dead.keras"),
                           "--data", str(tmp_path / "data.npz"), "--eval", str(tmp_path / "data.npz"),
                           "-o", str(tmp_path / "dead_int8.tflite")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "warning: quantize report: no accuracy or SQNR of the quantized model: the TFLite Micro reference " \
           "interpreter crashed loading the model: signal SIGABRT" in done.stderr
    assert "Traceback" not in done.stderr and (tmp_path / "dead_int8.tflite").stat().st_size > 0
    assert "calibrating: 16/16" in done.stderr  # the converter's child shows its progress on our stderr


def test_tflm_refusal_names_its_reason():
    """UpSampling2D converts to TILE, which TFLM does not register: 'RuntimeError: TFLM failed to
    allocate tensors' came as a traceback; the error now carries what TFLM printed about it."""
    model = convert_int8(tf.keras.layers.UpSampling2D(2), [(4, 4, 2)], calib_count=4)
    with pytest.raises(InterpreterFailure, match="^the TFLite Micro reference interpreter failed loading the model: "
                                                 "RuntimeError: TFLM failed to allocate tensors; it printed: "
                                                 "Didn't find op for builtin opcode 'TILE'"):
        ReferenceInterpreter(model)


def _children_running(pid: int, marker: str) -> list[int]:
    """Processes whose parent is `pid` and whose command line holds `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and marker in cmdline:
            found.append(int(entry))
    return found


def test_a_converter_crash_is_one_error_line_naming_the_recurrent_layers(tmp_path, capsys):
    """The converter runs in a child: its death by SIGSEGV (TF 2.21's calibrator on some LSTM and
    GRU models) is `error: the TensorFlow converter crashed on MODEL (signal SIGSEGV)`, the layers
    of the kinds known to cause it named, exit status 2, and no output file."""
    import threading
    import time

    from tinyml_ptq.cli import main

    inp = tf.keras.Input((12, 3))
    out = tf.keras.layers.Dense(4, activation="softmax")(tf.keras.layers.LSTM(8, name="lstm_seq")(inp))
    tf.keras.Model(inp, out).save(tmp_path / "rnn.keras")
    np.savez(tmp_path / "data.npz", x=np.random.default_rng(0).normal(size=(8, 12, 3)).astype(np.float32))
    killed = []
    # Children other tests' session fixtures hold open are not the converter: only new ones are.
    earlier = set(_children_running(os.getpid(), "tinyml_ptq.interpreters.isolation"))

    def kill_the_converter():
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for pid in set(_children_running(os.getpid(), "tinyml_ptq.interpreters.isolation")) - earlier:
                os.kill(pid, 11)  # what the calibrator's bad read does
                killed.append(pid)
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_the_converter)
    watcher.start()
    try:
        status = main(["quantize", str(tmp_path / "rnn.keras"), "--data", str(tmp_path / "data.npz"),
                       "-o", str(tmp_path / "rnn_int8.tflite")])
    finally:
        watcher.join()
    err = capsys.readouterr().err
    assert killed and status == 2
    line = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(line) == 1 and "Traceback" not in err, err
    assert line[0].startswith(f"error: the TensorFlow converter crashed on {tmp_path / 'rnn.keras'} "
                              "(signal SIGSEGV"), line
    assert "LSTM 'lstm_seq'" in line[0]
    assert not (tmp_path / "rnn_int8.tflite").exists()
    assert set(_children_running(os.getpid(), "tinyml_ptq.interpreters.isolation")) - earlier == set()
