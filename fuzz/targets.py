"""The Python fuzz targets: each takes the fuzzer's bytes and fails only on a bug.

`check_model`: `.tflite` bytes -> generated C (both kernel sets), or a clean
refusal: a `UserError` whose message is one line. Seeds: small real models
(fuzz/corpus/model/).

`check_protocol`: bytes a device sends -> the host's results, or a clean error.
The input, cut into reads of 1..64 bytes (the first byte picks the size), is
served to `DeviceClient` by a transport that never waits, through the session
`run` holds: INFO, OP_NAMES, INVOKE, PROFILE. A result or a `UserError`
(DeviceError, DeviceTimeout, DeviceFault) is fine. Seeds: replies recorded from
a host firmware (fuzz/corpus/protocol/).

Any other exception is a bug. `fuzz/atheris_run.py` runs them coverage-guided;
tests/test_fuzz_corpus.py replays the saved corpus through them.
"""

from tinyml_ptq.compiler.codegen import generate_model_sources
from tinyml_ptq.compiler.tflite_reader import parse_tflite
from tinyml_ptq.core.errors import UserError
from tinyml_ptq.device.protocol import DeviceClient, FrameDecoder


def _one_line(exc: UserError) -> None:
    if "\n" in str(exc):
        raise AssertionError(f"an error of more than one line: {exc!r}") from None


def check_model(data: bytes) -> None:
    try:
        graph = parse_tflite(data, origin="fuzz.tflite")
        for kernels in ("reference", "dsp"):
            generate_model_sources(graph, data, kernels=kernels)
    except UserError as exc:
        _one_line(exc)


class ReplayTransport:
    """The fuzz input as the device's side of the line; requests go nowhere."""

    def __init__(self, data: bytes):
        self.chunk = 1 + (data[0] % 64) if data else 1
        self.data, self.pos = data[1:], 0

    def write(self, data: bytes) -> None:
        pass

    def read(self, timeout: float) -> bytes:
        part = self.data[self.pos:self.pos + self.chunk]
        self.pos += len(part)
        return part


def check_protocol(data: bytes) -> None:
    client = DeviceClient(ReplayTransport(data), timeout=0.0, invoke_timeout=0.0, retries=2, silent_retries=0,
                          quiet=0.0)
    try:
        info = client.info()
        client.op_names()
        client.invoke(bytes(info.input_size))
        client.profile()
    except UserError as exc:
        _one_line(exc)
    decoder = FrameDecoder(max_payload=1024)  # the scanner on its own, over the whole input
    decoder.feed(data)
    while (frame := decoder.next_frame()) is not None:
        assert len(frame.payload) <= 1024
    decoder.device_text()


TARGETS = {"model": check_model, "protocol": check_protocol}
