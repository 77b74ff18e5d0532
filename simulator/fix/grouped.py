"""Messages with nested repeating groups, for QuickFIX to send as they are written.

The acceptor hands QuickFIX most messages as text (``quickfix_text``), parsed without a dictionary:
QuickFIX then keeps the body sorted by tag, which splits a group whose entries are not in tag order
(a MarketSettlementReport's party entry starts with 20109 and holds 704, 1703, 136 ...). Built
here with ``quickfix.Group``s instead, each entry keeps its fields in the order given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import quickfix as fix

from fixengine.fix.tags import MSG_TYPE

# A group's count tag -> the tags of one entry, in order (the first is the delimiter).
Groups = Mapping[int, tuple[int, ...]]


def _order(tags: Sequence[int]) -> fix.IntArray:
    order = fix.IntArray(len(tags) + 1)
    for i, tag in enumerate(tags):
        order[i] = tag
    order[len(tags)] = 0  # QuickFIX's end marker
    return order


def _fields(target: fix.FieldMap, fields: Sequence[tuple[int, str]], i: int, groups: Groups,
            entry: tuple[int, ...] | None) -> int:
    """Copy fields from ``i`` into ``target`` (a message's body, or one group entry with the tags
    ``entry``); return where the entry ends: at a tag it does not hold, or at its next delimiter."""
    start = i
    while i < len(fields):
        tag, value = fields[i]
        if entry is not None and (tag not in entry or (tag == entry[0] and i > start)):
            return i
        i += 1
        if tag not in groups:
            target.setField(tag, value)
            continue
        members = groups[tag]
        for _ in range(int(value)):
            group = fix.Group(tag, members[0], _order(members))
            i = _fields(group, fields, i, groups, members)
            target.addGroup(group)
    return i


def grouped_message(begin_string: str, msg_type: str, fields: Sequence[tuple[int, str]], groups: Groups) -> fix.Message:
    """The message QuickFIX sends with ``fields`` in order, the ``groups`` among them as groups.
    The rest of the header is QuickFIX's to write, as for ``quickfix_text``."""
    message = fix.Message()
    header = message.getHeader()
    header.setField(fix.BeginString(begin_string))
    header.setField(MSG_TYPE, msg_type)
    _fields(message, fields, 0, groups, None)
    return message
