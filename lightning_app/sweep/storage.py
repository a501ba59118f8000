"""Study storage: open any Optuna RDB URL, create a study exactly once, reload it to resume.

The default storage is an SQLite file in the sweep directory. Several sweep processes (on one
machine with SQLite, or on several with PostgreSQL) may start at once: creation is serialized by
a file lock (SQLite) and retried (any database), so they never crash racing to create the study.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_app.errors import ConfigError, SweepError

log = logging.getLogger(__name__)

DB_FILE = "optuna.db"
ATTR_DIRECTIONS = "lapp:directions"
ATTR_OBJECTIVES = "lapp:objectives"
ATTR_SPACE = "lapp:search_space"


def default_url(sweep_dir: str | Path) -> str:
    """``sqlite:///<sweep_dir>/optuna.db`` with an absolute path (jobs may run elsewhere)."""
    return f"sqlite:///{(Path(sweep_dir) / DB_FILE).resolve()}"


def normalize_url(url: str) -> str:
    """A relative SQLite path made absolute, so every job opens the same file; a bare
    ``postgresql://`` URL gets the installed driver (SQLAlchemy 2.1 assumes psycopg 3, the
    ``postgres`` extra installs psycopg2)."""
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
            return "postgresql+psycopg2://" + url[len("postgresql://") :]
        return url
    path = _sqlite_path(url)
    if path is None or path.is_absolute():
        return url
    return f"sqlite:///{path.resolve()}"


# This process's open storages by URL, reused by every trial job that runs in it: a storage
# costs a new database connection and Optuna's schema checks (about 50 ms and 13 statements on
# PostgreSQL, a fifth of the server's work per trial), a reused one nothing. A process that
# opens many studies (a test session) keeps the last few.
_SHARED: dict[tuple[int, str], Any] = {}
_SHARED_MAX = 4

PASSWORD_ENV = "LAPP_OPTUNA_STORAGE"  # the full URL, for jobs given a URL without its password
HIDDEN = "***"


