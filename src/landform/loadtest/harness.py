"""A load test from start to verdict, as ``landform loadtest run`` and the
capacity search use it: check the output, the fixture and the host, prepare
the data (or load a prepared fixture), run, judge, write the report."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from landform.loadtest import report
from landform.loadtest.config import CRITERIA, LoadTest
from landform.loadtest.fixtures import (
    Account,
    Fixture,
    FixtureError,
    check_present,
    prepare,
    read_outbox,
)
from landform.loadtest.runner import RunError, run
from landform.loadtest.verdict import NOT_MEASURED, evaluate
from landform.ops.sla import Sla

FIXTURE_NAME = "fixture.json"  # in a run's output, when no --fixture was given
RESULT_NAMES = ("result.json", "report.html", "capacity.json")  # what a run writes
RESULTS = Path("loadtest-results")  # where runs without --output go
_NOT_IN_A_FOLDER_NAME = re.compile(r"[^\w-]+")


def default_output(name: str, stamp: str) -> Path:
    """A run's folder under ``loadtest-results``, named for its test. The
    name comes from a scenario file, so it may hold separators, ``..`` or
    spaces: only letters, digits, ``_`` and ``-`` are kept (one folder, right
    where it is said to be), and it is cut short of file-name limits."""
    safe = _NOT_IN_A_FOLDER_NAME.sub("-", name).strip("-")[:80] or "loadtest"
    return RESULTS / f"{safe}-{stamp}"


def fixture_path(output: Path, fixture_file: Path | None) -> Path:
    """Where a run's test data is recorded: the ``--fixture`` given, else
    the run's output folder."""
    return fixture_file or output / FIXTURE_NAME


class CannotRun(RuntimeError):
    """Why a load test could not run at all (exit status 2)."""


@dataclass(frozen=True)
class Target:
    host: str
    ops_token: str
    processes: int | None = None


def reads_mail(test: LoadTest) -> bool:
    """Whether the test's journeys verify the addresses they register: the
    token comes from the verification mail, read through the operators'
    outbox."""
    return any(
        (method, path) == ("POST", "/auth/verify-email")
        for scenario in test.scenarios
        for method, path in scenario.operations
    )


