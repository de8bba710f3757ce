"""Configuration: the shipped files are valid; mistakes are reported with file, key and problem."""

from __future__ import annotations

import pytest

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.resources import resource_dir
from support import write_config


def test_the_shipped_configuration_is_valid():
    config = load_config(resource_dir("config"), environ={})
    assert {"penal", "interior", "health", "social", "court", "clinic", "probation"} <= set(config.members)


def test_environment_overrides_one_key():
    config = load_config(resource_dir("config"), environ={"GATEWAY__STORE__URL": "postgresql://db/gateway",
                                                           "GATEWAY__DELIVERY__MAX_ATTEMPTS": "3"})
    assert config.store.url == "postgresql://db/gateway"
    assert config.delivery.max_attempts == 3


def test_an_unknown_key_names_the_file_and_the_key(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    (directory / "gateway.toml").write_text((directory / "gateway.toml").read_text() + "retries = 3\n")
    with pytest.raises(ConfigError) as error:
        load_config(directory, environ={})
    assert f"{directory / 'gateway.toml'}: logging.retries: unknown key" in str(error.value)


def test_a_bad_environment_value_names_the_variable(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    with pytest.raises(ConfigError) as error:
        load_config(directory, environ={"GATEWAY__SERVER__PORT": "99999"})
    assert "environment GATEWAY__SERVER__PORT: server.port: Input should be less than or equal to 65535" in str(error.value)


def test_a_grant_for_a_service_nobody_offers_is_reported(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1", extra_members="""
[members.court]
name = "Court"
role = "court"
may_call = [{ service = "health/nothing", purposes = ["pretrial_report"] }]
""")
    with pytest.raises(ConfigError, match=r"members\.court\.may_call\[0\]\.service: member 'health' offers no service 'nothing'"):
        load_config(directory, environ={})


def test_an_unknown_purpose_is_reported(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1", extra_members="""
[members.court]
name = "Court"
role = "court"
may_call = [{ service = "health/notices", purposes = ["curiosity"] }]
""")
    with pytest.raises(ConfigError, match=r"members\.court\.may_call\.0\.purposes\.0: Input should be"):
        load_config(directory, environ={})


def test_a_lease_shorter_than_two_request_timeouts_is_refused(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1",
                             delivery={"lease_seconds": 3, "request_timeout_seconds": 2})
    with pytest.raises(ConfigError, match="lease_seconds .3. must be at least twice request_timeout_seconds .2."):
        load_config(directory, environ={})


def test_broken_toml_names_the_file(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    (directory / "members.toml").write_text("[members.x\n")
    with pytest.raises(ConfigError, match="members.toml: not valid TOML"):
        load_config(directory, environ={})


def test_a_section_set_in_two_files_is_refused(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    (directory / "members.toml").write_text((directory / "members.toml").read_text() + "\n[store]\nurl = 'sqlite:///x.db'\n")
    with pytest.raises(ConfigError, match=r"\[store\] is already set in"):
        load_config(directory, environ={})


def test_a_member_offering_services_needs_an_endpoint(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1", extra_members="""
[members.court]
name = "Court"
role = "court"
services.reports = { path = "/reports" }
""")
    with pytest.raises(ConfigError, match="members.court: a member that offers services needs an endpoint"):
        load_config(directory, environ={})


@pytest.mark.parametrize(("member", "problem"), [
    ('delivery = "pull"\nendpoint = "http://127.0.0.1:1"\nservices.inbox = {}',
     'a member with delivery = "pull" fetches its messages and has no endpoint'),
    ('delivery = "pull"\nservices.inbox = { path = "/inbox" }',
     r'delivery = "pull" is delivered nothing, so its services have no path \(remove path from: inbox\)'),
    ('endpoint = "http://127.0.0.1:1"\nservices.inbox = {}',
     r"each service of a member the gateway delivers to needs a path \(missing for: inbox\)"),
    ('services.inbox = {}', 'needs an endpoint \\(or delivery = "pull"'),
    ('delivery = "poll"\nservices.inbox = {}', r"members.probation.delivery: Input should be 'push' or 'pull'"),
])
def test_a_member_that_pulls_has_no_endpoint_and_one_pushed_to_has_paths(tmp_path, member, problem):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1", extra_members=f"""
[members.probation]
name = "Probation"
role = "probation"
{member}
""")
    with pytest.raises(ConfigError, match=problem):
        load_config(directory, environ={})


def test_a_member_that_pulls_is_not_a_delivery_destination(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1", extra_members="""
[members.probation]
name = "Probation"
role = "probation"
delivery = "pull"
services.inbox = {}
""")
    config = load_config(directory, environ={})
    assert config.members["probation"].delivery == "pull"
    assert config.members["health"].delivery == "push"


def test_an_oversight_body_without_the_oversight_access_is_refused_at_start(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1", extra_members="""
[members.prosecutor]
name = "Prosecutor's office"
role = "oversight"
""")
    with pytest.raises(ConfigError, match=r'members.prosecutor: role = "oversight" says .* add roles = \["oversight"\]'):
        load_config(directory, environ={})


def test_operator_written_as_a_role_is_refused_naming_roles(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1", extra_members="""
[members.ops2]
name = "Second operations desk"
role = "operator"
""")
    with pytest.raises(ConfigError, match=r'members.ops2.role: .*access is granted by roles = \["operator"\]'):
        load_config(directory, environ={})


def test_an_oversight_body_with_the_oversight_access_is_accepted(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1", extra_members="""
[members.prosecutor]
name = "Prosecutor's office"
role = "oversight"
roles = ["oversight"]
""")
    assert load_config(directory, environ={}).members["prosecutor"].roles == ["oversight"]


def test_console_session_limits_are_read_and_checked(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    config = load_config(directory, environ={"GATEWAY__CONSOLE__IDLE_SECONDS": "120",
                                             "GATEWAY__CONSOLE__THROTTLE_PER_ACCOUNT": "3"})
    assert (config.console.idle_seconds, config.console.absolute_seconds) == (120, 8 * 3600)
    assert (config.console.throttle_per_account, config.console.throttle_per_address) == (3, 20)
    for variable, value, problem in (
        ("GATEWAY__CONSOLE__THROTTLE_PER_ACCOUNT", "0", "console.throttle_per_account: Input should be greater than or equal to 1"),
        ("GATEWAY__CONSOLE__IDLE_SECONDS", "30", "console.idle_seconds: Input should be greater than or equal to 60"),
        ("GATEWAY__CONSOLE__IDLE_SECONDS", "90000", "console.idle_seconds: Input should be less than or equal to 86400"),
    ):
        with pytest.raises(ConfigError) as error:
            load_config(directory, environ={variable: value})
        assert problem in str(error.value), str(error.value)
    with pytest.raises(ConfigError) as error:
        load_config(directory, environ={"GATEWAY__CONSOLE__IDLE_SECONDS": "7200",
                                        "GATEWAY__CONSOLE__ABSOLUTE_SECONDS": "3600"})
    assert "console.idle_seconds must not exceed console.absolute_seconds" in str(error.value)


def test_a_grant_to_a_service_that_declares_no_document_is_refused_at_start(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    members = directory / "members.toml"
    members.write_text(members.read_text().replace(', document = "ProbationNotice" }}', " }", 1)
                       .replace('ordered = true, document = "ProbationNotice" }', "ordered = true }"))
    with pytest.raises(ConfigError, match=r"health/notices declares no document, so nothing relayed to it can pass"):
        load_config(directory, environ={})


def test_a_granted_purpose_without_a_policy_rule_for_the_document_is_refused_at_start(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    policy = directory / "policy.toml"
    policy.write_text(policy.read_text().split("[policy.health.relay_test")[0])
    with pytest.raises(ConfigError, match=r"no rule \[policy\.health\.relay_test\.ProbationNotice\]"):
        load_config(directory, environ={})


def test_an_unknown_service_document_is_refused_at_start(tmp_path):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    members = directory / "members.toml"
    members.write_text(members.read_text().replace('document = "ProbationNotice"', 'document = "Gossip"', 1))
    with pytest.raises(ConfigError, match="unknown document type 'Gossip'"):
        load_config(directory, environ={})
