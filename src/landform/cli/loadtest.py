"""``landform loadtest …``: the spec's load tests against any Landform
deployment, with a verdict (exit 0 passed, 1 failed, 2 could not run)."""

from __future__ import annotations

import math
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from landform.cli.options import SlaFile, load_sla

if TYPE_CHECKING:
    from types import FrameType

    from landform.loadtest.config import LoadTest

loadtest_app = typer.Typer(
    help="The spec's load tests: run them, judge them against the SLA, compare runs.",
    no_args_is_help=True,
)

FAILED, CANNOT_RUN = 1, 2

ScenarioFile = Annotated[
    Path | None, typer.Option("--file", help="A scenario file (default: the spec's built-ins).")
]


def _finite(value: float) -> float:
    # float() reads nan and inf, and a range check lets them through (nan
    # compares false with any bound): refused here, as a usage error.
    if not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _positive_finite(value: float) -> float:
    if _finite(value) <= 0:
        raise typer.BadParameter(f"{value:g} is not positive: it must be above 0")
    return value


Scale = Annotated[
    float, typer.Option(min=0.0001, callback=_finite, help="Users and rate times this.")
]
Duration = Annotated[str | None, typer.Option(help="Instead of the file's, e.g. 5m.")]
Host = Annotated[str, typer.Option(help="The Landform to load, e.g. http://127.0.0.1:8000.")]
OpsToken = Annotated[
    str,
    typer.Option(
        envvar="LANDFORM_OPS_TOKEN",
        help="The server's ops token: reads verification mail from /ops/outbox (needed to "
        "prepare data and for journeys that register) and the server's CPU, memory and pool "
        "use from /ops/performance (without it they are not measured).",
    ),
]
FixtureFile = Annotated[
    Path | None,
    typer.Option(help="Prepared test data (JSON): used if it exists, written if not."),
]
Processes = Annotated[
    int | None, typer.Option(min=1, help="Load-generator processes (default: one per core).")
]
Accounts = Annotated[int, typer.Option(min=1, help="Accounts to prepare.")]
ReplaceResults = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Write over an earlier run's files in --output (a fixture.json there records "
        "that run's test data: clean it up first).",
    ),
]
Pages = Annotated[int, typer.Option(min=1, help="Published pages per account.")]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _base_url(host: str) -> str:
    from landform.loadtest.hosts import BadHost, base_url

    try:
        return base_url(host)
    except BadHost as exc:
        raise _fail(f"--host {exc}", CANNOT_RUN) from exc


def _load_test(
    name: str | None,
    file: Path | None,
    scale: float,
    duration: str | None,
    code: int = CANNOT_RUN,
) -> LoadTest:
    """The load test ``name`` (of ``file``, else the built-ins), scaled;
    without a name, a file's only test or the peak mix."""
    from landform.loadtest.config import (
        ScenarioFileError,
        built_in,
        find,
        load_file,
        out_of_bounds,
    )

    try:
        tests = load_file(file) if file else built_in()
        if name is None and file is not None:
            if len(tests) != 1:
                names = ", ".join(test.name for test in tests)
                raise ScenarioFileError(f"{file} has {len(tests)} load tests; name one of: {names}")
            name = tests[0].name
        seconds = _positive_duration(duration, "--duration") if duration is not None else None
        test = find(tests, name or "peak_traffic_simulation").scaled(scale, seconds)
        # The file's numbers were bounded when it was read; --scale and
        # --duration can still make them more than a machine can run.
        too_big = out_of_bounds(test)
        if too_big is not None:
            raise ScenarioFileError(
                f"{test.name} with --scale {scale:g}"
                + (f" and --duration {duration}" if duration is not None else "")
                + f": {too_big}"
            )
        return test
    except (ScenarioFileError, ValueError) as exc:
        raise _fail(str(exc), code) from exc


def _positive_duration(text: str, option: str) -> float:
    from landform.loadtest.config import parse_duration

    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"{option} must be longer than 0")
    return seconds


