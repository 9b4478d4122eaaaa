"""How the entry points speak to people: one line per problem, and an exit status per kind.

- a bad config value, unusable data, model or store: ``invalid config: <key>: …`` or
  ``error: …``, exit status 2;
- a run that failed (it diverged, a job of a sweep failed, tracking broke mid-run): exit 1;
- Ctrl-C: ``interrupted (Ctrl-C)``, exit 130; SIGTERM: ``interrupted (SIGTERM)``, exit 143.

Anything else is a bug and keeps its traceback. Nothing heavy is imported here.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

EXIT_INTERRUPTED = {"Ctrl-C": 130, "SIGTERM": 143}


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Errors in what the user gave: config, data, model file, store, Hydra's own parsing."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from mlplab.config import ConfigError
    from mlplab.core import ModelFileError
    from mlplab.data import DataError
    from mlplab.preprocessing import InputError
    from mlplab.tracking import StoreError

    return ConfigError, DataError, InputError, ModelFileError, StoreError, HydraException, OmegaConfBaseException


def user_errors() -> tuple[type[BaseException], ...]:
    """Every error that is reported in one line (the usage errors and a diverging run)."""
    from mlplab.core import DivergenceError

    return (*_usage_errors(), DivergenceError)


def _signal_name(exc: KeyboardInterrupt) -> str:
    return exc.args[0] if exc.args and exc.args[0] in EXIT_INTERRUPTED else "Ctrl-C"


def describe(exc: BaseException) -> str:
    """One line: ``invalid config: <key>: <problem>``, ``interrupted (…)`` or ``error: <problem>``."""
    from mlplab.config import ConfigError

    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted ({_signal_name(exc)})"
    if isinstance(exc, ConfigError):
        return f"invalid config: {exc}"
    text = "; ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    if not isinstance(exc, user_errors()):
        text = f"{type(exc).__name__}: {text}"
    return f"error: {text}"


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED[_signal_name(exc)]
    return 2 if isinstance(exc, _usage_errors()) else 1


def from_hydra(exc: BaseException, overrides: list[str]) -> BaseException:
    """Hydra's composition errors in our words: a :class:`~mlplab.config.ConfigError` naming the key
    and what is valid (Hydra would suggest ``+key=…``, which only moves the error)."""
    import re

    from mlplab.config import ConfigError, compose, override_key

    if isinstance(exc.__cause__, ConfigError):  # raised by a plugin Hydra instantiated (the sweeper's checks)
        return exc.__cause__
    text = str(exc)
    missing = re.match(r"In '[^']*': Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        return ConfigError(group.replace("/", "."), f"no option {option!r}; valid: {', '.join(options)}")
    unknown = re.match(r"Could not override '([^']+)'", text)
    if unknown:
        key = unknown.group(1)
        section, _, name = key.rpartition(".")
        others = [o for o in overrides if override_key(o) != key]
        try:
            node = compose(others)
            for part in filter(None, section.split(".")):
                node = node[part]
            return ConfigError(key, f"unknown key; valid: {', '.join(sorted(node))}")
        except Exception:  # the rest does not compose either: Hydra's own words then
            return exc
    return exc


def fail(prog: str, exc: BaseException) -> None:
    """Print the one line for ``exc`` and exit with its status."""
    print(f"{prog}: {describe(exc)}", file=sys.stderr, flush=True)
    raise SystemExit(exit_code(exc))


def interrupt_on_sigterm() -> None:
    """SIGTERM raises ``KeyboardInterrupt("SIGTERM")``: runs close as KILLED, not left RUNNING."""

    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, handler)


def stage_main(name: str, conf_dir: Path) -> None:
    """``python pipelines/<stage>.py``: one DVC stage on ``params.yaml`` in the current folder (DVC's
    workspace: the project, or the temporary copy a queued experiment runs in)."""
    interrupt_on_sigterm()
    prog = f"mlplab {name}"
    try:
        from mlplab.config import project_root
        from mlplab.run import dvc_stage

        result = dvc_stage(name, Path.cwd(), project_root(conf_dir))
    except user_errors() + (KeyboardInterrupt,) as exc:
        fail(prog, exc)
    finish(prog, result, print)


def finish(prog: str, result, say: Callable[[str], None]) -> None:
    """``say`` the run's summary line; a tracking failure is one more line and exit status 1."""
    say(result.summary())
    if result.registered:
        say(f"mlplab: {result.registered}")
    if result.tracking_failure:
        print(f"{prog}: tracking failed ({result.tracking_failure}); the outputs are written", file=sys.stderr)
        raise SystemExit(1)


def hydra_main(job: Callable[[], None]) -> None:
    """Run a ``@hydra.main`` task: Hydra's own errors (a bad override, a missing option) and ours
    come out as one line, an interrupted or broken sweep closes its runs first."""
    from mlplab import sweep

    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises; the printing is ours
    # joblib's resource tracker (a process of its own) warns at exit when killed workers left it
    # semaphores to clean up; it does clean them, and its two lines would follow our one line
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                          "ignore:resource_tracker:UserWarning"]))
    interrupt_on_sigterm()
    try:
        job()
    except SystemExit:
        raise
    except (KeyboardInterrupt, Exception) as exc:
        sweep.abort(exc)
        from hydra.errors import HydraException

        if isinstance(exc, HydraException):
            exc = from_hydra(exc, [a for a in sys.argv[1:] if not a.startswith("-")])
        if isinstance(exc, (*user_errors(), KeyboardInterrupt)) or sweep.is_lost_worker(exc):
            fail("mlplab", exc)
        raise
