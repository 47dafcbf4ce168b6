"""The ``interop`` command: run the whole system, or just the embedded store, in the foreground.

Configuration comes from the environment through :class:`fhir_server.settings.Settings` (the
contract in docs/CONTRACT.md); the commands take few options so that ``make run``, systemd
units and containers all configure the system the same way.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from interop.running_store import with_store

if TYPE_CHECKING:
    from fhir_server.settings import Settings

log = logging.getLogger("interop")

# Longer than gunicorn's graceful_timeout (30 s by default) so in-flight requests can finish.
HTTP_STOP_TIMEOUT = 40.0


def _load_settings() -> Settings:
    # Imported here, not at module level, so `interop --help` stays fast and works even if
    # the server package is broken.
    from fhir_server.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from exc
    _configure_logging(settings.log_level)
    return settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def gunicorn_argv(settings: Settings) -> list[str]:
    """The HTTP server command line; public so tests and docs can show exactly what runs."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "fhir_server:create_app()",
        "--bind",
        _bind(settings.http_host, settings.http_port),
        "--workers",
        str(settings.http_workers),
        "--config",
        "python:fhir_server.gunicorn_conf",
        *_tls_argv(settings),
    ]


def _tls_argv(settings: Settings) -> list[str]:
    """HTTPS when INTEROP_TLS_CERT/INTEROP_TLS_KEY are set (TLS 1.2 at least: gunicorn_conf)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return []
    return ["--certfile", str(settings.tls_cert), "--keyfile", str(settings.tls_key)]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Hospital interoperability server: FHIR R4 REST, CDS Hooks and HL7 v2 over MLLP.

    Configured with INTEROP_* environment variables (see docs/CONTRACT.md).
    """


@cli.command()
def run() -> None:
    """Run every service in the foreground until Ctrl-C or SIGTERM.

    Starts the embedded document store when INTEROP_MONGODB_URI is unset (its files live
    under INTEROP_DATA_DIR), then the HTTP server (gunicorn) on
    INTEROP_HTTP_HOST:INTEROP_HTTP_PORT and the HL7 v2 MLLP listener on
    INTEROP_MLLP_HOST:INTEROP_MLLP_PORT. On SIGINT/SIGTERM the servers are stopped
    first (the listener finishes in-flight messages), then the store. If any service dies,
    the others are stopped and the command exits non-zero.
    """
    from interop.embedded_store import EmbeddedStore, EmbeddedStoreError
    from interop.supervisor import Supervisor

    settings = _load_settings()
    if settings.auth == "disabled":
        log.warning(
            "INTEROP_AUTH=disabled: every endpoint is open to anyone who can reach %s. "
            "Local development only; never use this with real patient data.",
            settings.base_url,
        )
    env = dict(os.environ)
    with Supervisor() as supervisor:
        if settings.mongodb_uri is None:
            store = EmbeddedStore(settings.data_dir)
            try:
                uri = store.start()
            except EmbeddedStoreError as exc:
                raise click.ClickException(str(exc)) from exc
            supervisor.add(store)
            env["INTEROP_MONGODB_URI"] = uri
            from interop.running_store import remember_store_uri

            remember_store_uri(settings.data_dir, uri)
            log.info("embedded store running at %s (data in %s)", uri, settings.data_dir)
        else:
            log.info("using the MongoDB server from INTEROP_MONGODB_URI")
        env["INTEROP_READ_CACHE"] = read_cache_mode(settings.read_cache, embedded=not settings.mongodb_uri)
        if not supervisor.stop_requested:
            # The embedded store serves this node alone: nobody else can be mid-transaction.
            single_node = not settings.mongodb_uri
            _recover(env["INTEROP_MONGODB_URI"], settings.database, RECOVERY_WINDOW, abandon=single_node)
            supervisor.spawn("http", gunicorn_argv(settings), env=env, stop_timeout=HTTP_STOP_TIMEOUT)
            supervisor.spawn("mllp", listener_argv(), env=env, stop_timeout=MLLP_STOP_TIMEOUT)
        code = supervisor.run()
    sys.exit(code)


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the store's files and log [default: INTEROP_DATA_DIR or ./var].",
)
def store(data_dir: Path | None) -> None:
    """Run only the embedded document store in the foreground.

    Prints the MongoDB URI on the first line of standard output once the store answers,
    then runs until Ctrl-C or SIGTERM. Handy for tests, benchmarks and a Mongo shell.
    """
    from interop.embedded_store import EmbeddedStore, EmbeddedStoreError
    from interop.supervisor import Supervisor

    settings = _load_settings()
    with Supervisor() as supervisor:
        embedded = EmbeddedStore(data_dir if data_dir is not None else settings.data_dir)
        try:
            uri = embedded.start()
        except EmbeddedStoreError as exc:
            raise click.ClickException(str(exc)) from exc
        supervisor.add(embedded)
        click.echo(uri)
        log.info("embedded store running at %s; logs in %s", uri, embedded.log_file)
        code = supervisor.run()
    sys.exit(code)


