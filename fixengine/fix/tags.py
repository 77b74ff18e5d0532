"""FIX tag numbers and MsgType values by name, for the engine and the simulator alike.

One vocabulary for both directions: the engine writes the requests the simulator reads, and the
simulator writes the reports the engine reads, each with its own code but with the same names for
the same fields. The names are the FIX field names in upper snake case (``ClOrdID`` is
``CL_ORD_ID``); Kalshi's own tags carry the names Kalshi gives them (../shared/kalshi/fix-spec.md).

Plain module constants, not enums: tags are looked up and written on every message, and a global
int or str costs what the literal did, where an enum member would add an attribute lookup (and an
``int()`` or ``.value``) each time. Only the tags the code uses are here, with their obvious siblings.
"""

from __future__ import annotations

from typing import Final

# --- header and trailer ---------------------------------------------------------------------------

BEGIN_STRING: Final[int] = 8
BODY_LENGTH: Final[int] = 9
CHECK_SUM: Final[int] = 10
MSG_SEQ_NUM: Final[int] = 34
MSG_TYPE: Final[int] = 35
POSS_DUP_FLAG: Final[int] = 43
SENDER_COMP_ID: Final[int] = 49
SENDER_SUB_ID: Final[int] = 50
SENDING_TIME: Final[int] = 52
TARGET_COMP_ID: Final[int] = 56
POSS_RESEND: Final[int] = 97
ORIG_SENDING_TIME: Final[int] = 122

# --- session: logon, heartbeats, sequence recovery, rejects ---------------------------------------

BEGIN_SEQ_NO: Final[int] = 7
END_SEQ_NO: Final[int] = 16
NEW_SEQ_NO: Final[int] = 36
REF_SEQ_NUM: Final[int] = 45
TEXT: Final[int] = 58
RAW_DATA_LENGTH: Final[int] = 95
RAW_DATA: Final[int] = 96
ENCRYPT_METHOD: Final[int] = 98
HEART_BT_INT: Final[int] = 108
TEST_REQ_ID: Final[int] = 112
GAP_FILL_FLAG: Final[int] = 123
RESET_SEQ_NUM_FLAG: Final[int] = 141
REF_TAG_ID: Final[int] = 371
REF_MSG_TYPE: Final[int] = 372
SESSION_REJECT_REASON: Final[int] = 373
DEFAULT_APPL_VER_ID: Final[int] = 1137

# --- orders: requests -----------------------------------------------------------------------------

CL_ORD_ID: Final[int] = 11
EXEC_INST: Final[int] = 18
ORDER_ID: Final[int] = 37
ORDER_QTY: Final[int] = 38
ORD_TYPE: Final[int] = 40
ORIG_CL_ORD_ID: Final[int] = 41
PRICE: Final[int] = 44
SIDE: Final[int] = 54
SYMBOL: Final[int] = 55
TIME_IN_FORCE: Final[int] = 59
TRANSACT_TIME: Final[int] = 60
ALLOC_ACCOUNT: Final[int] = 79  # Kalshi: the subaccount number (0 = primary)
EX_DESTINATION: Final[int] = 100  # Kalshi: the exchange shard index
EXPIRE_TIME: Final[int] = 126
SECONDARY_CL_ORD_ID: Final[int] = 526  # Kalshi: the order group ID
MASS_CANCEL_REQUEST_TYPE: Final[int] = 530
SELF_TRADE_PREVENTION_TYPE: Final[int] = 2964

# --- orders: reports and rejects ------------------------------------------------------------------

AVG_PX: Final[int] = 6
CUM_QTY: Final[int] = 14
EXEC_ID: Final[int] = 17
LAST_PX: Final[int] = 31
LAST_QTY: Final[int] = 32
ORD_STATUS: Final[int] = 39
CXL_REJ_REASON: Final[int] = 102
ORD_REJ_REASON: Final[int] = 103
NO_MISC_FEES: Final[int] = 136
MISC_FEE_AMT: Final[int] = 137
MISC_FEE_CURR: Final[int] = 138
MISC_FEE_TYPE: Final[int] = 139
EXEC_TYPE: Final[int] = 150
LEAVES_QTY: Final[int] = 151
BUSINESS_REJECT_REF_ID: Final[int] = 379
BUSINESS_REJECT_REASON: Final[int] = 380
CXL_REJ_RESPONSE_TO: Final[int] = 434
MASS_CANCEL_RESPONSE: Final[int] = 531
MASS_CANCEL_REJECT_REASON: Final[int] = 532
TOTAL_AFFECTED_ORDERS: Final[int] = 533
LONG_QTY: Final[int] = 704  # Kalshi: net YES position after the trade
SHORT_QTY: Final[int] = 705  # Kalshi: net NO position after the trade
TRD_MATCH_ID: Final[int] = 880
MISC_FEE_BASIS: Final[int] = 891
AGGRESSOR_INDICATOR: Final[int] = 1057
MASS_ACTION_REPORT_ID: Final[int] = 1369
NO_COLLATERAL_AMOUNT_CHANGES: Final[int] = 1703
COLLATERAL_AMOUNT_CHANGE: Final[int] = 1704
COLLATERAL_AMOUNT_TYPE: Final[int] = 1705
# Market settlement reports (35=UMS, spec §15).
CLEARING_BUSINESS_DATE: Final[int] = 715
SETTL_PRICE: Final[int] = 730  # Kalshi: the YES settlement price, cents with 2 decimals
LAST_FRAGMENT: Final[int] = 893
MARKET_SETTLEMENT_REPORT_ID: Final[int] = 20105
TOT_NUM_MARKET_SETTLEMENT_REPORTS: Final[int] = 20106
MARKET_RESULT: Final[int] = 20107
NO_MARKET_SETTLEMENT_PARTY_IDS: Final[int] = 20108
MARKET_SETTLEMENT_PARTY_ID: Final[int] = 20109
MARKET_SETTLEMENT_PARTY_ROLE: Final[int] = 20110

