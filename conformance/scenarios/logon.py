"""The Logon and signing scenarios (kalshi/logon/01..06): a signed Logon as Kalshi wants it, a fresh
signature on every Logon, permanent refusals that stop retries, a stale session waited out, clock
discipline, and Logon switches that match the profile. Shared parts: ``conformance.scenarios.session``."""

from __future__ import annotations


from conformance.model import Evidence, Finding, ScenarioResult, Verdict
from conformance.profile import Profile
from conformance.scenarios import Context, judge, scenario
from conformance.scenarios.session import (
    SLACK, RECONNECT_WAIT, STORM, HEARTBEAT_TOLERANCE, CLOSE_MARK, latest_accepted, current_connection, logged_on,
    watch, act, heartbeat_of, result, no_logon, fault_made, masked,
)
from conformance.transcript import (
    Msg, accepted, by_connection, connection_end, first_mark, from_client, has_millis, logons, marks, messages, refusal,
    sending_time, stopped_by_runner, to_client,
)
from fixengine.kalshi.facts import (
    MAX_RETENTION_HOURS, RESET_REQUIRED, RETENTION_ALLOWED, SENDING_TIME_TOLERANCE_S, SETTLEMENT_REPORTS_ALLOWED,
    TEXT_ALREADY_EXISTS, TEXT_INVALID_TARGET, TEXT_TIER_NOT_ALLOWED,
)

REFUSAL_WATCH = 8.0  # how long retries after a permanent refusal are counted
STALE_REFUSAL_S = 20.0  # how long "already exists" is answered
STALE_RECOVERY_WAIT = 90.0  # for the Logon after it (a client's backoff may have grown to a minute)
SKEW_S = 40.0  # the simulator's clock, moved ahead of the client's
SKEW_WATCH = 10.0  # how long retries after a 373=10 Reject are counted

# Timeline marks (prefixes of FaultMark.what).
REFUSE_MARK = "refuse_logons:"
LIFTED_MARK = "refusal lifted"
SKEW_MARK = "skew_clock +"
UNSKEW_MARK = "skew_clock 0"

SIGNATURE_TEXT = "Invalid signature: RawData (96) does not verify for this API key"
PERMANENT_TEXTS = (TEXT_TIER_NOT_ALLOWED, TEXT_INVALID_TARGET, SIGNATURE_TEXT)
ALWAYS = 1000  # Logons a standing refusal answers (until it is lifted)

# The Logon switches and the LogonFlags field each one mirrors.
FLAG_TAGS: dict[int, str] = {
    8013: "cancel_orders_on_disconnect", 20126: "listener", 20127: "receive_settlement_reports",
    20200: "message_retention_hours", 21005: "use_dollars", 21007: "enable_ioc_cancel_report",
    21008: "preserve_original_order_qty", 21011: "skip_pending_exec_reports", 21012: "use_expired_ord_status",
    21026: "always_emit_new_before_trade", 21027: "split_collateral_return",
}


# --- kalshi/logon/01 ---------------------------------------------------------------------------------


