"""`python -m cloud serve | ingest | migrate | retention | rollups | add-edge EDGE_ID |
replay-dead-letters`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import date

from cloud.settings import CloudSettings, get_settings
from protocols.logs import configure_logging
from protocols.process import tune_garbage_collector
from protocols.settings_errors import settings_error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloud", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "serve", help="HTTP API (and one ingest worker unless CAREBRIDGE_INGEST_IN_PROCESS=false)"
    )
    sub.add_parser("ingest", help="a standalone ingest worker (start several to share the load)")
    sub.add_parser("migrate", help="apply pending schema migrations")
    retention = sub.add_parser(
        "retention", help="drop raw readings and dead letters older than their horizons"
    )
    retention.add_argument(
        "--days", type=int, help="horizon in days (default: CAREBRIDGE_RETENTION_DAYS)"
    )
    retention.add_argument(
        "--dead-letter-days",
        type=int,
        help="dead letters' horizon (default: CAREBRIDGE_DEAD_LETTER_RETENTION_DAYS, "
        "else the readings' horizon)",
    )
    rollups = sub.add_parser(
        "rollups",
        help="check the daily rollups against the raw readings; --repair rebuilds those that "
        "differ",
    )
    rollups.add_argument(
        "--since", type=date.fromisoformat, required=True, help="first day (YYYY-MM-DD)"
    )
    rollups.add_argument(
        "--until",
        type=date.fromisoformat,
        help="last day, included (default: today on the hospital's calendar)",
    )
    rollups.add_argument(
        "--repair", action="store_true", help="rebuild each day that differs from its readings"
    )
    rollups.add_argument(
        "--show", type=int, default=20, help="how many differences to print (default 20)"
    )
    add_edge = sub.add_parser("add-edge", help="register an edge agent")
    add_edge.add_argument("edge_id")
    add_edge.add_argument("--mode", choices=["centre", "home"], default="centre")
    add_edge.add_argument("--label")
    replay = sub.add_parser(
        "replay-dead-letters",
        help="publish chosen dead letters to ingest again, once their cause is fixed",
    )
    replay.add_argument(
        "--id", type=int, action="append", default=[], dest="ids", help="a dead letter's id"
    )
    replay.add_argument(
        "--code",
        action="append",
        default=[],
        dest="codes",
        help="every dead letter with this code (e.g. internal_error, storage_rejected)",
    )
    replay.add_argument(
        "--again", action="store_true", help="include letters that were replayed before"
    )
    replay.add_argument("--dry-run", action="store_true", help="say what would be published")
    replay.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for the acks (default 30)"
    )
    args = parser.parse_args(argv)
    from pydantic import ValidationError

    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"cloud {args.command}: {settings_error(exc, CloudSettings).reason}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, service=f"cloud-{args.command}")
    import psycopg

    try:
        return _run(args, settings)
    except psycopg.OperationalError as exc:
        # Most often the database is not running or the URL is wrong: one line that says
        # which database, not a traceback through the web framework.
        print(
            f"cloud {args.command}: the database at {settings.database_location}"
            f" could not be used: {str(exc).strip().splitlines()[0]}",
            file=sys.stderr,
        )
        return 2


def _run(args: argparse.Namespace, settings: CloudSettings) -> int:
    if args.command == "migrate":
        from cloud.db.migrate import MigrationError, migrate

        try:
            applied = migrate(settings.database_url)
        except MigrationError as exc:
            print(f"migrate: {exc.reason}", file=sys.stderr)
            return 1
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
        return 0
    if args.command == "retention":
        from datetime import timedelta

        import psycopg

        from cloud.db.retention import delete_old_dead_letters, drop_old_readings

        days = args.days or settings.retention_days
        letter_days = args.dead_letter_days or settings.dead_letter_retention_days or days
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            if days:
                dropped = drop_old_readings(conn, timedelta(days=days))
                print(f"dropped {len(dropped)} chunk(s) of readings older than {days} days")
            else:
                print("no readings horizon (CAREBRIDGE_RETENTION_DAYS or --days): keeping all")
            if letter_days:
                deleted = delete_old_dead_letters(
                    conn,
                    timedelta(days=letter_days),
                    lambda n: print(f"  {n:,} dead letters deleted so far", flush=True),
                )
                print(f"deleted {deleted:,} dead letter(s) older than {letter_days} days")
            else:
                print("no dead-letter horizon: keeping all")
        return 0
    if args.command == "rollups":
        return _rollups(settings, args.since, args.until, repair=args.repair, show=args.show)
    if args.command == "replay-dead-letters":
        from cloud.ingest.dead_letter_replay import Selection, replay_dead_letters
        from protocols.errors import CareBridgeError

        try:
            outcome = replay_dead_letters(
                settings,
                Selection(ids=args.ids, codes=args.codes, again=args.again),
                dry_run=args.dry_run,
                wait_s=args.wait,
            )
        except CareBridgeError as exc:
            print(f"replay-dead-letters: {exc.reason}", file=sys.stderr)
            return 1
        # Non-zero unless every replayed reading is now stored, so a script can tell.
        return 0 if outcome.all_stored else 1
    if args.command == "add-edge":
        import psycopg

        from cloud.db.migrate import migrate

        migrate(settings.database_url)
        with psycopg.connect(settings.database_url) as conn:
            conn.execute(
                "INSERT INTO edges (edge_id, mode, label) VALUES (%s, %s, %s) "
                "ON CONFLICT (edge_id) DO UPDATE SET mode = EXCLUDED.mode, disabled_at = NULL",
                (args.edge_id, args.mode, args.label),
            )
        print(f"edge {args.edge_id} registered ({args.mode})")
        return 0
    if args.command == "ingest":
        from cloud.db.migrate import migrate
        from cloud.ingest.worker import IngestWorker

        migrate(settings.database_url)
        worker = IngestWorker(settings)
        if settings.ingest_metrics_port:
            from prometheus_client import start_http_server

            start_http_server(settings.ingest_metrics_port, "127.0.0.1", worker.metrics.registry)
        stopped = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopped.set())
        tune_garbage_collector()
        worker.start()
        stopped.wait()
        worker.stop()
        return 0

    import uvicorn

    from cloud.api.app import create_app
    from cloud.db.migrate import migrate

    # Before uvicorn starts, so a database that cannot be used is the one-line message of
    # `main`, not a traceback through the app's lifespan.
    migrate(settings.database_url)
    app = create_app(settings)
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        # Event streams never end by themselves; don't let them hold up a shutdown.
        timeout_graceful_shutdown=3,
        access_log=False,
    )
    return 0


def _rollups(
    settings: CloudSettings, since: date, until: date | None, *, repair: bool, show: int
) -> int:
    """0 when every checked rollup agrees with its readings (after `repair`, if asked);
    1 when some differ; 2 when the days cannot be checked."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import psycopg

    from cloud.db.rollup_repair import (
        LOCK_TIMEOUT,
        RollupDifference,
        check_rollups,
        readings_dropped_until,
    )
    from cloud.readings.rollup_days import (
        DayRange,
        RollupRangeError,
        first_complete_day,
        plan_check,
    )

    zone = ZoneInfo(settings.timezone)
    asked = DayRange(since, until or datetime.now(zone).date())
    shown = 0

    def report(days: DayRange, found: list[RollupDifference]) -> None:
        nonlocal shown
        print(f"{days}: {len(found)} rollup(s) differ" if found else f"{days}: agree", flush=True)
        listed = found[: max(show - shown, 0)]
        for difference in listed:
            print(f"  {difference}")
        if len(listed) < len(found):
            print(f"  … and {len(found) - len(listed)} more (--show N lists more)")
        shown += len(listed)
        if found and repair:
            print(f"  rebuilding {days} from its readings", flush=True)

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        try:
            plan = plan_check(asked, first_complete_day(readings_dropped_until(conn), zone))
        except RollupRangeError as exc:
            print(f"rollups: {exc.reason}", file=sys.stderr)
            return 2
        if plan.skipped is not None:
            print(
                f"{plan.skipped}: not checked, raw readings are complete only from "
                f"{plan.slices[0].first} (retention may have dropped older chunks)"
            )
        try:
            outcome = check_rollups(conn, plan, settings.timezone, repair=repair, report=report)
        except psycopg.errors.LockNotAvailable:
            print(
                f"rollups: gave up rebuilding the last day above: ingest held readings_daily "
                f"for longer than {LOCK_TIMEOUT}; the days before it are rebuilt; run the "
                "command again",
                file=sys.stderr,
            )
            return 1
    summary = f"checked {outcome.days_checked} day(s): {outcome.differences} rollup(s) differed"
    if repair:
        summary += f"; rebuilt {outcome.days_rebuilt} day(s), {outcome.left} differ now"
    print(summary)
    remaining = outcome.left if repair else outcome.differences
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