def check_host(target: Target, needs_mail: bool = True) -> None:
    """The host answers, and the ops token does what this run needs of it:
    the outbox when it reads mail (preparing data, or journeys that
    register), else the server's figures, which are only left out when no
    token was given at all."""
    # Health probes are open to private networks only; elsewhere the ops
    # token opens them.
    headers = {"Authorization": f"Bearer {target.ops_token}"} if target.ops_token else {}
    try:
        answer = httpx.get(f"{target.host.rstrip('/')}/healthz", headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise CannotRun(f"{target.host} is not reachable: {exc}") from exc
    if answer.status_code != 200:
        raise CannotRun(f"{target.host}/healthz answered {answer.status_code}")
    if needs_mail:
        check_operator(target)
    elif target.ops_token:
        check_ops_token(target)


def check_ops_token(target: Target) -> None:
    """A token given is a token meant to work: one the server refuses is
    said before the run, not found out from a report without server rows."""
    try:
        answer = httpx.get(
            f"{target.host}/ops/performance",
            params={"window": "1m", "routes": "false"},
            headers={"Authorization": f"Bearer {target.ops_token}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        raise CannotRun(f"{target.host}/ops/performance could not be read: {exc}") from exc
    if answer.status_code in (401, 403):
        raise CannotRun(
            f"{target.host} refused the ops token ({answer.status_code}): pass the server's "
            "LANDFORM_OPS_TOKEN, an admin's access token that has not expired, or none (the "
            "server's figures are then not measured)"
        )


def check_operator(target: Target) -> None:
    """The harness verifies each account it registers with the token from
    its mail, read through the operators' outbox: find out before anything
    is created whether it can."""
    try:
        with httpx.Client(base_url=target.host, timeout=10) as client:
            read_outbox(client, target.ops_token, limit=1)
    except FixtureError as exc:
        raise CannotRun(str(exc)) from exc
    except httpx.HTTPError as exc:
        raise CannotRun(f"{target.host}/ops/outbox could not be read: {exc}") from exc


def ready(
    output: Path,
    target: Target,
    fixture_file: Path | None,
    accounts: int,
    pages: int,
    progress: Callable[[str], None],
    journeys_read_mail: bool = True,
    replace: bool = False,
) -> Fixture:
    """Everything a run checks before its measured window, cheapest first,
    so a mistake costs no test data and no lost run; then the data: the
    prepared data in ``fixture_file`` if it exists, else new data, saved
    there or, without a ``fixture_file``, in ``output/fixture.json`` (so
    that ``landform loadtest cleanup`` can remove it later). The scenario
    itself was checked when its file was read (``config``). The ops token is
    needed only to read mail: preparing data verifies the accounts it
    registers, and so do journeys that register (``journeys_read_mail``);
    otherwise a run without it goes ahead and says what is not measured.
    An ``output`` that holds an earlier run's files is refused unless
    ``replace``."""
    if not replace:
        check_no_earlier_run(output, writes_fixture=fixture_file is None)
    check_output(output)
    if fixture_file is not None:
        check_fixture_file(fixture_file)
    preparing = fixture_file is None or not fixture_file.exists()
    check_host(target, needs_mail=preparing or journeys_read_mail)
    if not target.ops_token:
        progress(NOT_MEASURED)
    if fixture_file is not None and fixture_file.exists():
        return prepared(target, fixture_file, progress)
    return prepare_fixture(target, fixture_path(output, fixture_file), accounts, pages, progress)


def check_output(directory: Path) -> None:
    """Find out before anything is created or run that the report can be
    written into ``directory``. The folders made to find out are removed
    again: a run refused before it starts leaves nothing behind, and the
    report or the fixture makes them when it is written."""
    missing = [folder for folder in (directory, *directory.parents) if not folder.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise CannotRun(f"cannot write into {directory}: {exc.strerror or exc}") from exc
    finally:
        for folder in missing:  # the deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_no_earlier_run(output: Path, writes_fixture: bool) -> None:
    """A run writes its files over whatever ``output`` holds: an earlier
    run's report, or its fixture, the only record of the data it made (the
    accounts' passwords, which cleanup needs)."""
    names = [*RESULT_NAMES, FIXTURE_NAME] if writes_fixture else list(RESULT_NAMES)
    earlier = [name for name in names if (output / name).exists()]
    if not earlier:
        return
    record = output / FIXTURE_NAME
    keep = (
        f" ({record} may be the only record of that run's test data: "
        f"`landform loadtest cleanup --fixture {record}` removes it first)"
        if FIXTURE_NAME in earlier
        else ""
    )
    raise CannotRun(
        f"{output} holds an earlier run's {', '.join(earlier)}{keep}: choose another "
        "--output, or pass --replace to overwrite them"
    )


def check_fixture_file(path: Path) -> None:
    """A fixture that exists will be read; one that does not will be
    written once the data is made: find out now whether it can be."""
    if path.is_dir():
        raise CannotRun(f"{path} is a directory; --fixture names a JSON file")
    if not path.exists():
        check_output(path.parent)


def prepared(target: Target, fixture_file: Path, progress: Callable[[str], None]) -> Fixture:
    """The data prepared in ``fixture_file``, if it is whole and still on the
    server."""
    try:
        fixture = Fixture.load(fixture_file)
        if not fixture.complete:
            raise FixtureError(
                f"{fixture_file} records a preparation that was interrupted: remove its data "
                f"with `landform loadtest cleanup --fixture {fixture_file}`, then delete the "
                "file (or name another --fixture) to prepare the data again"
            )
        check_present(fixture, target.host)
    except (FixtureError, httpx.HTTPError) as exc:
        raise CannotRun(str(exc)) from exc
    progress(
        f"using the data prepared in {fixture_file}: {len(fixture.accounts)} accounts "
        "(--accounts and --pages apply only when preparing)"
    )
    return fixture


def prepare_fixture(
    target: Target,
    fixture_file: Path,
    accounts: int,
    pages: int,
    progress: Callable[[str], None],
) -> Fixture:
    """New test data through the API, recorded in ``fixture_file`` as it is
    made: stopped half-way (Ctrl-C, a refused request), the record says what
    ``landform loadtest cleanup`` has to remove, and the terminal says where
    it is."""
    progress(
        f"preparing {accounts} accounts with {pages} published pages each "
        f"(recorded in {fixture_file} as they are made)"
    )
    made: list[Fixture] = []  # set once anything is recorded

    def record(fixture: Fixture) -> None:
        fixture.save(fixture_file)
        made[:] = [fixture]

    def stopped(why: str) -> CannotRun:
        if not made or not made[0].accounts:
            return CannotRun(f"{why}; no test data was made")
        return CannotRun(
            f"{why}; what was made ({len(made[0].accounts)} accounts with their pages and "
            f"files) is recorded in {fixture_file}: `landform loadtest cleanup --fixture "
            f"{fixture_file}` removes it"
        )

    try:
        return prepare(
            target.host, target.ops_token, accounts, pages, progress=progress, record=record
        )
    except KeyboardInterrupt:
        raise stopped("interrupted while preparing the test data") from None
    except (FixtureError, httpx.HTTPError) as exc:
        raise stopped(str(exc)) from exc
    except OSError as exc:
        raise CannotRun(f"cannot write {fixture_file}: {exc.strerror or exc}") from exc


def run_and_judge(
    test: LoadTest,
    target: Target,
    fixture: Fixture,
    sla: Sla,
    scale: float,
    output: Path | None,
    progress: Callable[[str], None],
    fixture_file: Path,
) -> dict[str, Any]:
    """Runs ``test`` and judges it; the accounts its journeys register are
    added to ``fixture`` and recorded in ``fixture_file`` as they come, so
    that cleanup closes them too, however the run ends."""
    earlier = list(fixture.registered)
    unrecorded: list[str] = []  # said once, not every second

    def record(made: list[Account]) -> None:
        fixture.registered = earlier + made
        try:
            fixture.save(fixture_file)
        except OSError as exc:
            if not unrecorded:
                unrecorded.append(str(exc))
                progress(
                    f"warning: cannot record the accounts the journeys register in "
                    f"{fixture_file} ({exc.strerror or exc}): cleanup will not know them"
                )

    try:
        data = run(test, fixture, target.host, target.ops_token, target.processes, progress, record)
    except RunError as exc:
        raise CannotRun(str(exc)) from exc
    result = evaluate(data, sla, scale)
    if output is not None:
        report.write(result, output)
    return result


def summary_lines(result: dict[str, Any]) -> list[str]:
    res = result["performanceResults"]["loadTest"]["results"]
    lines = [
        f"{result['scenario']['name']}: {res['requestsPerSecond']} req/s "
        f"(after ramp-up {result['throughput']['achieved']}, target "
        f"{result['throughput']['target']}), success {res['successRate']} %, "
        f"p50 {res['p50ResponseTime']} ms, p95 {res['p95ResponseTime']} ms, "
        f"p99 {res['p99ResponseTime']} ms",
    ]
    for row in result["components"]:
        lines.append(
            f"  {row['name']:<18} {row['source']:<6} p99 {row['p99']:>9.1f} ms  "
            f"target < {row['target']:g}  {row['status']}"
        )
    for criterion in result["failureCriteria"]:
        unit = CRITERIA[criterion["metric"]]
        worst = criterion["worst"]
        seen = f"worst {worst:g}{unit}" if worst is not None else "not measured"
        state = "BREACHED" if criterion["breached"] else "held"
        lines.append(
            f"  fails when {criterion['metric']} {criterion['comparison']} "
            f"{criterion['limit']:g}{unit}: {seen}, {state}"
        )
    verdict = result["verdict"]
    lines.append("PASSED" if verdict["passed"] else "FAILED")
    lines += [f"  - {reason}" for reason in verdict["reasons"]]
    lines += [f"  warning: {warning}" for warning in verdict.get("warnings", [])]
    return lines