RECOVERY_WINDOW = timedelta(hours=24)


def read_cache_mode(mode: str, *, embedded: bool) -> str:
    """``auto`` made definite for the children: on with the embedded store, which only
    this host's processes can reach (loopback), so the write clock sees every writer
    (repository/head_cache.py); off with an external MongoDB, which other hosts may write."""
    if mode != "auto":
        return mode
    return "on" if embedded else "off"


def _recover(uri: str, database: str, window: timedelta | None, *, abandon: bool = False) -> int:
    """Bring forward heads left behind by writers that died after their commit point,
    and settle their transactions (``abandon``: abort the undecided ones at once)."""
    from fhir_server.repository.auth_store import AuthStore
    from fhir_server.repository.mongo import MongoRepository

    repository = MongoRepository(uri, database)
    try:
        since = None if window is None else datetime.now(UTC) - window
        repaired = repository.recover(since, abandon_in_flight=abandon)
        if abandon:  # nobody else can be writing: forget writers that died mid-write
            repository.clear_write_clock()
        # Expired revocations, assertion ids and codes: a token past its exp is refused anyway.
        AuthStore.of(repository).purge_expired(datetime.now(UTC) - timedelta(hours=1))
    finally:
        repository.close()
    if repaired:
        log.warning("recovered %d resource(s) whose last write was interrupted", repaired)
    return repaired


@cli.command()
@click.option(
    "--hours",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    help="Look at versions written in this many recent hours.",
)
@click.option("--all", "everything", is_flag=True, help="Look at every version ever written (slow).")
def recover(hours: int, everything: bool) -> None:
    """Repair resources whose last write was interrupted (also run by `interop run`).

    A write commits when its version record is stored; if the process died before it
    updated the current copy, this brings the current copy forward. Needs
    INTEROP_MONGODB_URI (a running store).
    """
    settings = with_store(_load_settings())
    assert settings.mongodb_uri
    repaired = _recover(
        settings.mongodb_uri, settings.database, None if everything else timedelta(hours=hours)
    )
    click.echo(f"repaired {repaired} resource(s)")


@cli.command()
@click.option("--type", "types", multiple=True, help="Only this resource type (repeatable) [default: all].")
def reindex(types: tuple[str, ...]) -> None:
    """Recompute search index values from the stored resources.

    Run after the search parameter definitions under conformance/ change. Writers may
    keep running. Needs INTEROP_MONGODB_URI (a running store).
    """
    from fhir_server.repository.mongo import MongoRepository
    from fhir_server.search.extract import index_resource

    settings = with_store(_load_settings())
    assert settings.mongodb_uri
    repository = MongoRepository(settings.mongodb_uri, settings.database)
    try:
        for resource_type in types or repository.resource_types_in_use():

            def compute(resource: dict[str, Any], resource_type: str = resource_type) -> dict[str, Any]:
                return index_resource(resource_type, resource, base_url=settings.fhir_base).as_fields()

            changed = repository.reindex(resource_type, compute)
            click.echo(f"{resource_type}: {changed} resource(s) reindexed")
    finally:
        repository.close()


