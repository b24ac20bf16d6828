#!/usr/bin/env python3
"""Run a Python fuzz target (fuzz/targets.py) under atheris, coverage-guided over tinyml_ptq.

    python fuzz/atheris_run.py model|protocol CORPUS_DIR [libFuzzer flags, e.g. -max_total_time=600]
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
with atheris.instrument_imports(include=["tinyml_ptq", "targets"]):
    from tinyml_ptq.compiler.lowering import supported_operators

    import targets

    supported_operators()  # imports every lowering module (they load lazily) here, to be instrumented

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in targets.TARGETS:
        os.environ["FUZZ_TARGET"] = sys.argv.pop(1)  # -merge=1 runs this script again, without the name
    target = targets.TARGETS[os.environ["FUZZ_TARGET"]]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
