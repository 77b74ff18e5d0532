"""The process log's two formats (``fixengine.logs``) and the redaction of FIX messages in the
message logs (``fixengine.fix.message_log``) and in log lines."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fixengine.fix.message_log import LINGER_S, MessageLogs, redact, redact_text
from fixengine.kalshi.signing import write_keypair
from fixengine.logs import JsonFormatter, TextFormatter, configure_logging, correlate

SOH = "\x01"


def fix(*fields: str) -> str:
    return SOH.join(fields) + SOH


def record(message: str, *args: object, level: int = logging.INFO, exc_info: object = None,
           **extra: object) -> logging.LogRecord:
    return logging.getLogger("fixengine.gateway").makeRecord("fixengine.gateway", level, __file__, 1, message, args,
                                                             exc_info, extra=extra or None)  # type: ignore[arg-type]


def raised() -> object:
    try:
        raise RuntimeError("it broke")
    except RuntimeError:
        return sys.exc_info()


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger as the test found it, put back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    logging.captureWarnings(False)


# --- correlate ----------------------------------------------------------------------------------


def test_correlate_keeps_the_fields_given_as_strings_and_drops_none() -> None:
    assert correlate(oms_session="desk", oms_cl_ord_id="7", kalshi_cl_ord_id=None, exec_id=12) == \
        {"oms_session": "desk", "oms_cl_ord_id": "7", "exec_id": "12"}  # type: ignore[arg-type]


def test_correlate_refuses_a_field_it_does_not_know() -> None:
    with pytest.raises(TypeError):
        correlate(oms_sesion="desk")  # type: ignore[call-arg]


# --- JSON ---------------------------------------------------------------------------------------


def test_json_line_has_utc_time_with_microseconds_level_logger_message_and_correlation() -> None:
    r = record("%s: order %s refused", "desk", "7", **correlate(session="kalshi", oms_session="desk", oms_cl_ord_id="7",
                                                                 kalshi_cl_ord_id="k-1", exec_id="E1"))
    line = JsonFormatter().format(r)
    assert "\n" not in line
    out = json.loads(line)
    assert out == {"time": out["time"], "level": "INFO", "logger": "fixengine.gateway", "message": "desk: order 7 refused",
                   "session": "kalshi", "oms_session": "desk", "oms_cl_ord_id": "7", "kalshi_cl_ord_id": "k-1", "exec_id": "E1"}
    assert out["time"].endswith("Z") and len(out["time"].split(".")[1]) == 7  # 6 digits, then Z
    assert datetime.fromisoformat(out["time"].replace("Z", "+00:00")) == datetime.fromtimestamp(r.created, timezone.utc)


def test_json_line_without_correlation_has_no_correlation_keys() -> None:
    out = json.loads(JsonFormatter().format(record("stopping")))
    assert set(out) == {"time", "level", "logger", "message"}


def test_json_exception_is_a_string_field_and_a_multiline_message_stays_one_line() -> None:
    line = JsonFormatter().format(record("first\nsecond", level=logging.ERROR, exc_info=raised()))
    assert len(line.splitlines()) == 1
    out = json.loads(line)
    assert out["message"] == "first\nsecond" and out["level"] == "ERROR"
    assert isinstance(out["exc_info"], str) and out["exc_info"].startswith("Traceback") and "RuntimeError: it broke" in out["exc_info"]


# --- text ---------------------------------------------------------------------------------------


def test_text_line_appends_the_correlation_fields_compactly() -> None:
    line = TextFormatter().format(record("desk: order refused", **correlate(oms_session="desk", oms_cl_ord_id="7")))
    assert line.endswith(" INFO    fixengine.gateway: desk: order refused [oms_session=desk oms_cl_ord_id=7]")


def test_text_line_without_correlation_is_the_plain_format() -> None:
    assert TextFormatter().format(record("stopping")).endswith(" INFO    fixengine.gateway: stopping")


def test_text_traceback_follows_the_line_with_its_fields() -> None:
    lines = TextFormatter().format(record("failed", level=logging.ERROR, exc_info=raised(), **correlate(oms_session="d"))).splitlines()
    assert lines[0].endswith("failed [oms_session=d]") and lines[1].startswith("Traceback")


# --- secrets in log lines -----------------------------------------------------------------------


LOGON = fix("8=FIXT.1.1", "9=120", "35=A", "34=1", "49=KEY", "95=6", "96=c2lnbmF0dXJl", "554=hunter2", "10=000")


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_both_formats_redact_a_quoted_logon_and_a_private_key(formatter: logging.Formatter, tmp_path: Path) -> None:
    write_keypair(tmp_path / "key.pem", tmp_path / "key.pub.pem")
    pem = (tmp_path / "key.pem").read_text()
    body = pem.splitlines()[1]
    shown = LOGON.replace(SOH, "|")
    line = formatter.format(record("unreadable: %s", shown, level=logging.ERROR, exc_info=raised()))
    line += formatter.format(record("key: %s", pem))
    assert "c2lnbmF0dXJl" not in line and "hunter2" not in line and body not in line
    assert "96=<redacted>" in line and "554=<redacted>" in line and "<redacted private key>" in line


# --- configure_logging --------------------------------------------------------------------------


def test_configure_logging_writes_json_lines_at_the_level_asked(root_logging: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("json", verbose=False, stream=out)
    log = logging.getLogger("fixengine.test")
    log.debug("not at INFO")
    log.info("placed", extra=correlate(oms_session="desk", oms_cl_ord_id="7"))
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["message"] for x in lines] == ["placed"]
    assert json.loads(lines[0])["oms_cl_ord_id"] == "7"


def test_configure_logging_again_replaces_its_own_handler_and_keeps_others(root_logging: logging.Logger) -> None:
    other = logging.StreamHandler(io.StringIO())
    root_logging.addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("text", verbose=True, stream=second)
    logging.getLogger("fixengine.test").debug("once")
    assert first.getvalue() == "" and second.getvalue().rstrip().endswith("fixengine.test: once")
    assert other in root_logging.handlers and root_logging.level == logging.DEBUG
    root_logging.removeHandler(other)


def test_configure_logging_refuses_an_unknown_format(root_logging: logging.Logger) -> None:
    with pytest.raises(ValueError, match="log format 'xml'"):
        configure_logging("xml")  # type: ignore[arg-type]


def test_the_command_refuses_an_unknown_log_format() -> None:
    result = subprocess.run([sys.executable, "-m", "fixengine", "--log-format", "xml", "keygen", "-h"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "'xml' is not one of 'text', 'json'" in result.stderr, result.stderr


# --- message logs -------------------------------------------------------------------------------


def test_redact_removes_the_signature_from_a_logon() -> None:
    assert redact(LOGON) == "8=FIXT.1.1|9=120|35=A|34=1|49=KEY|95=6|96=<redacted>|554=<redacted>|10=000|"


def test_redact_keeps_raw_data_on_other_messages() -> None:
    message = fix("8=FIX.4.4", "9=20", "35=D", "95=3", "96=abc", "10=000")
    assert redact(message) == message.replace(SOH, "|")


@pytest.mark.parametrize("tag", ["554", "925", "1402", "1404"])
def test_redact_removes_passwords_on_any_message(tag: str) -> None:
    message = fix("8=FIX.4.4", "9=20", "35=BE", f"{tag}=s3cr=et|x", "58=ok", "10=000")
    assert redact(message) == f"8=FIX.4.4|9=20|35=BE|{tag}=<redacted>|58=ok|10=000|"


def test_redact_leaves_a_message_without_secrets_as_it_is_and_tags_that_only_end_alike() -> None:
    message = fix("8=FIX.4.4", "9=20", "35=8", "11=554=x", "5554=kept", "10=000")
    assert redact(message) == message.replace(SOH, "|")


def test_redact_text_handles_messages_shown_with_bars() -> None:
    assert redact_text("bad: 8=FIX.4.4|35=A|96=sig|554=pw|58=x|") == "bad: 8=FIX.4.4|35=A|96=<redacted>|554=<redacted>|58=x|"
    assert redact_text("8=FIX.4.4|35=D|96=data|") == "8=FIX.4.4|35=D|96=data|"  # not a Logon
    assert redact_text("no fields here") == "no fields here"


def test_the_message_log_writer_wakes_once_per_burst_not_per_message(tmp_path: Path) -> None:
    """Woken per message, the writer thread took the GIL from the loop in the middle of every
    order's path; it now lingers after the first message of a burst and writes the rest with it."""
    logs = MessageLogs(tmp_path)
    logs.start()
    desk = logs.for_session("oms-desk")
    started = time.monotonic()
    for n in range(1, 41):
        desk.outgoing(fix("8=FIX.4.4", "9=30", "35=D", f"34={n}", "10=000"))
        time.sleep(0.0005)  # an OMS's pace: slower than the writer, so each message would wake it
    logs.stop()
    elapsed = time.monotonic() - started  # each burst takes the writer LINGER_S at least
    lines = (tmp_path / "oms-desk.messages.log").read_text().splitlines()
    assert [int(line.split("|34=")[1].split("|")[0]) for line in lines] == list(range(1, 41))
    assert logs.counts[("oms-desk", "out", "D")] == 40
    assert logs.bursts <= elapsed / LINGER_S + 1, (logs.bursts, elapsed)


def test_message_logs_redact_and_append_across_restarts(tmp_path: Path) -> None:
    for run in range(2):
        logs = MessageLogs(tmp_path)
        logs.start()
        desk = logs.for_session("oms-desk")
        desk.incoming(fix("8=FIX.4.4", "9=30", "35=A", "34=1", f"554=pw{run}", "925=new", "10=000"))
        desk.outgoing(fix("8=FIX.4.4", "9=30", "35=A", "34=1", "10=000"))
        logs.stop()
    lines = (tmp_path / "oms-desk.messages.log").read_text().splitlines()
    assert len(lines) == 4  # the second run appended; nothing was truncated
    assert [line.split(" ", 2)[2][0] for line in lines] == ["<", ">", "<", ">"]
    text = "\n".join(lines)
    assert "pw0" not in text and "pw1" not in text and "new" not in text
    assert text.count("554=<redacted>|925=<redacted>") == 2
