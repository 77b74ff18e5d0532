"""The heartbeat scenarios (kalshi/hb/01..03): heartbeats on time, TestRequests answered, a silent
server detected. Shared parts: ``conformance.scenarios.session``."""

from __future__ import annotations

import statistics

from conformance.model import Evidence, Finding, ScenarioResult, Verdict
from conformance.profile import Profile
from conformance.scenarios import Context, judge, scenario
from conformance.scenarios.session import (
    SLACK, RECONNECT_WAIT, HEARTBEAT_TOLERANCE, TEST_REQUEST_MARK, current_connection, logged_on, watch, act,
    heartbeat_of, result, no_logon, fault_made,
)
from conformance.transcript import Msg, connection_end, first_mark, from_client, logons, messages, to_client
from fixengine.kalshi.facts import RESET_REQUIRED

# Timeline marks (prefixes of FaultMark.what).
IDLE_END_MARK = "idle: the watch ends"
SILENT_MARK = "go_silent"


# --- kalshi/hb/01 ------------------------------------------------------------------------------------


def idle_window(heartbeat: float) -> float:
    """How long the session is watched idle: three intervals, at least two, at most a minute unless
    two intervals need longer."""
    return max(2 * heartbeat, min(3 * heartbeat, 60.0)) + SLACK