def _shape(test: LoadTest) -> str:
    users = f"{test.concurrent_users} user{'s' if test.concurrent_users != 1 else ''}"
    return (
        f"{users}, {test.requests_per_second:g} requests/s, {test.duration:g} s "
        f"(ramp-up {round(test.ramp_up, 1):g} s)"
    )


def _stop_on_sigterm() -> None:
    """SIGTERM (a timeout, a CI job cancelled, systemd stopping a unit)
    stops the command as Ctrl-C does: a run writes what it measured,
    marked interrupted, and stops its generator processes; a preparation
    says where its record is. Left to the default, SIGTERM ended the process
    there and then, with no report and an output folder without one."""

    def stop(signum: int, frame: FrameType | None) -> None:
        # Once: a second SIGTERM must not interrupt the wrapping up.
        signal.signal(signal.SIGTERM, lambda *_: None)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _progress(line: str) -> None:
    typer.echo(line, err=True)


@loadtest_app.command("validate")
def validate(file: Annotated[Path, typer.Argument(help="A scenario file.")]) -> None:
    """Check a scenario file; errors name the line."""
    from landform.loadtest.config import ScenarioFileError, load_file

    try:
        tests = load_file(file)
    except ScenarioFileError as exc:
        raise _fail(str(exc), 1) from exc
    typer.echo(f"{file}: {len(tests)} load test(s): {', '.join(t.name for t in tests)}")


@loadtest_app.command("show")
def show(
    name: Annotated[
        str | None,
        typer.Argument(
            help="The load test (default: peak_traffic_simulation, or a --file's only one)."
        ),
    ] = None,
    file: ScenarioFile = None,
    scale: Scale = 1.0,
    duration: Duration = None,
) -> None:
    """Print a load test as it would run: users, rate, length, mix."""
    from landform.loadtest.config import CRITERIA

    test = _load_test(name, file, scale, duration, code=1)
    typer.echo(f"{test.name}: {test.description}")
    typer.echo(f"  {_shape(test)}")
    for scenario in test.scenarios:
        operations = ", ".join(f"{method} {path}" for method, path in scenario.operations)
        typer.echo(f"  {scenario.weight:g}% {scenario.name}: {operations}")
    for criterion in test.failure_criteria:
        unit = CRITERIA[criterion.metric]
        typer.echo(
            f"  fails when {criterion.metric} {criterion.comparison} {criterion.limit:g}{unit}"
        )
    for monitor in test.monitoring:
        typer.echo(f"  watches {monitor}")


@loadtest_app.command("prepare")
def prepare_data(
    host: Host,
    output: Annotated[Path, typer.Option(help="Where to write the fixture (JSON).")],
    ops_token: OpsToken = "",
    accounts: Accounts = 4,
    pages: Pages = 5,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Overwrite an existing --output file (the data it records stays on the "
            "server, unrecorded: clean it up first).",
        ),
    ] = False,
) -> None:
    """Make the test data for runs given --fixture, through the API.

    Accounts, published pages, a file each and some analytics."""
    from landform.loadtest.harness import (
        CannotRun,
        Target,
        check_fixture_file,
        check_host,
        prepare_fixture,
    )

    target = Target(_base_url(host), ops_token)
    _stop_on_sigterm()
    try:
        check_fixture_file(output)
        if output.exists() and not replace:
            # The file may be the only record of data made earlier (the
            # accounts' passwords): overwriting it leaves that data where
            # cleanup can no longer reach it.
            raise CannotRun(
                f"{output} exists: it may record test data prepared earlier, which "
                f"`landform loadtest cleanup --fixture {output}` needs to remove it. Clean "
                "that up first, or choose another --output, or pass --replace to overwrite it"
            )
        check_host(target)
        prepare_fixture(target, output, accounts, pages, _progress)
    except CannotRun as exc:
        raise _fail(str(exc), CANNOT_RUN) from exc
    typer.echo(f"wrote {output}")