def display_url(url: str) -> str:
    """The URL with its password hidden: what is printed and written to files."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not parseable: nothing to hide that we can find
        return url
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def job_url(url: str) -> str:
    """The URL handed to trial jobs: without a password, which then travels in the environment.

    A password would otherwise land in every trial's ``.hydra/overrides.yaml`` and the logs.
    """
    shown = display_url(url)
    if shown != url:
        os.environ[PASSWORD_ENV] = url  # inherited by jobs (in-process, joblib and local workers)
    return shown


def resolve_job_url(url: str) -> str:
    """Inverse of ``job_url`` in the job: the full URL from the environment when it was hidden."""
    if HIDDEN not in url:
        return url
    full = os.environ.get(PASSWORD_ENV, "")
    if not full or display_url(full) != url:
        raise ConfigError(
            f"sweep_trial.storage={url}: the password is not passed in files; set the environment "
            f"variable {PASSWORD_ENV} to the full storage URL where the trial runs"
        )
    return full


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def open_storage(url: str, options: Mapping[str, Any] | None = None):
    """An ``optuna.storages.RDBStorage`` for ``url``, tuned for several processes.

    Args:
        url: the storage URL.
        options: more ``RDBStorage`` keyword arguments (the heartbeat of ``leases``).

    Raises:
        ConfigError: the URL is malformed, its driver is missing, or the database is unreachable.
    """
    import optuna
    from sqlalchemy.exc import ArgumentError

    sqlite = url.startswith("sqlite")
    if sqlite and _sqlite_path(url) is None:
        raise ConfigError(
            f"hydra.sweeper.storage={url!r}: an in-memory database cannot be shared with the trials; "
            "give a file (sqlite:///path/optuna.db) or leave it null for one in the sweep directory"
        )
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # SQLite: wait for another process's write lock instead of failing at once.
    engine_kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    )
    try:
        with warnings.catch_warnings():  # the heartbeat options are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **(options or {}))
    except ImportError as err:
        cause = err.__cause__ or err
        raise ConfigError(
            f"hydra.sweeper.storage={display_url(url)!r}: the database driver is not installed ({cause}); "
            "for PostgreSQL: pip install 'lapp-ml[postgres]'"
        ) from err
    except ArgumentError as err:
        raise ConfigError(
            f"hydra.sweeper.storage={display_url(url)!r}: not a storage URL Optuna can open ({err}); "
            "e.g. sqlite:///path/optuna.db or postgresql://user:password@host/db"
        ) from err


def shared_storage(url: str):
    """This process's storage for ``url``: the one the sweep opened when the job runs in the
    sweep's process, else one opened on the first call and kept for the next trials.

    A forked child (another pid) never reuses its parent's connections.
    """
    storage = _SHARED.get((os.getpid(), url))
    if storage is None:
        storage = open_storage(url)
        _share(url, storage)
    return storage


def _share(url: str, storage: Any) -> None:
    _SHARED.pop((os.getpid(), url), None)
    _SHARED[(os.getpid(), url)] = storage
    while len(_SHARED) > _SHARED_MAX:  # the oldest goes; its connections close with it
        del _SHARED[next(iter(_SHARED))]


@contextlib.contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """An exclusive lock beside an SQLite file while the study is created (no-op otherwise)."""
    path = _sqlite_path(url)
    if path is None:
        yield
        return
    import fcntl

    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def open_study(
    url: str,
    name: str,
    directions: Sequence[str],
    sampler: Any,
    pruner: Any,
    attrs: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
):
    """Load study ``name`` or create it; returns ``(study, created)``.

    Args:
        url: Optuna storage URL.
        name: study name.
        directions: ``maximize``/``minimize`` per objective.
        sampler, pruner: used by this process.
        attrs: what defines the study (objectives, search space); stored when it is created and
            compared when it is resumed.
        options: more ``RDBStorage`` keyword arguments (the heartbeat of ``leases``).

    Raises:
        SweepError: the stored study optimizes other objectives or another search space.
    """
    import optuna

    with creation_lock(url):
        for attempt in range(6):
            try:
                storage = open_storage(url, options)
                try:
                    study = optuna.load_study(
                        study_name=name, storage=storage, sampler=sampler, pruner=pruner
                    )
                    created = False
                except KeyError:
                    study = optuna.create_study(
                        study_name=name,
                        storage=storage,
                        sampler=sampler,
                        pruner=pruner,
                        directions=list(directions),
                    )
                    for key, value in attrs.items():
                        study.set_user_attr(key, json.loads(json.dumps(value)))
                    created = True
                _share(url, storage)
                break
            except (ConfigError, SweepError):
                raise
            except optuna.exceptions.DuplicatedStudyError:
                continue  # another process created it between our load and create: load it
            except Exception as err:  # unreachable, or a racing process's setup: retried
                if attempt == 5:
                    raise SweepError(
                        f"cannot open study {name!r} in hydra.sweeper.storage={display_url(url)}: "
                        f"{type(err).__name__}: {err}"
                    ) from err
                time.sleep(0.2 + random.random() * (attempt + 1))
    _check_compatible(study, url, directions, attrs)
    return study, created


def _check_compatible(
    study: Any, url: str, directions: Sequence[str], attrs: Mapping[str, Any]
) -> None:
    stored = [d.name.lower() for d in study.directions]
    problems = []
    if stored != list(directions):
        problems.append(f"it optimizes {stored}, this sweep asks for {list(directions)}")
    for key, value in attrs.items():
        before = study.user_attrs.get(key)
        now = json.loads(json.dumps(value))
        if before is not None and before != now:
            if isinstance(before, dict) and isinstance(now, dict):
                changed = sorted(
                    k for k in before.keys() | now.keys() if before.get(k) != now.get(k)
                )
                problems.append(f"{key.removeprefix('lapp:')} differs in {changed}")
            else:
                problems.append(f"{key.removeprefix('lapp:')} was {before}, now {now}")
    if problems:
        raise SweepError(
            f"study {study.study_name!r} in {display_url(url)} cannot be resumed by this sweep: {'; '.join(problems)}. "
            "Restore the original settings, or start a new study with hydra.sweeper.study_name=NEW_NAME "
            "(or another hydra.sweep.dir)"
        )