# Fee and status requests (the OMS gateway: Kalshi has no status requests; the book answers them).
COMMISSION: Final[int] = 12
COMM_TYPE: Final[int] = 13
MASS_STATUS_REQ_ID: Final[int] = 584
MASS_STATUS_REQ_TYPE: Final[int] = 585
ORD_STATUS_REQ_ID: Final[int] = 790
TOT_NUM_REPORTS: Final[int] = 911
LAST_RPT_REQUESTED: Final[int] = 912

# --- Kalshi additions (fix-spec §4.2, §10.2, §19) -------------------------------------------------

# Logon switches (Y/N, except MessageRetentionPeriod: hours).
CANCEL_ORDERS_ON_DISCONNECT: Final[int] = 8013
LISTENER_SESSION: Final[int] = 20126
RECEIVE_SETTLEMENT_REPORTS: Final[int] = 20127
MESSAGE_RETENTION_PERIOD: Final[int] = 20200
SKIP_PENDING_EXEC_REPORTS_LEGACY: Final[int] = 21003  # still accepted on Logon (ResendEventCount on U2)
USE_DOLLARS: Final[int] = 21005
ENABLE_IOC_CANCEL_REPORT: Final[int] = 21007
PRESERVE_ORIGINAL_ORDER_QTY: Final[int] = 21008
SKIP_PENDING_EXEC_REPORTS: Final[int] = 21011
USE_EXPIRED_ORD_STATUS: Final[int] = 21012
ALWAYS_EMIT_NEW_BEFORE_TRADE: Final[int] = 21026
SPLIT_COLLATERAL_RETURN: Final[int] = 21027
# NewOrderSingle fields.
CANCEL_ORDER_ON_PAUSE: Final[int] = 21006
MAX_EXECUTION_COST: Final[int] = 21009
# Order groups (§12): OrderGroupRequest (UOG) and OrderGroupResponse (UOH).
ORDER_GROUP_ID: Final[int] = 20130
ORDER_GROUP_ACTION: Final[int] = 20131
ORDER_GROUP_CONTRACTS_LIMIT: Final[int] = 20132

# --- MsgType (35) values --------------------------------------------------------------------------

# Session (administrative) messages.
MSG_HEARTBEAT: Final[str] = "0"
MSG_TEST_REQUEST: Final[str] = "1"
MSG_RESEND_REQUEST: Final[str] = "2"
MSG_REJECT: Final[str] = "3"
MSG_SEQUENCE_RESET: Final[str] = "4"
MSG_LOGOUT: Final[str] = "5"
MSG_LOGON: Final[str] = "A"
# Order entry.
MSG_EXECUTION_REPORT: Final[str] = "8"
MSG_ORDER_CANCEL_REJECT: Final[str] = "9"
MSG_NEW_ORDER_SINGLE: Final[str] = "D"
MSG_ORDER_CANCEL_REQUEST: Final[str] = "F"
MSG_ORDER_CANCEL_REPLACE_REQUEST: Final[str] = "G"
MSG_BUSINESS_MESSAGE_REJECT: Final[str] = "j"
MSG_ORDER_MASS_CANCEL_REQUEST: Final[str] = "q"
MSG_ORDER_MASS_CANCEL_REPORT: Final[str] = "r"
MSG_MARKET_SETTLEMENT_REPORT: Final[str] = "UMS"
MSG_ORDER_STATUS_REQUEST: Final[str] = "H"
MSG_ORDER_GROUP_REQUEST: Final[str] = "UOG"
MSG_ORDER_GROUP_RESPONSE: Final[str] = "UOH"
MSG_ORDER_MASS_STATUS_REQUEST: Final[str] = "AF"
# Drop copy (KalshiDC, spec §13).
MSG_EVENT_RESEND_REQUEST: Final[str] = "U1"
MSG_EVENT_RESEND_COMPLETE: Final[str] = "U2"
MSG_EVENT_RESEND_REJECT: Final[str] = "U3"
BEGIN_EXEC_ID: Final[int] = 21001
END_EXEC_ID: Final[int] = 21002
RESEND_EVENT_COUNT: Final[int] = 21003  # on U2 (on Logon the same tag is legacy SkipPendingExecReports)
EVENT_RESEND_REJECT_REASON: Final[int] = 21004
