"""QuickFIX data dictionaries with Kalshi's additions merged in.

The base dictionaries come from the installed quickfix package (nothing upstream is copied into this
repository); Kalshi's fields and messages come from ``specs/kalshi-additions.xml``. The merged files
are written once per content into a directory of the caller's choosing and handed to QuickFIX by path.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from fixengine.fix.dialect import Dialect
from fixengine.errors import FixEngineError

ADDITIONS_NAME = "kalshi-additions.xml"


@dataclass(frozen=True)
class DictionaryPaths:
    """What QuickFIX needs: one dictionary for FIX 4.4, transport + application for FIXT.1.1."""

    session: Path  # DataDictionary (fix44) or TransportDataDictionary (fixt11)
    application: Path  # same file as ``session`` for fix44; AppDataDictionary for fixt11


def base_dictionary_dir() -> Path:
    """Where the quickfix package installed FIX44.xml, FIXT11.xml and FIX50SP2.xml."""
    candidates = [
        Path(sysconfig.get_path("data")) / "share" / "quickfix",
        Path(sys.prefix) / "share" / "quickfix",
        Path(sys.base_prefix) / "share" / "quickfix",
    ]
    for c in candidates:
        if (c / "FIX44.xml").is_file():
            return c
    raise FixEngineError(
        "the quickfix package's base dictionaries (FIX44.xml ...) were not found in "
        + ", ".join(str(c) for c in candidates)
        + "; reinstall quickfix (scripts/bootstrap)"
    )


def additions_path() -> Path:
    """``specs/kalshi-additions.xml`` in a checkout, or where the wheel installed it."""
    return spec_path(ADDITIONS_NAME)


def spec_path(name: str) -> Path:
    """``specs/<name>`` (a file or a directory) in a checkout, or where the wheel installed it
    (``share/fixengine/specs``: pyproject's data-files)."""
    candidates = [
        Path(__file__).resolve().parents[2] / "specs" / name,
        Path(sysconfig.get_path("data")) / "share" / "fixengine" / "specs" / name,
    ]
    for c in candidates:
        if c.exists():
            return c
    raise FixEngineError(f"{name} not found in " + ", ".join(str(c) for c in candidates))


def build_dictionaries(dialect: Dialect, out_dir: Path) -> DictionaryPaths:
    """Write the merged dictionaries for ``dialect`` into ``out_dir`` and return their paths."""
    base = base_dictionary_dir()
    additions = ET.parse(additions_path()).getroot()
    if dialect is Dialect.FIX44:
        merged = _merge(ET.parse(base / "FIX44.xml").getroot(), additions, ("session", "application"))
        path = _write(merged, out_dir, "FIX44-kalshi")
        return DictionaryPaths(session=path, application=path)
    transport = _merge(ET.parse(base / "FIXT11.xml").getroot(), additions, ("session",))
    app = _merge(ET.parse(base / "FIX50SP2.xml").getroot(), additions, ("application",))
    supported = additions.find("supported-messages[@dialect='fixt11']")
    if supported is not None and supported.text:
        _keep_only(app, set(supported.text.split()) | {m.get("msgtype", "") for m in additions.iter("message")})
    return DictionaryPaths(
        session=_write(transport, out_dir, "FIXT11-kalshi"),
        application=_write(app, out_dir, "FIX50SP2-kalshi"),
    )


def fix44_as_the_gateway_speaks(out_dir: Path) -> Path:
    """QuickFIX's FIX44.xml plus the one value after FIX 4.4 that the gateway sends OMSs:
    BusinessRejectReason (380) 8, throttle limit exceeded (FIX 5.0; Kalshi's answer to a request
    over its rate budget). For the gateway's own check and the shipped OMS client."""
    root = ET.parse(base_dictionary_dir() / "FIX44.xml").getroot()
    field = root.find("fields/field[@number='380']")
    if field is None:
        raise FixEngineError("FIX44.xml has no BusinessRejectReason (380)")
    if field.find("value[@enum='8']") is None:
        ET.SubElement(field, "value", enum="8", description="THROTTLE_LIMIT_EXCEEDED")
    return _write(root, out_dir, "FIX44-gateway")


def _write(root: ET.Element, out_dir: Path, stem: str) -> Path:
    """Write atomically, named by content, so concurrent processes never see a half-written file."""
    data = ET.tostring(root, encoding="utf-8")
    digest = hashlib.sha256(data).hexdigest()[:12]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}-{digest}.xml"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