def _transport(url: str | None, token: str | None) -> Any:
    """HTTP to a running server (``--url``), else in-process on INTEROP_MONGODB_URI."""
    from interop.transport import HttpTransport, InProcessTransport

    if url:
        return HttpTransport(url, token=token)
    settings = _load_settings()
    if not settings.mongodb_uri:
        raise click.ClickException(
            "give --url http://127.0.0.1:8080 (a running server), "
            "or set INTEROP_MONGODB_URI to work in-process"
        )
    return InProcessTransport(settings)


_URL_HELP = "Server base URL, e.g. http://127.0.0.1:8080 [default: in-process on INTEROP_MONGODB_URI]."


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--url", default=None, help=_URL_HELP)
@click.option("--token", default=None, envvar="INTEROP_TOKEN", help="Bearer token for --url (INTEROP_TOKEN).")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Resources per transaction for NDJSON and collection Bundles.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_(path: Path, url: str | None, token: str | None, batch_size: int, quiet: bool) -> None:
    """Load FHIR Bundles (.json) and NDJSON (.ndjson) from a file or a folder.

    Transaction Bundles are committed all or nothing; batch Bundles entry by entry;
    NDJSON lines, collection Bundles and single resources in transactions of
    --batch-size (resources with an id keep it). Prints created/updated/failed, with
    the reason of every failure; exits 1 if anything failed.
    """
    from interop.importer import Importer, files_under

    files = files_under(path)
    transport = _transport(url, token)
    total = sum(f.stat().st_size for f in files)
    try:
        with click.progressbar(length=total, label="importing", file=sys.stderr, hidden=quiet) as bar:
            summary = Importer(transport, batch_size=batch_size, progress=bar.update).run(files)
    finally:
        transport.close()
    click.echo(summary.line())
    for failure in summary.failed[:50]:
        click.echo(f"  failed {failure.where}: {failure.reason}")
    if len(summary.failed) > 50:
        click.echo(f"  ... and {len(summary.failed) - 50} more")
    if summary.failed:
        sys.exit(1)


@cli.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--type", "types", multiple=True, help="Only this resource type (repeatable) [default: all].")
@click.option("--since", default=None, help="Only resources changed since this instant (FHIR dateTime).")
@click.option("--patient", "patients", is_flag=True, help="Patient-level export (Patient/$export).")
@click.option("--group", default=None, help="Export the members of this Group (Group/{id}/$export).")
@click.option("--url", default=None, help=_URL_HELP)
@click.option("--token", default=None, envvar="INTEROP_TOKEN", help="Bearer token for --url (INTEROP_TOKEN).")
@click.option("--timeout", type=click.IntRange(1), default=3600, show_default=True, help="Seconds to wait.")
def export(
    directory: Path,
    types: tuple[str, ...],
    since: str | None,
    patients: bool,
    group: str | None,
    url: str | None,
    token: str | None,
    timeout: int,
) -> None:
    """Bulk Data $export into DIRECTORY, one Type.ndjson file per resource type.

    Kicks off the export, polls its status until the manifest is ready, downloads the
    files. `interop import DIRECTORY` loads them back.
    """
    from interop.exporter import ExportError, bulk_export

    transport = _transport(url, token)
    try:
        level = "group" if group else "patient" if patients else "system"
        written = bulk_export(
            transport,
            directory,
            types=list(types),
            since=since,
            level=level,
            group=group,
            timeout=timeout,
            echo=lambda m: click.echo(m, err=True),
        )
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        transport.close()
    for name, count in sorted(written.items()):
        click.echo(f"{name}: {count} resource(s)")


# Longer than the listener's drain timeout (30 s) so in-flight messages are acknowledged.
MLLP_STOP_TIMEOUT = 40.0


def listener_argv() -> list[str]:
    """The MLLP listener command line (``interop hl7 listen``) that ``interop run`` supervises."""
    return [sys.executable, "-m", "interop.cli", "hl7", "listen"]


def _register_subcommands() -> None:
    """Command groups that live in their own modules (one job each)."""
    from interop.auth_cli import client, token, user
    from interop.cds_cli import cds
    from interop.hl7_cli import hl7

    for command in (hl7, client, user, token, cds):
        cli.add_command(command)


_register_subcommands()


def main() -> None:
    """Console-script entry point (``interop``)."""
    cli(prog_name="interop")


if __name__ == "__main__":
    main()