@scenario("kalshi/hb/01")
async def heartbeat_cadence(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    await watch(ctx, idle_window(heartbeat_of(ctx.evidence)))
    ctx.fault(IDLE_END_MARK)


@judge("kalshi/hb/01")
def _hb_01(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/hb/01"
    msgs = messages(evidence)
    reply = next(iter(to_client(msgs, "A")), None)
    end = first_mark(evidence, IDLE_END_MARK)
    if reply is None or evidence.heartbeat_interval is None:
        return no_logon(sid)
    heartbeat = evidence.heartbeat_interval
    limit = heartbeat * HEARTBEAT_TOLERANCE + SLACK
    conn = reply.connection
    closed = connection_end(evidence, conn)
    ends = [x for x in (end.at if end else None, closed[0] if closed else None, evidence.ended or None) if x]
    stop = min(ends) if ends else max(m.at for m in msgs)
    sent = [m for m in from_client(msgs, after=reply.at) if m.connection == conn and m.at <= stop]
    times = [reply.at, *(m.at for m in sent), stop]
    longest, where = 0.0, None
    for i, (a, b) in enumerate(zip(times, times[1:])):
        if b - a > longest:
            longest, where = b - a, (sent[i].index if i < len(sent) else None)
    measured = {"heartbeat_interval_s": heartbeat, "longest_gap_s": longest, "watched_s": stop - reply.at}
    if closed is not None and closed[0] < (end.at if end else stop) - 0.01:
        return result(sid, Verdict.FAIL, "the session ended while it was idle",
                       [Finding("the session kept up by heartbeats", "the connection ended")], measured)
    if longest > limit:
        return result(sid, Verdict.FAIL, f"{longest:.1f} s without a message from the client (HeartBtInt {heartbeat:g} s)",
                       [Finding(f"a message at least every {limit:.1f} s (1.1 x HeartBtInt + {SLACK:g} s)",
                                f"a gap of {longest:.1f} s", where)], measured)
    if end is None:
        return result(sid, Verdict.INCONCLUSIVE, "the idle watch did not run to its end", (), measured)
    return result(sid, Verdict.PASS, f"the client's longest silence was {longest:.1f} s (HeartBtInt {heartbeat:g} s)",
                   (), measured)


# --- kalshi/hb/02 ------------------------------------------------------------------------------------

TEST_REQUESTS = 3


@scenario("kalshi/hb/02")
async def test_requests(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    heartbeat = heartbeat_of(ctx.evidence)
    for n in range(1, TEST_REQUESTS + 1):
        await watch(ctx, ctx.rng.uniform(0.2, 0.8) * heartbeat)
        test_req_id = f"CONF-{n}"
        if not await act(ctx, f"{TEST_REQUEST_MARK} {test_req_id}", ctx.sim.faults.test_request, ctx.key.key_id,
                          test_req_id):
            return
        answered = lambda ev, t=test_req_id: any(m.get(112) == t for m in from_client(messages(ev), "0"))  # noqa: E731
        if not await ctx.wait_for(lambda ev: answered(ev) or not ctx.client_running, heartbeat + SLACK):
            return


@judge("kalshi/hb/02")
def _hb_02(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/hb/02"
    msgs = messages(evidence)
    asked = [m for m in to_client(msgs, "1") if (m.get(112) or "").startswith("CONF-")]
    if not asked or evidence.heartbeat_interval is None:
        return no_logon(sid)
    heartbeat = evidence.heartbeat_interval
    latencies, findings = [], []
    for request in asked:
        answer = next((m for m in from_client(msgs, "0", request.at) if m.get(112) == request.get(112)), None)
        if answer is None:
            findings.append(Finding(f"a Heartbeat with 112={request.get(112)}", "none", request.index))
            continue
        latency = answer.at - request.at
        latencies.append(latency)
        if latency > heartbeat:
            findings.append(Finding(f"the answer within HeartBtInt ({heartbeat:g} s)", f"after {latency:.2f} s", answer.index))
    measured = {"testrequests": float(len(asked))}
    if latencies:
        measured |= {"testrequest_latency_ms_max": max(latencies) * 1000,
                     "testrequest_latency_ms_mean": statistics.fmean(latencies) * 1000}
    if findings:
        return result(sid, Verdict.FAIL, f"TestRequest not answered as required: expected {findings[0].expected}, "
                                          f"seen {findings[0].seen}", findings, measured)
    return result(sid, Verdict.PASS, f"{len(asked)} TestRequests answered, the slowest in "
                                      f"{max(latencies) * 1000:.0f} ms", (), measured)


# --- kalshi/hb/03 ------------------------------------------------------------------------------------


@scenario("kalshi/hb/03")
async def silent_server(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    conn = current_connection(ctx.evidence)
    heartbeat = heartbeat_of(ctx.evidence)
    if not await act(ctx, f"{SILENT_MARK} connection {conn}", ctx.sim.faults.go_silent, ctx.key.key_id):
        return
    await ctx.wait_for(lambda ev: connection_end(ev, conn) is not None or not ctx.client_running,
                       4 * heartbeat + SLACK)
    if connection_end(ctx.evidence, conn) is not None:
        await logged_on(ctx, after=conn, timeout=RECONNECT_WAIT)


def reset_policy_problems(logon: Msg, session_type: str, profile: Profile, previous_seq: int | None) -> list[Finding]:
    """A Logon after a reconnect against the session type's rule and the profile's declaration."""
    reset = logon.get(141) == "Y"
    session = profile.session(session_type)
    must_reset = session_type in {t.value for t in RESET_REQUIRED} or (session is not None and session.logon.reset_seq_num)
    if must_reset and not (reset and logon.get(34) == "1"):
        return [Finding(f"141=Y and 34=1 on {session_type}", f"141={logon.get(141, '(absent)')} 34={logon.get(34)}",
                        logon.index)]
    if not must_reset and not reset and previous_seq is not None and logon.seq != previous_seq + 1:
        return [Finding(f"34={previous_seq + 1}, the next number after the last connection",
                        f"34={logon.get(34)}", logon.index)]
    return []


@judge("kalshi/hb/03")
def _hb_03(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/hb/03"
    msgs = messages(evidence)
    silent = fault_made(evidence, SILENT_MARK)
    if not logons(msgs) or evidence.heartbeat_interval is None:
        return no_logon(sid)
    if silent is None:
        return result(sid, Verdict.INCONCLUSIVE, "the session had ended before the simulator could go silent")
    heartbeat = evidence.heartbeat_interval
    conn = int(silent.what.rsplit(" ", 1)[-1])
    received = [m for m in to_client(msgs) if m.connection == conn and m.at <= silent.at]
    quiet_from = received[-1].at if received else silent.at  # the client last heard the simulator then
    findings, measured = [], {"heartbeat_interval_s": heartbeat}
    probe = next((m for m in from_client(msgs, "1", silent.at) if m.connection == conn), None)
    if probe is None:
        findings.append(Finding("a TestRequest after about one HeartBtInt of silence", "none"))
    else:
        measured["testrequest_after_silence_s"] = probe.at - quiet_from
        if probe.at - quiet_from > 1.5 * heartbeat + SLACK:
            findings.append(Finding(f"a TestRequest within 1.5 x HeartBtInt ({1.5 * heartbeat:g} s) of silence",
                                    f"after {probe.at - quiet_from:.1f} s", probe.index))
    end = connection_end(evidence, conn)
    if end is None or not end[1]:
        findings.append(Finding(f"the client closing the connection within 3 x HeartBtInt ({3 * heartbeat:g} s)",
                                "it kept the connection open" if end is None else "the simulator closed it first"))
    else:
        measured["closed_after_silence_s"] = end[0] - quiet_from
        if end[0] - quiet_from > 3 * heartbeat + SLACK:
            findings.append(Finding(f"the connection closed within 3 x HeartBtInt ({3 * heartbeat:g} s) of silence",
                                    f"after {end[0] - quiet_from:.1f} s"))
        again = [m for m in logons(msgs) if m.connection > conn]
        if not again:
            findings.append(Finding(f"a new Logon within {RECONNECT_WAIT:g} s", "none"))
        else:
            measured["reconnect_after_close_s"] = again[0].at - end[0]
            last_seq = max((m.seq or 0 for m in from_client(msgs) if m.connection == conn), default=None)
            findings += reset_policy_problems(again[0], again[0].wire.session, profile, last_seq)
    if findings:
        return result(sid, Verdict.FAIL, f"silent server: expected {findings[0].expected}, seen {findings[0].seen}",
                       findings, measured)
    return result(sid, Verdict.PASS, "the client probed the silence, closed the connection and logged on again",
                   (), measured)
