"""The board target: `pytest --board USER@HOST[:PORT]` (make test-board BOARD=...) runs the
guest-side suites (test_board.py: the board's check and rocket-smoke; test_teflon_layers.py;
test_teflon_models.py) on a real arm64 board over SSH instead of the emulated board, and only
those. It first checks the board and stops with what is missing (no /dev/accel, no rocket
module, no Teflon, a kernel without rocket), deploys the bundle, and at the end says how many of
the board's NPU tasks the emulator reproduces bit-exactly. --board-ci: the short run (rocket-
smoke, a few per-layer models, MobileDet once). Tables go to build/board/ (ROCKETSIM_RESULTS).
"""
import os

import pytest

import board

BOARD_SUITES = ("test_board.py", "test_teflon_layers.py", "test_teflon_models.py")
CI_TESTS = ("test_board.py::", "test_teflon_layers.py::test_per_layer_models",
            "test_teflon_models.py::test_mobiledet[chelsea]")


def pytest_addoption(parser):
    g = parser.getgroup("board", "a real board over SSH (README: On a real board)")
    g.addoption("--board", default=os.environ.get("ROCKETSIM_BOARD", ""),
                metavar="USER@HOST[:PORT]",
                help="run the guest-side suites on this arm64 board over SSH (its own kernel "
                     "and rocket driver) instead of the emulated board")
    g.addoption("--board-ci", action="store_true",
                help="with --board: the short run (rocket-smoke, a few per-layer models, "
                     "MobileDet once)")


def pytest_configure(config):
    target = config.getoption("--board")
    if not target:
        return
    os.environ["ROCKETSIM_BOARD"] = board.REMOTE = target
    board.RESULTS = os.environ.get("ROCKETSIM_RESULTS") or os.path.join(board.BUILD, "board")
    os.environ["ROCKETSIM_RESULTS"] = board.RESULTS
    if config.getoption("--board-ci"):
        import remote
        os.environ.setdefault("ROCKETSIM_BOARD_MODELS", remote.CI_MODELS)
    os.makedirs(board.RESULTS, exist_ok=True)


def pytest_sessionstart(session):
    if not board.REMOTE:
        return
    import remote
    remote.reset_results()
    try:
        lines = remote.prepare()
    except remote.BoardError as e:
        remote.disconnect()
        pytest.exit(f"board {board.REMOTE}: {e}", returncode=3)
    with open(os.path.join(board.RESULTS, "board-check.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def pytest_collection_modifyitems(config, items):
    remote_run = bool(board.REMOTE)
    ci = remote_run and config.getoption("--board-ci")
    keep, drop = [], []
    for it in items:
        name = os.path.basename(it.nodeid.split("::")[0])
        on_board = name in BOARD_SUITES
        if remote_run:
            ok = on_board and (not ci or any(os.path.basename(it.nodeid).startswith(t)
                                             for t in CI_TESTS))
        else:
            ok = name != "test_board.py"      # board-only tests
        (keep if ok else drop).append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not board.REMOTE:
        return
    import remote
    s = remote.summary()
    tr = terminalreporter
    tr.section(f"board {board.REMOTE}")
    if s:
        tr.write_line(f"{s.get('tasks', 0)} NPU tasks of the board's runs captured and replayed "
                      f"on the host core ({s.get('runs', 0)} runs, {s.get('jobs', 0)} job "
                      f"folders): the emulator reproduces {s.get('identical', 0)} of "
                      f"{s.get('tasks', 0)} bit-exactly; {s.get('differ', 0)} differ "
                      f"({s.get('consequence', 0)} through an earlier task's output)")
        tr.write_line(f"per task: {os.path.join(board.RESULTS, 'board-diff.txt')}")
    tr.write_line(f"tables: {board.RESULTS}/")
    remote.disconnect()