@loadtest_app.command("cleanup")
def cleanup_data(
    fixture: Annotated[Path, typer.Option(help="The fixture a run or prepare wrote.")],
) -> None:
    """Close the harness's accounts, and with them their pages, files and analytics.

    Exits 1 when an account could not be confirmed closed."""
    import httpx

    from landform.loadtest.fixtures import Fixture, FixtureError, cleanup

    try:
        done = cleanup(Fixture.load(fixture), _progress, lambda made: made.save(fixture))
    except (FixtureError, httpx.HTTPError, OSError) as exc:
        raise _fail(str(exc), CANNOT_RUN) from exc
    typer.echo(
        f"closed {done.closed} accounts, and their pages, files and analytics with them"
        + (f" ({done.closed_before} closed by an earlier cleanup)" if done.closed_before else "")
    )
    if done.not_signed_in:
        raise _fail(_not_confirmed(done.not_signed_in), FAILED)


def _not_confirmed(emails: list[str]) -> str:
    # Login answers an unknown address and a wrong password alike, by
    # design: a refused sign-in is no proof the account is gone.
    shown = ", ".join(emails[:5]) + (f" and {len(emails) - 5} more" if len(emails) > 5 else "")
    return (
        f"{len(emails)} account(s) could not sign in, so are not confirmed closed: closed "
        f"already, or their password changed ({shown})"
    )


@loadtest_app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="The load test, e.g. peak_traffic_simulation.")],
    host: Host,
    scale: Scale = 1.0,
    duration: Duration = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Where result.json and report.html go (default: loadtest-results/…)."),
    ] = None,
    file: ScenarioFile = None,
    ops_token: OpsToken = "",
    fixture: FixtureFile = None,
    processes: Processes = None,
    accounts: Accounts = 4,
    pages: Pages = 5,
    cleanup: Annotated[
        bool, typer.Option(help="Close the harness's accounts (and their data) afterwards.")
    ] = False,
    sla_file: SlaFile = None,
    replace: ReplaceResults = False,
) -> None:
    """Run a load test and judge it against its criteria and the SLA.

    Exits 1 when a failure criterion or an SLA Target is missed, 2 when it
    could not run."""
    import httpx

    from landform.loadtest.fixtures import FixtureError
    from landform.loadtest.fixtures import cleanup as clean
    from landform.loadtest.harness import (
        CannotRun,
        Target,
        default_output,
        fixture_path,
        reads_mail,
        ready,
        run_and_judge,
        summary_lines,
    )

    test = _load_test(name, file, scale, duration)
    sla = load_sla(sla_file)
    target = Target(_base_url(host), ops_token, processes)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    output = output or default_output(test.name, stamp)
    _stop_on_sigterm()
    try:
        data = ready(output, target, fixture, accounts, pages, _progress, reads_mail(test), replace)
        _progress(f"{test.name}: {_shape(test)}")
        result = run_and_judge(
            test, target, data, sla, scale, output, _progress, fixture_path(output, fixture)
        )
    except CannotRun as exc:
        raise _fail(str(exc), CANNOT_RUN) from exc
    for line in summary_lines(result):
        typer.echo(line)
    typer.echo(f"wrote {output / 'result.json'} and {output / 'report.html'}")
    if cleanup:
        record = fixture_path(output, fixture)
        try:
            done = clean(data, _progress, lambda made: made.save(record))
            typer.echo(f"cleaned up: closed {done.closed} accounts")
            if done.not_signed_in:
                typer.echo(f"cleanup: {_not_confirmed(done.not_signed_in)}", err=True)
        except (FixtureError, httpx.HTTPError, OSError) as exc:
            typer.echo(
                f"cleanup failed: {exc} (`landform loadtest cleanup --fixture {record}` "
                "tries again)",
                err=True,
            )
    if not result["verdict"]["passed"]:
        raise typer.Exit(FAILED)


