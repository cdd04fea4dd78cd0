"""Results in Mesa's CI expectation syntax, so a Mesa developer can diff the emulated board's
verdicts against `src/gallium/drivers/rocket/ci/rocket-rk3588-fails.txt`.

Mesa's `test_teflon` (src/gallium/targets/teflon/test_teflon.cpp, Mesa main) runs each model on
TFLite's CPU kernels and through the delegate and fails it when any output element differs by more
than TOLERANCE = 2 (uint8); its per-op model tests are named `Models.Op/<net>_<NNN>` after
`$TEFLON_TEST_DATA/models/<net>/<NNN>.tflite`. Lines are `NAME,Pass|Fail|Crash`.
"""
import os
import re

import board

TOLERANCE = 2
RESULTS = os.path.join(board.BUILD, "mesa-ci-results.txt")
# Mesa's rocket CI on a real RK3588 board (Rock 5B): the Models.Op lines of
# golden/mesa-rk3588-fails.txt and -skips.txt (see golden/README.md for where they come from).
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")
BOARD_FAILS = os.path.join(GOLDEN, "mesa-rk3588-fails.txt")
BOARD_SKIPS = os.path.join(GOLDEN, "mesa-rk3588-skips.txt")
NETS = {"mobiledet-": "mobiledet", "mb-": "mobilenetv1", "yolox-": "yolox"}
WHOLE = {"ssdlite_mobiledet_coco_qat_postprocess": "mobiledet",
         "mobilenet_v1_1.0_224_quant": "mobilenetv1", "yolox": "yolox"}


def name(model_stem):
    """Mesa's test name for one of our model files (mobiledet-086 -> Models.Op/mobiledet_086)."""
    for prefix, net in NETS.items():
        if model_stem.startswith(prefix):
            return f"Models.Op/{net}_{model_stem[len(prefix):]}"
    return f"Models.Op/{WHOLE[model_stem]}_{model_stem}"


def verdict(max_abs_diff):
    return "Fail" if max_abs_diff > TOLERANCE else "Pass"


def results_path():
    """build/mesa-ci-results.txt, or the board target's (board.RESULTS) on a board."""
    return os.path.join(board.RESULTS, "mesa-ci-results.txt")


def update(results):
    """Merge {test name: verdict} into build/mesa-ci-results.txt (other suites' lines kept;
    build/board/ on a board)."""
    lines, path = {}, results_path()
    if os.path.exists(path):
        with open(path) as f:
            for ln in f:
                if "," in ln:
                    n, v = ln.strip().rsplit(",", 1)
                    lines[n] = v
    lines.update(results)
    with open(path, "w") as f:
        for n in sorted(lines):
            f.write(f"{n},{lines[n]}\n")


def board_fails():
    """{test name: verdict} of the real board's expectation list (Fail/Crash lines only)."""
    out = {}
    with open(BOARD_FAILS) as f:
        for ln in f:
            ln = ln.strip()
            if ln and not ln.startswith("#") and "," in ln:
                n, v = ln.rsplit(",", 1)
                out[n] = v
    return out


def board_skips():
    """Patterns of the tests Mesa's CI does not run on the board."""
    with open(BOARD_SKIPS) as f:
        return [re.compile(ln.strip()) for ln in f if ln.strip() and not ln.startswith("#")]


def compare(results):
    """Where the emulated board's verdicts part from the real board's list, for the tests run
    that the board's CI does not skip: (fail here but pass on the board, pass here but fail on
    the board)."""
    real, skips = board_fails(), board_skips()
    run = {n: v for n, v in results.items() if not any(p.fullmatch(n) for p in skips)}
    extra = sorted(n for n, v in run.items() if v != "Pass" and n not in real)
    missing = sorted(n for n, v in run.items() if v == "Pass" and n in real)
    return extra, missing
