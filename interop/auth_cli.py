"""``interop client``, ``interop user``, ``interop token``: SMART on FHIR clients, the
people who sign in, and development tokens (issue 8).

The commands reach the store through INTEROP_MONGODB_URI, else the embedded store a
running ``interop run`` recorded in its data directory, else one started just for them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from interop.running_store import running_store_uri

if TYPE_CHECKING:
    from fhir_server.settings import Settings


@contextlib.contextmanager
def _auth_store() -> Iterator[tuple[Settings, Any]]:
    """The auth store: INTEROP_MONGODB_URI, else the embedded store of a running `interop run`,
    else the embedded store started just for this command."""
    from fhir_server.repository.auth_store import AuthStore
    from fhir_server.repository.mongo import MongoRepository
    from interop.cli import _load_settings

    settings = _load_settings()
    with contextlib.ExitStack() as stack:
        uri = settings.mongodb_uri or running_store_uri(settings.data_dir)
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


@click.group()
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


@click.group()
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


@click.command()
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
