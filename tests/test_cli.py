"""The ``gateway`` command, run as a user runs it: a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from gateway.entrypoints.http.server import build
from gateway.config import load_config
from gateway.store import MessageState
from support import person_payload, wait_until, write_config


def gateway_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60)


def test_config_check_accepts_the_shipped_configuration():
    result = gateway_command("config", "check")
    assert result.returncode == 0
    assert result.stdout.startswith("configuration ok: ")


def test_the_shipped_configuration_requires_signed_soap_and_config_check_warns_of_unsigned(tmp_path):
    import shutil

    from gateway.resources import resource_dir

    shipped = load_config(resource_dir("config"), environ={})
    assert all(shipped.members[m].signature_required for m in ("penal", "interior", "court"))
    assert "require_signature" not in gateway_command("config", "check").stderr
    directory = tmp_path / "config"
    shutil.copytree(resource_dir("config"), directory)
    members = directory / "members.toml"
    members.write_text(members.read_text().replace("require_signature = true", "require_signature = false", 1))
    result = gateway_command("config", "check", "--config", str(directory))
    assert result.returncode == 0
    assert "warning: members.penal.require_signature = false: unsigned SOAP" in result.stderr


def test_config_check_says_what_is_wrong_and_fails(tmp_path):
    directory = write_config(tmp_path, receiver_url="not a url")
    result = gateway_command("config", "check", "--config", str(directory))
    assert result.returncode == 2
    assert "members.health.endpoint: String should match pattern" in result.stderr


async def test_dlq_list_show_and_replay_work_on_the_store(tmp_path, receiver, http):
    receiver.respond = lambda body, seen: (400, {})
    directory = write_config(tmp_path, receiver_url=receiver.url)
    gateway = build(load_config(directory, environ={}))
    await gateway.start(port=0)
    try:
        headers = {"X-Member-Id": "penal", "X-Purpose": "continuity_of_care"}
        async with http.post(gateway.url + "/api/v1/relay/health/bulk", json=person_payload(), headers=headers) as r:
            message_id = (await r.json())["message_id"]

        async def dead() -> bool:
            return (await gateway.store.get_message(message_id)).state is MessageState.DEAD

        await wait_until(dead)
        listing = gateway_command("dlq", "list", "--json", "--config", str(directory))
        assert [row["message_id"] for row in json.loads(listing.stdout)] == [message_id]
        shown = json.loads(gateway_command("dlq", "show", message_id, "--config", str(directory)).stdout)
        assert shown["attempt_history"][0]["status"] == 400
        assert "surname" not in json.dumps(shown)  # the payload is never printed
        receiver.respond = lambda body, seen: (200, {})
        replayed = gateway_command("dlq", "replay", "--recipient", "health", "--config", str(directory))
        assert replayed.returncode == 0 and "replayed 1 dead letters" in replayed.stdout
        await wait_until(lambda: receiver.received)  # the running gateway picks it up
    finally:
        await gateway.stop()


def test_dlq_replay_of_an_unknown_id_fails_and_says_so(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    result = gateway_command("dlq", "replay", "no-such-id", "--config", str(directory))
    assert result.returncode == 1 and "not a dead letter: no-such-id" in result.stderr


def test_openapi_command_prints_the_document():
    result = gateway_command("openapi")
    assert json.loads(result.stdout)["openapi"] == "3.1.0"
