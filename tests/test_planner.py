"""Arena planner: valid placements on random problems, and the real models' arenas."""


import numpy as np
import pytest

from tinyml_ptq.compiler.codegen import generate_model_sources
from tinyml_ptq.compiler.planner import ALIGNMENT, Buffer, _place_best, live_lower_bound, plan_memory
from tinyml_ptq.compiler.tflite_reader import read_tflite

from conftest import SHARED_MODELS as MODELS_DIR

# TFLite Micro's recording allocator on the same files (models README, 64-bit host).
TFLM_ARENA = {"kws_ref_model_int8": 24272, "resnet8_cifar10_int8": 55984, "vww_96_int8": 103680, "ad01_int8": 3984}


def _assert_valid(buffers):
    for a in buffers:
        assert a.offset >= 0 and a.offset % ALIGNMENT == 0
        for b in buffers:
            if a is not b and a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)


@pytest.mark.parametrize("seed", range(30))
def test_random_lifetimes_get_valid_placements(seed):
    rng = np.random.default_rng(seed)
    buffers = []
    for i in range(int(rng.integers(1, 25))):
        first = int(rng.integers(0, 15))
        buffers.append(Buffer(f"t{i}", int(rng.integers(1, 5000)), first, first + int(rng.integers(0, 5))))
    _place_best(buffers)
    _assert_valid(buffers)
    arena = max(b.offset + b.size for b in buffers)
    assert arena >= live_lower_bound(buffers) - ALIGNMENT


@pytest.mark.parametrize("name", sorted(TFLM_ARENA))
def test_mlperf_arena_reaches_live_bound_and_beats_tflm(name):
    path = MODELS_DIR / f"{name}.tflite"
    graph = read_tflite(path)
    sources = generate_model_sources(graph, path.read_bytes())
    _assert_valid(sources.plan.buffers)
    separate = plan_memory(graph, sources.steps, inplace=False)
    assert separate.arena_bytes == separate.live_lower_bound() == sources.live_lower_bound
    assert sources.arena_bytes <= sources.live_lower_bound  # in-place steps may go below (tests/test_inplace.py)
    assert sources.arena_bytes < TFLM_ARENA[name]
