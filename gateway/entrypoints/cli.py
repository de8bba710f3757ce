"""The ``gateway`` console command. Thin: it parses arguments and calls the parts.

The runtime's commands import only the runtime: the tools (``demo``, ``simulate``, ``bench``)
are imported by their own subcommands, so ``gateway serve`` loads no simulator, demo or
benchmark code (tests/test_layers.py checks it).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from gateway import eventloop
from gateway.config import GatewayConfig, load_config
from gateway.domain import InvalidIIN, validate_iin
from gateway.entrypoints.http.console import accounts as console_accounts
from gateway.entrypoints.http.openapi import openapi_document
from gateway.entrypoints.http.server import build
from gateway.errors import ConfigError
from gateway.logs import configure_logging
from gateway.resources import resource_dir
from gateway.security.audit import AuditLog
from gateway.security.audit_keys import AuditKeys, fingerprint
from gateway.security.keys import DevelopmentKeys
from gateway.security.tls import DevelopmentPki, PkiError
from gateway.services.dead_letters import replay_dead_letters
from gateway.services.indicators import IndicatorFilter, Indicators, InvalidFilter, as_csv
from gateway.services.oversight import subject_disclosures
from gateway.store import Message, MessageState, StoreError, create_store


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"gateway: store: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="reentry-gateway: interagency data exchange")
    commands = parser.add_subparsers(title="commands")

    def command(name: str, run, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--config", type=Path, help="configuration folder (default: $GATEWAY_CONFIG or the shipped config/)")
        return sub

    serve = with_config(command("serve", _serve, "run the gateway: HTTP API and delivery workers"))
    serve.add_argument("--host", help="listen address (overrides [server] host)")
    serve.add_argument("--port", type=int, help="listen port (overrides [server] port; 0 picks a free one)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="run N gateway processes on the one port (SO_REUSEPORT); PostgreSQL only")
    # Set by the supervisor of --workers for each worker it starts.
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)

    config = commands.add_parser("config", help="configuration").add_subparsers(title="config commands")
    check = config.add_parser("check", help="validate the configuration and say what is wrong")
    check.set_defaults(run=_config_check)
    check.add_argument("--config", type=Path)

    dlq = commands.add_parser("dlq", help="the dead-letter queue").add_subparsers(title="dlq commands")
    listing = dlq.add_parser("list", help="list dead letters, oldest first")
    listing.set_defaults(run=_dlq_list)
    listing.add_argument("--recipient")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    show = dlq.add_parser("show", help="show one dead letter and its attempts")
    show.set_defaults(run=_dlq_show)
    show.add_argument("message_id")
    replay = dlq.add_parser("replay", help="queue dead letters again with a fresh attempt budget")
    replay.set_defaults(run=_dlq_replay)
    replay.add_argument("message_ids", nargs="*")
    replay.add_argument("--recipient", help="replay every dead letter of this recipient")
    for sub in (listing, show, replay):
        sub.add_argument("--config", type=Path)

    audit = commands.add_parser("audit", help="the audit log").add_subparsers(title="audit commands")
    verify = audit.add_parser("verify", help="recompute the audit log and check its signed tree heads; "
                                             "exit 1 naming the first bad entry")
    verify.set_defaults(run=_audit_verify)
    subject = audit.add_parser("subject", help="every disclosure about one person: who, when, what, why")
    subject.set_defaults(run=_audit_subject)
    subject.add_argument("iin", help="the person's IIN (12 digits)")
    subject.add_argument("--json", action="store_true")
    for sub in (verify, subject):
        sub.add_argument("--config", type=Path)

    user = commands.add_parser("user", help="people who sign in to the console").add_subparsers(title="user commands")
    user_add = user.add_parser("add", help="create an account (the password is asked for, or read from stdin)")
    user_add.set_defaults(run=_user_add)
    user_add.add_argument("username")
    user_add.add_argument("--role", required=True, choices=sorted(console_accounts.ROLES))
    user_add.add_argument("--name", default="", help="the person's name as the console and oversight show it")
    user_add.add_argument("--office", help="a probation officer's probation office (its code)")
    user_add.add_argument("--region", help="a probation officer's region")
    user_passwd = user.add_parser("passwd", help="set a new password; the account's sessions end")
    user_passwd.set_defaults(run=_user_passwd)
    user_passwd.add_argument("username")
    user_disable = user.add_parser("disable", help="disable an account and end its sessions (--enable undoes it)")
    user_disable.set_defaults(run=_user_disable)
    user_disable.add_argument("username")
    user_disable.add_argument("--enable", action="store_true")
    user_list = user.add_parser("list", help="list the accounts")
    user_list.set_defaults(run=_user_list)
    for sub in (user_add, user_passwd):
        sub.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    for sub in (user_add, user_passwd, user_disable, user_list):
        sub.add_argument("--config", type=Path)

    demo = command("demo", _demo, "run the whole system on loopback and print what happened")
    demo.add_argument("--json", action="store_true", help="print a machine-readable summary")
    demo.add_argument("--store", help="store URL (default: an embedded SQLite file in a temporary folder)")
    demo.add_argument("--keep", action="store_true",
                      help="leave the gateway running after the summary, with console logins for each role")
    demo.add_argument("--relay", action="store_true", help="run the relay alone: senders, a flaky receiver, the DLQ")
    demo.add_argument("--messages", type=int, default=3000, help="with --relay: how many messages")
    demo.add_argument("--years", type=int, help="run the synthetic population through this many simulated years "
                                                "and print the Strategy's three indicators")
    demo.add_argument("--people", type=int, default=1500, help="with --years: size of the synthetic population")
    demo.add_argument("--seed", type=int, default=20261126, help="with --years: the story's seed")

    simulate = with_config(command("simulate", _simulate, "run every agency simulator on the configured ports"))
    simulate.add_argument("--gateway-url", default="http://127.0.0.1:8080", help="where clinics send acknowledgements")
    simulate.add_argument("--people", type=int, default=1000, help="size of the synthetic population")
    simulate.add_argument("--seed", type=int, default=20261126)

    pki = commands.add_parser("pki", help="the development PKI for identity = \"mtls\"").add_subparsers(
        title="pki commands")
    init = pki.add_parser("init", help="create a CA, an empty CRL and a certificate for the gateway and each member")
    init.set_defaults(run=_pki_init)
    init.add_argument("--members", nargs="+", metavar="ID",
                      help="member ids to certify (default: every member in the configuration, and the gateway)")
    init.add_argument("--signing-keys", action="store_true",
                      help="also make the XML-signing keys where missing: the gateway's ([signing] algorithm, "
                           "e.g. gost2015-256) and one beside the first certificate each member pins "
                           "(its signature_algorithm)")
    issue = pki.add_parser("issue", help="certify a member (a new member, or --replace to rotate its key)")
    issue.set_defaults(run=_pki_issue)
    issue.add_argument("member")
    issue.add_argument("--replace", action="store_true",
                       help="rotate: keep the current certificate as <id>.<serial>.pem until it is revoked")
    revoke = pki.add_parser("revoke", help="revoke certificates (a member id: its current one; or a .pem path)")
    revoke.set_defaults(run=_pki_revoke)
    revoke.add_argument("certificates", nargs="+", metavar="MEMBER_OR_PEM")
    crl = pki.add_parser("crl", help="re-sign the CRL before it expires (it is valid for 30 days)")
    crl.set_defaults(run=_pki_crl)
    for sub in (init, issue, revoke, crl):
        sub.add_argument("--dir", type=Path, help="the PKI folder (default: the folder of [tls] ca_certificate)")
        sub.add_argument("--config", type=Path)

    indicators = with_config(command("indicators", _indicators,
                                     "the Strategy's target indicators as published (small cells suppressed)"))
    indicators.add_argument("--from", dest="start", metavar="QUARTER", help="first quarter, e.g. 2026Q1")
    indicators.add_argument("--to", dest="end", metavar="QUARTER", help="last quarter")
    indicators.add_argument("--region", help="КАТО region code, or KZ for the national figures")
    indicators.add_argument("--format", choices=("json", "csv"), default="json")

    openapi = command("openapi", _openapi, "print the OpenAPI document (or --write it to schemas/)")
    openapi.add_argument("--write", action="store_true")

    # Everything after "bench" goes to the harness's own parser (gateway bench --help): with no
    # prefix characters of its own, this one takes "--quick" as a plain argument.
    bench = commands.add_parser("bench", help="run the benchmarks on loopback", add_help=False,
                                prefix_chars="+")
    bench.set_defaults(run=_bench)
    bench.add_argument("arguments", nargs="*")
    return parser


def _config(args: argparse.Namespace) -> GatewayConfig:
    return load_config(args.config)


def _serve(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.workers < 1:
        print("gateway: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:
        if not config.store.url.startswith("postgres"):
            print(f"gateway: --workers {args.workers} needs the PostgreSQL store: an SQLite database has one "
                  "writer, which one gateway process already keeps busy; run one worker on SQLite, or set "
                  "[store] url = \"postgresql://...\" (docs/deployment.md)", file=sys.stderr)
            return 2
        from gateway.entrypoints import workers

        port = config.server.port if args.port is None else args.port
        return workers.supervise(workers.serve_command(args.config, args.host), args.workers, port,
                                 log=lambda line: print(line, file=sys.stderr, flush=True))
    configure_logging(config.logging.level, config.logging.format)

    async def run() -> None:
        gateway = build(config)
        await gateway.start(host=args.host, port=args.port, reuse_port=args.reuse_port)
        if args.ready_fd is not None:  # tell the supervisor of --workers the port, then let go of the pipe
            os.write(args.ready_fd, f"{gateway.port}\n".encode())
            os.close(args.ready_fd)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await gateway.stop()

    eventloop.run(run())
    return 0


def _config_check(args: argparse.Namespace) -> int:
    config = _config(args)
    services = sum(len(m.services) for m in config.members.values())
    grants = sum(len(m.may_call) for m in config.members.values())
    rules = sum(len(documents) for purposes in config.policy.values() for documents in purposes.values())
    print(
        f"configuration ok: {len(config.members)} members, {services} services, {grants} grants, "
        f"{rules} disclosure rules; store {config.store.url.split(':', 1)[0]}"
    )
    sys.stdout.flush()
    for warning in config.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    return 0


async def _with_store(args: argparse.Namespace, action):
    config = _config(args)
    store = create_store(config.store.url, base_dir=config.base_dir)
    await store.open()
    try:
        return await action(store, config)
    finally:
        await store.close()


def _iso(value: float | None) -> str:
    return "-" if value is None else datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(message: Message) -> dict:
    return {
        "message_id": message.id,
        "sender": message.sender,
        "recipient": message.recipient,
        "service": message.service,
        "attempts": message.attempts,
        "accepted_at": _iso(message.accepted_at),
        "last_status": message.last_status,
        "last_error": message.last_error,
    }


def _dlq_list(args: argparse.Namespace) -> int:
    async def action(store, _config):
        return await store.list_messages(state=MessageState.DEAD, recipient=args.recipient, limit=args.limit)

    messages = asyncio.run(_with_store(args, action))
    if args.json:
        print(json.dumps([_row(m) for m in messages], ensure_ascii=False, indent=2))
        return 0
    if not messages:
        print("no dead letters")
    for m in messages:
        print(f"{m.id}  {m.sender}->{m.recipient}/{m.service}  attempts={m.attempts}  {_iso(m.accepted_at)}  {m.last_error}")
    return 0


def _dlq_show(args: argparse.Namespace) -> int:
    async def action(store, _config):
        return await store.get_message(args.message_id), await store.attempts(args.message_id)

    message, attempts = asyncio.run(_with_store(args, action))
    if message is None or message.state is not MessageState.DEAD:
        print(f"gateway: no dead letter {args.message_id}", file=sys.stderr)
        return 1
    details = _row(message) | {
        "correlation_id": message.correlation_id,
        "purpose": message.purpose,
        "replays": message.replays,
        "body_bytes": len(message.body),
        "attempt_history": [
            {"number": a.number, "at": _iso(a.started_at), "outcome": a.outcome, "status": a.status, "error": a.error}
            for a in attempts
        ],
    }
    print(json.dumps(details, ensure_ascii=False, indent=2))
    return 0


def _dlq_replay(args: argparse.Namespace) -> int:

    if not args.message_ids and not args.recipient:
        print("gateway: name message ids to replay, or --recipient for all of one recipient's", file=sys.stderr)
        return 2

    async def action(store, config):
        return await replay_dead_letters(
            store, now=time.time(), max_age_seconds=config.delivery.max_age_seconds,
            message_ids=args.message_ids, recipient=args.recipient,
        )

    replayed, not_dead = asyncio.run(_with_store(args, action))
    print(f"replayed {len(replayed)} dead letters")
    for message_id in not_dead:
        print(f"not a dead letter: {message_id}", file=sys.stderr)
    return 0 if not not_dead else 1


def _audit_verify(args: argparse.Namespace) -> int:
    async def action(store, config):
        keys = AuditKeys.read(config.audit, config.base_dir)
        return keys, await AuditLog(store, keys).verify()

    keys, report = asyncio.run(_with_store(args, action))
    for key in keys.verification_keys:
        print(f"tree-head key {fingerprint(key)}")
    if keys.subject_secret is None:
        print("subject key secret missing: subject keys were not checked")
    if report.intact:
        print(f"audit log intact: {report.entries} entries, {report.tree_heads} signed tree heads")
        if report.signed_size < report.entries:
            print(f"entries {report.signed_size + 1}–{report.entries} are not yet covered by a signed tree head")
        return 0
    first = report.first_bad_entry
    if first is not None:
        print(f"audit log NOT intact: first bad entry is {first.seq}: {first.description}")
    else:
        print("audit log NOT intact: its tree heads are not genuine")
    for problem in report.problems:
        print(f"  {problem.description}")
    if report.unlisted_problems:
        print(f"  … and {report.unlisted_problems} more problems")
    return 1


def _audit_subject(args: argparse.Namespace) -> int:
    try:
        iin = validate_iin(args.iin)
    except InvalidIIN as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2

    async def action(store, config):
        keys = AuditKeys.read(config.audit, config.base_dir)
        if keys.subject_secret is None:
            raise ConfigError(
                f"{config.base_dir / config.audit.subject_key_secret}: the subject key secret is missing; "
                "without it the audit log cannot be searched by person"
            )
        audit = AuditLog(store, keys, gateway_member=config.server.member_id)
        try:
            operator = getpass.getuser()
        except (KeyError, OSError):
            operator = "unknown"
        return await subject_disclosures(audit, iin, viewer=f"cli:{operator}", viewer_role=None,
                                         gateway_member=config.server.member_id, reason="gateway audit subject")

    entries = asyncio.run(_with_store(args, action))
    if args.json:
        print(json.dumps([entry.as_json() for entry in entries], ensure_ascii=False, indent=2))
        return 0
    print(f"{len(entries)} audit entries about {iin}")
    for entry in entries:
        event = entry.event
        role = f" ({event.member_role})" if event.member_role else ""
        print(
            f"{entry.as_json()['at']}  #{entry.seq}  {event.kind.value} {event.outcome.value}  "
            f"member {event.member}{role}  counterpart {event.counterpart}"
        )
        print(f"    document {event.document_type or '-'}  service {event.service or '-'}  "
              f"purpose {event.purpose or '-'}  legal basis {event.legal_basis or '-'}")
        print(f"    fields: {', '.join(event.fields) or '-'}")
        if event.withheld:
            print(f"    withheld: {', '.join(event.withheld)}")
        if event.reason:
            print(f"    reason: {event.reason}")
        print(f"    message {event.message_id or '-'}  correlation {event.correlation_id or '-'}")
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise console_accounts.AccountError("the two passwords differ")
    return first


def _user_run(args: argparse.Namespace, action) -> int:
    try:
        message = asyncio.run(_with_store(args, action))
    except console_accounts.AccountError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    if message:
        print(message)
    return 0


def _user_add(args: argparse.Namespace) -> int:
    try:
        password = _password(args)
    except console_accounts.AccountError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2

    async def action(store, _config):
        account = await console_accounts.add_account(
            store, username=args.username, role=args.role, password=password, display_name=args.name,
            office=args.office, region=args.region, now=time.time())
        return f"account {account.username} ({account.role}) created"

    return _user_run(args, action)


def _user_passwd(args: argparse.Namespace) -> int:
    try:
        password = _password(args)
    except console_accounts.AccountError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2

    async def action(store, _config):
        await console_accounts.change_password(store, args.username, password)
        return f"password of {args.username} changed; its sessions ended"

    return _user_run(args, action)


def _user_disable(args: argparse.Namespace) -> int:
    async def action(store, _config):
        await console_accounts.disable_account(store, args.username, disabled=not args.enable)
        return f"account {args.username} {'enabled' if args.enable else 'disabled; its sessions ended'}"

    return _user_run(args, action)


def _user_list(args: argparse.Namespace) -> int:
    async def action(store, _config):
        accounts = await store.console_accounts()
        if not accounts:
            return "no accounts"
        return "\n".join(
            f"{a.username}  {a.role}  {a.display_name}"
            + (f"  office {a.office} region {a.region}" if a.office else "")
            + ("  DISABLED" if a.disabled else "")
            for a in accounts)

    return _user_run(args, action)


def _demo(args: argparse.Namespace) -> int:
    from gateway.entrypoints.tools import demo, relay_demo, years

    configure_logging("error", "json")
    if args.years is not None:
        return years.main(years=args.years, people=args.people, as_json=args.json, store_url=args.store,
                          seed=args.seed)
    if args.relay:
        return relay_demo.main(as_json=args.json, messages=args.messages, store_url=args.store)
    return demo.main(as_json=args.json, store_url=args.store, keep=args.keep)


def _simulate(args: argparse.Namespace) -> int:
    from gateway.entrypoints.tools.simulate import run_until_stopped

    config = _config(args)
    configure_logging(config.logging.level, config.logging.format)
    asyncio.run(run_until_stopped(config, gateway_url=args.gateway_url, seed=args.seed, size=args.people))
    return 0


def _pki(args: argparse.Namespace):
    if args.dir is not None:
        return DevelopmentPki(args.dir), None
    config = _config(args)
    return DevelopmentPki((config.base_dir / config.tls.ca_certificate).parent.resolve()), config


def _pki_run(action) -> int:
    try:
        action()
    except PkiError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    return 0


def _pki_init(args: argparse.Namespace) -> int:
    pki, config = _pki(args)
    members = args.members
    if members is None:
        config = config or _config(args)
        members = [config.server.member_id, *config.members]

    def init() -> None:
        DevelopmentPki.init(pki.directory, members)
        print(f"development CA in {pki.directory}: {pki.ca_certificate.name}, {pki.crl.name} (empty), "
              f"certificates for {', '.join(members)} in members/")
        if args.signing_keys:
            _signing_keys(config or _config(args))

    return _pki_run(init)


def _signing_keys(config: GatewayConfig) -> None:
    keys = DevelopmentKeys.provision(config, config.members)
    print(f"XML-signing key of the gateway ({config.signing.algorithm}): {config.base_dir / config.signing.key}, "
          f"certificate {config.base_dir / config.signing.certificate}")
    for member_id, signer in keys.signers.items():
        print(f"XML-signing development key of {member_id} ({signer.algorithm}) beside "
              f"{config.base_dir / config.members[member_id].certificates[0].path}")


def _pki_issue(args: argparse.Namespace) -> int:
    pki, _ = _pki(args)

    def issue() -> None:
        print(f"issued {pki.issue(args.member, replace=args.replace)}")

    return _pki_run(issue)


def _pki_revoke(args: argparse.Namespace) -> int:
    pki, _ = _pki(args)

    def revoke() -> None:
        for name in args.certificates:
            path = Path(name) if name.endswith(".pem") else pki.certificate(name)
            print(f"revoked {path} (serial {pki.revoke(path):x}); the gateway refuses it from its next handshake")

    return _pki_run(revoke)


def _pki_crl(args: argparse.Namespace) -> int:
    pki, _ = _pki(args)

    def refresh() -> None:
        pki.refresh_crl()
        print(f"re-signed {pki.crl}")

    return _pki_run(refresh)


def _bench(args: argparse.Namespace) -> int:
    try:
        from bench.run import main as bench
    except ImportError:
        print("gateway: the benchmark package (bench) is missing from this installation; reinstall the gateway",
              file=sys.stderr)
        return 2
    return bench(args.arguments, program=["gateway", "bench"])


def _indicators(args: argparse.Namespace) -> int:
    """What GET /api/v1/indicators publishes, computed from the store now."""

    async def action(store, _config):
        indicators = Indicators(store, time.time)
        wanted = IndicatorFilter.parse(args.start, args.end, args.region, today=indicators.today())
        return await indicators.report(wanted)

    try:
        report = asyncio.run(_with_store(args, action))
    except InvalidFilter as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    print(as_csv(report) if args.format == "csv" else report.model_dump_json(indent=2), end="" if args.format == "csv"
          else "\n")
    return 0


def _openapi(args: argparse.Namespace) -> int:
    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    if args.write:
        target = resource_dir("schemas") / "openapi" / "gateway.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
