"""The initiator session layer, one concern a file (as QuickFIX/Go): the QuickFIX callbacks
(``application``) over a pure connection machine (``connection``), the loop's supervision with its
pure policy (``supervisor``), the initiators and the inbox to the loop (``runtime``), the reconnect
backoff (``reconnect``), the connect probe (``probe``), the QuickFIX settings (``settings``) and the
session events (``events``)."""
