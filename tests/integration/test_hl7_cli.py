"""``interop hl7 send | inbox | replay`` against a running listener and the real store."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fhir_server.repository.inbox import ERROR, PROCESSED, MongoInbox, inbox_id
from fhir_server.settings import Settings
from interop.cli import cli
from interop.running_store import remember_store_uri
from tests.integration.hl7_cli_processing import strict
from tests.integration.hl7_helpers import RunningListener, adt


def processed(settings: Settings) -> Settings:
    """These tests read the AE a processing error gives: ACK after processing."""
    return settings.with_overrides(mllp_ack_after="processed")


def env(settings: Settings) -> dict[str, str]:
    assert settings.mongodb_uri
    return {"INTEROP_MONGODB_URI": settings.mongodb_uri, "INTEROP_MONGODB_DATABASE": settings.database}


def test_hl7_commands_have_help() -> None:
    for command in ("listen", "send", "inbox", "replay"):
        result = CliRunner().invoke(cli, ["hl7", command, "--help"], prog_name="interop")
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Usage: interop hl7 {command} [OPTIONS]")


def test_send_files_with_many_messages_prints_each_ack(
    settings: Settings, inbox: MongoInbox, tmp_path: Path
) -> None:
    lf = tmp_path / "two.hl7"
    lf.write_bytes(adt("F1").replace(b"\r", b"\n") + b"\n" + adt("F2").replace(b"\r", b"\r\n"))
    framed = tmp_path / "framed.mllp"
    framed.write_bytes(b"\x0b" + adt("F3") + b"\x1c\r")
    with RunningListener(processed(settings), strict) as listener:
        host, port = listener.address
        args = ["hl7", "send", str(lf), str(framed), "--host", host, "--port", str(port)]
        result = CliRunner().invoke(cli, args, env=env(settings), prog_name="interop")
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("MSA")] == [
        "MSA|AA|F1",
        "MSA|AA|F2",
        "MSA|AA|F3",
    ]
    assert "3/3 sent" in result.output
    assert "3 message(s): AA 3" in result.output
    assert inbox.get(inbox_id("LAB", "HOSP", "F2")) is not None


def test_send_exits_1_when_a_message_is_not_accepted(
    settings: Settings, inbox: MongoInbox, tmp_path: Path
) -> None:
    path = tmp_path / "bad.hl7"
    path.write_bytes(adt("OK1") + adt("BAD1"))
    with RunningListener(processed(settings), strict) as listener:
        host, port = listener.address
        args = ["hl7", "send", "-q", str(path), "--host", host, "--port", str(port)]
        result = CliRunner().invoke(cli, args, env=env(settings), prog_name="interop")
    assert result.exit_code == 1
    assert "2 message(s): AA 1, AE 1" in result.output


def test_inbox_lists_and_replay_reprocesses_errors(
    settings: Settings, inbox: MongoInbox, tmp_path: Path
) -> None:
    with RunningListener(processed(settings), strict) as listener:
        path = tmp_path / "m.hl7"
        path.write_bytes(adt("GOOD1") + adt("BAD2"))
        host, port = listener.address
        CliRunner().invoke(
            cli, ["hl7", "send", str(path), "--host", host, "--port", str(port)], env=env(settings)
        )
    runner = CliRunner()
    listing = runner.invoke(
        cli, ["hl7", "inbox", "--status", "error"], env=env(settings), prog_name="interop"
    )
    assert listing.exit_code == 0, listing.output
    assert "BAD2" in listing.output
    assert "GOOD1" not in listing.output
    assert "PID-3 is required" in listing.output
    everything = runner.invoke(cli, ["hl7", "inbox", "--since", "1h"], env=env(settings), prog_name="interop")
    assert "GOOD1" in everything.output
    assert "BAD2" in everything.output

    replay = runner.invoke(
        cli,
        ["hl7", "replay", "--process", "tests.integration.hl7_cli_processing:lenient"],
        env=env(settings),
        prog_name="interop",
    )
    assert replay.exit_code == 0, replay.output
    assert "replayed 1: processed 1" in replay.output
    fixed = inbox.get(inbox_id("LAB", "HOSP", "BAD2"))
    assert fixed is not None
    assert (fixed.status, fixed.attempts, fixed.resources) == (PROCESSED, 2, ["Patient/BAD2"])
    good = inbox.get(inbox_id("LAB", "HOSP", "GOOD1"))
    assert good is not None
    assert good.attempts == 1  # replay --status error leaves processed messages alone
    assert ERROR not in {r.status for r in inbox.list_recent()}


def test_since_must_be_a_duration_or_a_date(settings: Settings) -> None:
    result = CliRunner().invoke(cli, ["hl7", "inbox", "--since", "yesterday"], env=env(settings))
    assert result.exit_code == 2
    assert "2h, 30m, 7d" in result.output


def test_send_does_not_wait_for_an_ack_the_message_does_not_ask_for(
    settings: Settings, inbox: MongoInbox, tmp_path: Path
) -> None:
    """Enhanced mode with MSH-15 NE: the listener sends no accept ACK; the sender goes on."""
    path = tmp_path / "ne.hl7"
    path.write_bytes(adt("NE1", extra="|||NE|NE") + adt("AL1", extra="|||AL|NE"))
    with RunningListener(processed(settings), strict) as listener:
        host, port = listener.address
        args = ["hl7", "send", str(path), "--host", host, "--port", str(port)]
        result = CliRunner().invoke(cli, args, env=env(settings), prog_name="interop")
    assert result.exit_code == 0, result.output
    assert "(no ACK requested: MSH-15 NE)" in result.output
    assert "MSA|CA|AL1" in result.output
    assert "2 message(s): CA 1, sent 1" in result.output
    assert inbox.get(inbox_id("LAB", "HOSP", "NE1")) is not None


def test_commands_beside_make_run_find_its_embedded_store(
    settings: Settings, inbox: MongoInbox, tmp_path: Path
) -> None:
    """From a second terminal, without INTEROP_MONGODB_URI: the store `interop run`
    recorded in the data directory; without a running one, an error saying what to do."""
    assert settings.mongodb_uri
    inbox.receive_many([])  # the collection exists
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    bare = {
        "INTEROP_MONGODB_URI": "",
        "INTEROP_DATA_DIR": str(data_dir),
        "INTEROP_MONGODB_DATABASE": settings.database,
    }
    missing = CliRunner().invoke(cli, ["hl7", "inbox"], env=bare, prog_name="interop")
    assert missing.exit_code != 0 and "start the server (`make run`)" in missing.output
    remember_store_uri(data_dir, settings.mongodb_uri)
    found = CliRunner().invoke(cli, ["hl7", "inbox"], env=bare, prog_name="interop")
    assert found.exit_code == 0, found.output
    reindexed = CliRunner().invoke(cli, ["reindex", "--type", "Patient"], env=bare, prog_name="interop")
    assert reindexed.exit_code == 0, reindexed.output
