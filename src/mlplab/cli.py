"""What the entry points in ``pipelines/`` share: reading the config and reporting errors.

Errors that a user can fix (a bad config value, unusable data or model files, a diverging
run) are printed as one line naming the key or file, with exit status 2 for config and data
errors and 1 for a failed run; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

PARAMS_FILE = "params.yaml"


def user_errors() -> tuple[type[BaseException], ...]:
    from mlplab.config import ConfigError
    from mlplab.core import DivergenceError, ModelFileError
    from mlplab.data import DataError

    return ConfigError, DataError, ModelFileError, DivergenceError


def exit_code(exc: BaseException) -> int:
    from mlplab.config import ConfigError
    from mlplab.data import DataError

    return 2 if isinstance(exc, (ConfigError, DataError)) else 1


def describe(exc: BaseException) -> str:
    """``invalid config: <key>: <problem>`` or ``error: <problem>``."""
    from mlplab.config import ConfigError

    return f"{'invalid config' if isinstance(exc, ConfigError) else 'error'}: {exc}"


def report(prog: str, exc: BaseException) -> str:
    """Print the one line for ``exc`` to stderr; return what it says after the program name."""
    message = describe(exc)
    print(f"{prog}: {message}", file=sys.stderr)
    return message


def repo_root() -> Path:
    """The folder DVC runs the stage in: the repository, or the temporary copy of it that a
    queued experiment runs in (where ``DVC_ROOT`` still names the original repository)."""
    return Path.cwd()


def stage_main(stage: Callable, name: str) -> None:
    """Run one DVC stage on ``params.yaml``; a user's error exits with one line."""
    from mlplab.config import read_params

    root = repo_root()
    try:
        stage(read_params(root / PARAMS_FILE), root)
    except user_errors() as exc:
        report(f"mlplab {name}", exc)
        sys.exit(exit_code(exc))
    except KeyboardInterrupt:
        print(f"mlplab {name}: interrupted", file=sys.stderr)
        sys.exit(130)


def interrupt_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so runs are closed as KILLED, not left RUNNING."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