@loadtest_app.command("compare")
def compare(
    a: Annotated[Path, typer.Argument(help="The earlier run's result.json.")],
    b: Annotated[Path, typer.Argument(help="The later run's result.json.")],
) -> None:
    """The change from run A to run B, figure by figure."""
    from landform.loadtest.compare import ResultFileError, load, table

    try:
        typer.echo(table(load(a), load(b), str(a), str(b)))
    except ResultFileError as exc:
        raise _fail(str(exc), CANNOT_RUN) from exc


@loadtest_app.command("capacity")
def capacity(
    host: Host,
    name: Annotated[str, typer.Option(help="The load test whose mix to raise.")] = (
        "peak_traffic_simulation"
    ),
    start: Annotated[
        float, typer.Option(min=1, callback=_finite, help="The first step's req/s.")
    ] = 100.0,
    factor: Annotated[
        float, typer.Option(min=1.05, callback=_finite, help="Each step's rate times this.")
    ] = 1.5,
    step_duration: Annotated[str, typer.Option(help="Each step's length.")] = "60s",
    warm_up: Annotated[
        str, typer.Option(help="An unjudged run at the first rate before the steps.")
    ] = "30s",
    ceiling: Annotated[
        float, typer.Option(callback=_positive_finite, help="Stop at this rate.")
    ] = 100_000.0,
    output: Annotated[Path | None, typer.Option(help="Where the steps' reports go.")] = None,
    file: ScenarioFile = None,
    ops_token: OpsToken = "",
    fixture: FixtureFile = None,
    processes: Processes = None,
    accounts: Accounts = 4,
    pages: Pages = 5,
    sla_file: SlaFile = None,
    replace: ReplaceResults = False,
) -> None:
    """Find the highest rate of the peak mix that meets every SLA Target.

    The rate rises step by step until a component leaves its Target."""
    from landform.loadtest.capacity import search, step_test
    from landform.loadtest.config import out_of_bounds, parse_duration
    from landform.loadtest.harness import (
        RESULTS,
        CannotRun,
        Target,
        fixture_path,
        reads_mail,
        ready,
    )

    test = _load_test(name, file, 1.0, None)
    sla = load_sla(sla_file)
    try:
        seconds = _positive_duration(step_duration, "--step-duration")
        warm_up_seconds = parse_duration(warm_up) if warm_up not in ("0", "0s") else 0.0
    except ValueError as exc:
        raise _fail(str(exc), CANNOT_RUN) from exc
    if start > ceiling:
        raise _fail(
            f"--start {start:g} is above --ceiling {ceiling:g}: no step would run", CANNOT_RUN
        )
    too_big = out_of_bounds(step_test(test, ceiling, max(seconds, warm_up_seconds)))
    if too_big is not None:
        raise _fail(f"the step at --ceiling {ceiling:g}: {too_big}", CANNOT_RUN)
    target = Target(_base_url(host), ops_token, processes)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    output = output or RESULTS / f"capacity-{stamp}"
    try:
        data = ready(output, target, fixture, accounts, pages, _progress, reads_mail(test), replace)
        found = search(
            test, target, data, sla, start, factor, seconds, ceiling, output, _progress,
            fixture_path(output, fixture), warm_up_seconds,
        )  # fmt: skip
    except CannotRun as exc:
        raise _fail(str(exc), CANNOT_RUN) from exc
    for step in found["steps"]:
        typer.echo(
            f"  {step['rate']:>9g} req/s  {step['users']:>5d} users  achieved "
            f"{step['achieved']:>9.1f}  p99 {step['p99']:>8.1f} ms  "
            f"{'met every Target' if step['passed'] else 'missed'}"
        )
    if found["capacity"] is None:
        typer.echo(f"capacity: below {start:g} req/s (the first step missed a Target)")
        raise typer.Exit(FAILED)
    if found["firstMiss"] is None:
        # The search stopped at the ceiling, not at a miss: a lower bound.
        typer.echo(
            f"capacity: at least {found['capacity']:g} req/s (every step up to --ceiling "
            f"{ceiling:g} met every Target; wrote {output / 'capacity.json'})"
        )
        return
    typer.echo(f"capacity: {found['capacity']:g} req/s (wrote {output / 'capacity.json'})")