def _merge(base: ET.Element, additions: ET.Element, parts: tuple[str, ...]) -> ET.Element:
    fields = base.find("fields")
    messages = base.find("messages")
    components = base.find("components")
    assert fields is not None and messages is not None and components is not None
    by_number = {f.get("number"): f for f in fields}
    base_names = {f.get("name") for f in fields}

    # Our names -> the name the base dictionary uses for the same tag number.
    rename: dict[str, str] = {}
    for add in additions.findall("fields/field"):
        number, name = add.get("number"), add.get("name")
        assert number and name
        existing = by_number.get(number)
        if existing is None:
            if name in base_names:
                raise FixEngineError(f"{ADDITIONS_NAME}: field {name} ({number}) clashes with a base field name")
            fields.append(_copy(add))
            by_number[number] = add
            rename[name] = name
            continue
        rename[name] = existing.get("name", name)
        known = {v.get("enum") for v in existing.findall("value")}
        for value in add.findall("value"):
            if value.get("enum") not in known:
                existing.append(_copy(value))

    # MsgType (35) lists its values: Kalshi's message types must be among them wherever the header is
    # validated (FIXT11.xml as well as the application dictionary).
    msg_type_field = by_number.get("35")
    if msg_type_field is not None and msg_type_field.find("value") is not None:
        known_types = {v.get("enum") for v in msg_type_field.findall("value")}
        for msg in additions.iter("message"):
            if msg.get("msgtype") not in known_types:
                ET.SubElement(msg_type_field, "value", enum=msg.get("msgtype", ""), description=msg.get("name", ""))

    component_map = {c.get("name"): c for c in components}
    message_map = {m.get("name"): m for m in messages}
    msgtypes = {m.get("msgtype") for m in messages}
    for part in parts:
        section = additions.find(part)
        if section is None:
            continue
        for ext in section.findall("extend"):
            target = message_map.get(ext.get("message"))
            if target is None:
                raise FixEngineError(f"{ADDITIONS_NAME}: cannot extend unknown message {ext.get('message')}")
            present = _top_level_names(target, component_map)
            for child in ext:
                child = _renamed(child, rename)
                if child.get("name") not in present:
                    target.append(child)
        for msg in section.findall("message"):
            if msg.get("msgtype") in msgtypes:
                raise FixEngineError(f"{ADDITIONS_NAME}: message type {msg.get('msgtype')} already exists")
            messages.append(_renamed(msg, rename))
            message_map[msg.get("name")] = messages[-1]
        for relax in section.findall("relax"):
            _relax(message_map, relax.get("message", ""), rename.get(relax.get("field", ""), relax.get("field", "")),
                   relax.get("only-if-listed") == "Y")
    return base


def _relax(messages: dict[str | None, ET.Element], message_name: str, field_name: str, only_if_listed: bool = False) -> None:
    """Make a top-level field of a message optional. Only where the message itself lists the field: a
    field of a shared component would be relaxed in every message using it. ``only_if_listed``: a
    field one base version has and the other lacks (e.g. FIX 5.0 SP2's MassActionReportID)."""
    target = messages.get(message_name)
    if target is None:
        raise FixEngineError(f"{ADDITIONS_NAME}: cannot relax a field of unknown message {message_name}")
    field = target.find(f"field[@name='{field_name}']")
    if field is None:
        if only_if_listed:
            return
        raise FixEngineError(f"{ADDITIONS_NAME}: cannot relax {field_name}: {message_name} does not list it")
    field.set("required", "N")


def _keep_only(root: ET.Element, msgtypes: set[str]) -> None:
    """Drop messages not in ``msgtypes``, then the components nothing uses any more."""
    messages, components = root.find("messages"), root.find("components")
    assert messages is not None and components is not None
    for message in list(messages):
        if message.get("msgtype") not in msgtypes:
            messages.remove(message)
    by_name = {c.get("name"): c for c in components}
    used: set[str] = set()

    def walk(element: ET.Element) -> None:
        for ref in element.iter("component"):
            name = ref.get("name", "")
            if name not in used and name in by_name:
                used.add(name)
                walk(by_name[name])

    for section in ("header", "trailer", "messages"):
        part = root.find(section)
        if part is not None:
            walk(part)
    for component in list(components):
        if component.get("name") not in used:
            components.remove(component)


def _copy(element: ET.Element) -> ET.Element:
    return ET.fromstring(ET.tostring(element))


def _renamed(element: ET.Element, rename: dict[str, str]) -> ET.Element:
    """A copy of a message/group fragment with field and group names translated to the base's."""
    copy = _copy(element)
    for node in copy.iter():
        if node.tag in ("field", "group") and node.get("name") in rename:
            node.set("name", rename[node.get("name", "")])
    return copy


def _top_level_names(message: ET.Element, components: dict[str | None, ET.Element]) -> set[str]:
    """Names a message carries at its top level, looking through components (not into groups)."""
    names: set[str] = set()
    for child in message:
        if child.tag == "component":
            comp = components.get(child.get("name"))
            if comp is not None:
                names |= _top_level_names(comp, components)
        names.add(child.get("name", ""))
    return names
