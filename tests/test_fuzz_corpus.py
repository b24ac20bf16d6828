"""Replay of the saved fuzz corpus (fuzz/corpus/, grown by `make fuzz`): every input the
campaigns kept, crash regressions included, still ends in a result or a clean error."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "fuzz" / "corpus"
sys.path.insert(0, str(REPO / "fuzz"))

from targets import check_model, check_protocol  # noqa: E402


def _inputs(target: str) -> list[Path]:
    files = sorted((CORPUS / target).iterdir())
    assert files, f"fuzz/corpus/{target} is empty"
    return files


def test_model_corpus_is_refused_cleanly_or_generated():
    for path in _inputs("model"):
        check_model(path.read_bytes())


def test_protocol_corpus_gives_results_or_clean_errors():
    for path in _inputs("protocol"):
        check_protocol(path.read_bytes())


def test_frame_parser_corpus_under_address_and_undefined_sanitizers(tmp_path):
    exe = tmp_path / "replay"
    subprocess.run(["gcc", "-std=c99", "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-I", str(REPO / "firmware/app"),
                    str(REPO / "fuzz/firmware/fuzz_frame_parser.c"), str(REPO / "fuzz/firmware/replay.c"),
                    str(REPO / "firmware/app/protocol.c"), "-o", str(exe)], check=True)
    files = _inputs("frame_parser")
    done = subprocess.run([str(exe), *map(str, files)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"{len(files)} inputs replayed", done.stderr[-3000:]


def test_the_sanitized_replay_catches_a_broken_parser(tmp_path):
    """The replay is a real check: the parser with its length check removed overruns the buffer."""
    source = (REPO / "firmware/app/protocol.c").read_text()
    broken = source.replace("if (hdr->length > capacity) {", "if (0) {")
    assert broken != source
    (tmp_path / "protocol.c").write_text(broken)
    exe = tmp_path / "replay"
    subprocess.run(["gcc", "-std=c99", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-I", str(REPO / "firmware/app"), str(REPO / "fuzz/firmware/fuzz_frame_parser.c"),
                    str(REPO / "fuzz/firmware/replay.c"), str(tmp_path / "protocol.c"), "-o", str(exe)], check=True)
    frame = bytes([0xA5, 1, 1, 0]) + (2000).to_bytes(4, "little") + bytes(2004)
    (tmp_path / "long.bin").write_bytes(frame)
    done = subprocess.run([str(exe), str(tmp_path / "long.bin")], capture_output=True, text=True)
    assert done.returncode != 0 and "heap-buffer-overflow" in done.stderr