@scenario("kalshi/logon/01")
async def signed_logon(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    conn = current_connection(ctx.evidence)
    reply_at = latest_accepted(ctx.evidence).at  # type: ignore[union-attr]
    # What the client sends next on the session: heartbeats or application messages, no second Logon.
    await ctx.wait_for(lambda ev: any(m.connection == conn and m.at > reply_at for m in from_client(messages(ev)))
                       or connection_end(ev, conn) is not None,
                       heartbeat_of(ctx.evidence) * HEARTBEAT_TOLERANCE + SLACK + 1)


def logon_problems(logon: Msg, session_type: str, first: bool) -> list[Finding]:
    """What is wrong with one Logon's session fields (not its switches: kalshi/logon/06)."""
    f = logon.fields
    found = []

    def want(ok: bool, expected: str, seen: str) -> None:
        if not ok:
            found.append(Finding(expected, seen, logon.index))

    begin = f.get(8, "")
    want(begin in ("FIXT.1.1", "FIX.4.4"), "8=FIXT.1.1 (or FIX.4.4 on the gateway's listener)", f"8={begin}")
    if begin == "FIXT.1.1":
        want(f.get(1137) == "9", "1137=9 (FIX 5.0 SP2)", f"1137={f.get(1137, '(absent)')}")
    want(f.get(98) == "0", "98=0", f"98={f.get(98, '(absent)')}")
    heartbeat = f.get(108, "")
    want(heartbeat.isdigit() and int(heartbeat) > 3, "108 a whole number of seconds above 3", f"108={heartbeat or '(absent)'}")
    reset = f.get(141) == "Y"
    if first or reset:
        want(f.get(34) == "1", "34=1 on a first or reset Logon", f"34={f.get(34, '(absent)')}")
    if session_type in {t.value for t in RESET_REQUIRED}:
        want(reset, f"141=Y on {session_type}", f"141={f.get(141, '(absent)')}")
    signature = f.get(96, "")
    want(bool(signature), "96 (RawData) carrying the signature", "no 96")
    if 95 in f:
        want(f[95] == str(len(signature.encode("latin-1"))), "95 equal to the length of 96",
             f"95={f[95]}, 96 is {len(signature)} characters")
    return found


@judge("kalshi/logon/01")
def _logon_01(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/logon/01"
    msgs = messages(evidence)
    first_in = from_client(msgs)
    if not first_in:
        return result(sid, Verdict.FAIL, "the client never sent a Logon",
                       [Finding("a Logon (35=A) on the session's port", "no message from the client")])
    first = first_in[0]
    if first.type != "A":
        return result(sid, Verdict.FAIL, f"the client's first message is 35={first.type or '?'}, not a Logon",
                       [Finding("a Logon (35=A) first", f"35={first.type or '(unparseable)'}", first.index)])
    findings = logon_problems(first, first.wire.session, first=True)
    refused = refusal(msgs, first.connection)
    if refused is not None:
        text = refused.get(58, "")
        findings.append(Finding("the Logon accepted (its signature verified)", f"refused: {text}", refused.index))
    elif accepted(msgs, first.connection) is None:
        findings.append(Finding("a Logon answer from the simulator", "none: the connection ended first", first.index))
    else:
        reply = accepted(msgs, first.connection)
        assert reply is not None
        after = [m for m in from_client(msgs, after=reply.at) if m.connection == first.connection]
        if after and after[0].type == "A":
            findings.append(Finding("heartbeats or application messages after the Logon answer",
                                    "another Logon", after[0].index))
        end = connection_end(evidence, first.connection)
        if not after and end is not None and end[1] and not stopped_by_runner(evidence, end[0]):
            findings.append(Finding("the session to stay up after the Logon answer",
                                    f"the client closed it {end[0] - reply.at:.1f} s later", reply.index))
    if findings:
        return result(sid, Verdict.FAIL, f"the Logon is not as Kalshi requires: {findings[0].expected}, "
                                          f"seen {findings[0].seen}", findings)
    return result(sid, Verdict.PASS, "signed Logon accepted with every session field as Kalshi requires",
                   measured={"heartbeat_interval_s": float(first.get(108) or 0)})


# --- kalshi/logon/02 ---------------------------------------------------------------------------------


@scenario("kalshi/logon/02")
async def fresh_signatures(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    for _ in range(2):
        conn = current_connection(ctx.evidence)
        if not await act(ctx, f"{CLOSE_MARK} {conn}", ctx.sim.faults.close, ctx.key.key_id):
            return
        if not await logged_on(ctx, after=conn, timeout=RECONNECT_WAIT):
            return


@judge("kalshi/logon/02")
def _logon_02(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/logon/02"
    msgs = messages(evidence)
    sent = logons(msgs)
    if not sent:
        return no_logon(sid)
    if len(sent) < 2:
        return result(sid, Verdict.INCONCLUSIVE,
                       f"the client did not log on again within {RECONNECT_WAIT:g} s after the simulator closed "
                       "its connection, so no second signature could be compared")
    signatures = [m.get(96, "") for m in sent]
    if all(masked(s) for s in signatures):
        return result(sid, Verdict.INCONCLUSIVE, "the signatures (96) were masked in this evidence")
    findings = []
    for i, logon in enumerate(sent):
        refused = refusal(msgs, logon.connection)
        if refused is not None and "signature" in (refused.get(58) or "").lower():
            findings.append(Finding("a signature that verifies", f"refused: {refused.get(58)}", refused.index))
        if i == 0:
            continue
        stamp, previous = sending_time(logon), sending_time(sent[i - 1])
        if stamp is None or previous is None or stamp <= previous:
            findings.append(Finding("a SendingTime (52) later than the previous Logon's",
                                    f"52={logon.get(52)} after {sent[i - 1].get(52)}", logon.index))
        if logon.get(96) in signatures[:i]:
            findings.append(Finding("a signature (96) never sent before", "one an earlier Logon sent", logon.index))
    measured = {"logons": float(len(sent))}
    if findings:
        return result(sid, Verdict.FAIL, f"a Logon reused a signature or a SendingTime: {findings[0].expected}",
                       findings, measured)
    return result(sid, Verdict.PASS, f"{len(sent)} Logons, each freshly stamped and signed", measured=measured)


# --- kalshi/logon/03 ---------------------------------------------------------------------------------


@scenario("kalshi/logon/03", start_client=False)
async def permanent_refusals(ctx: Context) -> None:
    for text in PERMANENT_TEXTS:
        refused_before = len(to_client(messages(ctx.evidence), "5"))
        await act(ctx, f"{REFUSE_MARK} {text}", ctx.sim.faults.refuse_next_logon, ctx.key.key_id, text, ALWAYS)
        await ctx.start_client()
        await ctx.wait_for(lambda ev: len(to_client(messages(ev), "5")) > refused_before or not ctx.client_running,
                           ctx.connect_timeout)
        await watch(ctx, REFUSAL_WATCH)
        await ctx.stop_client()
        await act(ctx, LIFTED_MARK, ctx.sim.faults.clear, ctx.key.key_id)


@judge("kalshi/logon/03")
def _logon_03(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/logon/03"
    msgs = messages(evidence)
    phases = marks(evidence, REFUSE_MARK)
    if not phases:
        return result(sid, Verdict.INCONCLUSIVE, "no refusal was armed")
    ends = [m.at for m in marks(evidence, LIFTED_MARK)]
    findings: list[Finding] = []
    measured: dict[str, float] = {}
    tried = 0
    for n, phase in enumerate(phases, start=1):
        text = phase.what[len(REFUSE_MARK):].strip()
        end = next((t for t in ends if t > phase.at), evidence.ended or float("inf"))
        attempts = [m for m in logons(msgs) if phase.at <= m.at <= end]
        measured[f"logons_after_refusal_{n}"] = float(len(attempts))
        if not attempts:
            continue
        tried += 1
        if len(attempts) > 2:
            findings.append(Finding(f"at most one retry after Logout {text!r}",
                                    f"{len(attempts)} Logons within {end - attempts[0].at:.1f} s", attempts[2].index))
        for a, b in zip(attempts, attempts[1:]):
            if b.at - a.at < STORM:
                findings.append(Finding("no reconnect storm", f"a Logon {b.at - a.at:.2f} s after the last", b.index))
                break
    if findings:
        return result(sid, Verdict.FAIL, f"the client kept retrying a permanent refusal: {findings[0].seen}",
                       findings, measured)
    if tried < len(phases):
        return result(sid, Verdict.INCONCLUSIVE,
                       f"the client sent no Logon for {len(phases) - tried} of the {len(phases)} refusals", (), measured)
    return result(sid, Verdict.PASS, "after each permanent refusal the client retried at most once (whether it "
                                      "showed the text to its operator is not visible on the wire)", (), measured)


# --- kalshi/logon/04 ---------------------------------------------------------------------------------


@scenario("kalshi/logon/04", start_client=False)
async def stale_session(ctx: Context) -> None:
    await act(ctx, f"{REFUSE_MARK} {TEXT_ALREADY_EXISTS} for {STALE_REFUSAL_S:g} s",
               ctx.sim.faults.refuse_next_logon, ctx.key.key_id, TEXT_ALREADY_EXISTS, ALWAYS)
    await ctx.start_client()
    await watch(ctx, STALE_REFUSAL_S)
    await act(ctx, LIFTED_MARK, ctx.sim.faults.clear, ctx.key.key_id)
    await logged_on(ctx, timeout=STALE_RECOVERY_WAIT)


def _overlaps(evidence: Evidence, msgs: list[Msg]) -> list[Finding]:
    """Connections of the key open at the same time: one began before the one before it ended."""
    found = []
    conns = by_connection(msgs)
    numbers = list(conns)
    for a, b in zip(numbers, numbers[1:]):
        end = connection_end(evidence, a)
        started = conns[b][0]
        if end is None or started.at < end[0] - 0.05:  # the two ends are seen by one thread: no skew
            found.append(Finding("one connection per key at a time",
                                 f"connection {b} opened while connection {a} was still open", started.index))
    return found


@judge("kalshi/logon/04")
def _logon_04(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/logon/04"
    msgs = messages(evidence)
    armed, lifted = first_mark(evidence, REFUSE_MARK), first_mark(evidence, LIFTED_MARK)
    if armed is None or lifted is None:
        return result(sid, Verdict.INCONCLUSIVE, "the refusal was not armed and lifted")
    during = [m for m in logons(msgs) if armed.at <= m.at <= lifted.at]
    if not during:
        return no_logon(sid)
    delays = [b.at - a.at for a, b in zip(during, during[1:])]
    measured: dict[str, float] = {"logons_while_refused": float(len(during))}
    if delays:
        measured |= {"first_delay_s": delays[0], "last_delay_s": delays[-1]}
    findings = _overlaps(evidence, msgs)
    fast = [(d, m) for d, m in zip(delays, during[1:]) if d < STORM]
    if fast:
        findings.append(Finding("backoff between attempts", f"a Logon {fast[0][0]:.2f} s after the last", fast[0][1].index))
    if len(delays) >= 2 and max(delays) - min(delays) < 0.05:
        findings.append(Finding("delays that grow or vary (backoff with jitter)",
                                f"{len(delays)} delays all of {delays[0]:.2f} s", during[-1].index))
    after = [m for m in logons(msgs) if m.at > lifted.at]
    if not after:
        findings.append(Finding(f"a Logon within {STALE_RECOVERY_WAIT:g} s of the refusal ending", "none"))
    elif accepted(msgs, after[0].connection) is None:
        findings.append(Finding("the first Logon after the refusal accepted", "it was not", after[0].index))
    else:
        measured["logged_on_after_lift_s"] = after[0].at - lifted.at
    if findings:
        return result(sid, Verdict.FAIL, f"the stale-session refusal was not waited out well: {findings[0].seen}",
                       findings, measured)
    return result(sid, Verdict.PASS, f"{len(during)} spaced attempts during the refusal, one connection at a time, "
                                      "logged on once it cleared", (), measured)


# --- kalshi/logon/05 ---------------------------------------------------------------------------------


@scenario("kalshi/logon/05", exclusive=True)
async def clock_discipline(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    conn = current_connection(ctx.evidence)
    try:
        await act(ctx, f"{SKEW_MARK}{SKEW_S:g} s", ctx.sim.faults.skew_clock, SKEW_S)
        if not await act(ctx, f"{CLOSE_MARK} {conn}", ctx.sim.faults.close, ctx.key.key_id):
            return
        refused = lambda ev: any(m.get(373) == "10" for m in to_client(messages(ev), "3") if m.connection > conn)  # noqa: E731
        if await ctx.wait_for(lambda ev: refused(ev) or not ctx.client_running, RECONNECT_WAIT) and refused(ctx.evidence):
            await watch(ctx, SKEW_WATCH)
    finally:
        await act(ctx, UNSKEW_MARK, ctx.sim.faults.skew_clock, 0)


@judge("kalshi/logon/05")
def _logon_05(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/logon/05"
    msgs = messages(evidence)
    sent = from_client(msgs)
    if not logons(msgs):
        return no_logon(sid)
    findings = []
    worst = 0.0
    for m in sent:
        stamp = m.get(52, "")
        when = sending_time(m)
        if not has_millis(stamp) or when is None:
            findings.append(Finding("52 in UTC with milliseconds", f"52={stamp or '(absent)'}", m.index))
            continue
        offset = abs(when.timestamp() - m.at)
        worst = max(worst, offset)
        if offset > SENDING_TIME_TOLERANCE_S:
            findings.append(Finding(f"52 within {SENDING_TIME_TOLERANCE_S} s of the simulator's clock",
                                    f"{offset:.1f} s off", m.index))
    measured = {"worst_sending_time_offset_ms": worst * 1000}
    skew = fault_made(evidence, SKEW_MARK)
    rejects = [m for m in to_client(msgs, "3") if skew is not None and m.at >= skew.at and m.get(373) == "10"]
    if not findings and not rejects:
        return result(sid, Verdict.INCONCLUSIVE, "52 is right, but the client did not log on again after the "
                                                  "close, so its answer to a 373=10 Reject could not be seen",
                       (), measured)
    if rejects:
        unskew = first_mark(evidence, UNSKEW_MARK)
        end = unskew.at if unskew is not None else evidence.ended
        attempts = [m for m in logons(msgs) if rejects[0].at <= m.at <= end]
        first_retry = attempts[0].at - rejects[0].at if attempts else None
        measured["logons_after_reject"] = float(len(attempts))
        if first_retry is not None:
            measured["first_retry_after_reject_s"] = first_retry
            if first_retry < 1.0:
                findings.append(Finding("a backoff after a 373=10 Reject", f"a Logon {first_retry:.2f} s later",
                                        attempts[0].index))
        if len(attempts) > 3:
            findings.append(Finding(f"at most 3 Logons in the {SKEW_WATCH:g} s after the Reject",
                                    f"{len(attempts)}", attempts[3].index))
    if findings:
        return result(sid, Verdict.FAIL, f"clock discipline: expected {findings[0].expected}, seen {findings[0].seen}",
                       findings, measured)
    return result(sid, Verdict.PASS, "52 on time at millisecond precision; after a 373=10 Reject the client backed "
                                      "off (its own report of the clock error is not visible on the wire)", (), measured)


# --- kalshi/logon/06 ---------------------------------------------------------------------------------


@scenario("kalshi/logon/06")
async def logon_flags(ctx: Context) -> None:
    await ctx.wait_for(lambda ev: bool(logons(messages(ev))) or not ctx.client_running, ctx.connect_timeout)


def switches(logon: Msg) -> dict[int, str]:
    """The Logon's switches as sent, ``N`` left out (the same as absent)."""
    return {tag: value for tag in FLAG_TAGS if (value := logon.get(tag) or "") and value != "N"}


def declared_switches(profile: Profile, session_type: str) -> dict[int, str] | None:
    session = profile.session(session_type)
    if session is None:
        return None
    return dict(session.logon.wire_fields())


@judge("kalshi/logon/06")
def _logon_06(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/logon/06"
    sent = logons(messages(evidence))
    if not sent:
        return no_logon(sid)
    findings = []
    for logon in sent:
        session_type = logon.get(56) or logon.wire.session
        on = switches(logon)
        declared = declared_switches(profile, session_type)
        if declared is None:
            findings.append(Finding("a session type the profile declares", f"56={session_type}", logon.index))
            continue
        if on != declared:
            show = lambda d: ", ".join(f"{t}={v}" for t, v in sorted(d.items())) or "none"  # noqa: E731
            findings.append(Finding(f"the profile's switches ({show(declared)})", show(on), logon.index))
        if on.get(20126) == "Y" and on.get(21011) != "Y":
            findings.append(Finding("20126=Y with 21011=Y", "20126=Y without 21011=Y", logon.index))
        if on.get(20126) == "Y" and on.get(8013) == "Y":
            findings.append(Finding("no 8013=Y on a listener (20126=Y)", "both", logon.index))
        if 20200 in on:
            hours = on[20200]
            if session_type not in {t.value for t in RETENTION_ALLOWED}:
                findings.append(Finding("20200 only on KalshiRT or KalshiPT", f"20200 on {session_type}", logon.index))
            if not hours.isdigit() or not 1 <= int(hours) <= MAX_RETENTION_HOURS:
                findings.append(Finding(f"20200 from 1 to {MAX_RETENTION_HOURS}", f"20200={hours}", logon.index))
        if on.get(20127) == "Y" and session_type not in {t.value for t in SETTLEMENT_REPORTS_ALLOWED}:
            findings.append(Finding("20127 only on KalshiNR, KalshiRT or KalshiPT", f"20127 on {session_type}", logon.index))
    if findings:
        return result(sid, Verdict.FAIL, f"Logon switches: expected {findings[0].expected}, seen {findings[0].seen}",
                       findings)
    return result(sid, Verdict.PASS, f"the switches of all {len(sent)} Logons equal the profile's and are valid")
