"""Kalshi REST client for reconciling the engine's book against the exchange (read-only).

    from fixengine.rest import KalshiRest, DEMO_URL
    from fixengine.kalshi.signing import load_private_key

    async with KalshiRest(DEMO_URL, key_id, load_private_key(file="kalshi.pem")) as rest:
        resting = await rest.orders(status="resting")  # every page, as typed RestOrder models

Point it at the local simulator with ``local_url(sim_rest_port)``. Money and counts come back as
``Decimal``; failures raise ``RestError`` subclasses (``fixengine.rest.errors``).
"""

from fixengine.rest.client import DEFAULT_BACKOFF, DEMO_URL, PAGE_LIMIT, PRODUCTION_URL, KalshiRest, local_url
from fixengine.rest.errors import (
    AuthenticationError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    RestError,
    RestTransportError,
    ServerError,
)
from fixengine.rest.models import (
    Balance,
    ExchangeStatus,
    RestFill,
    Market,
    MarketPosition,
    RestOrder,
    PriceRange,
    Settlement,
)
from fixengine.rest.ratelimit import DEFAULT_COST, TokenBucket

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_COST",
    "DEMO_URL",
    "PAGE_LIMIT",
    "PRODUCTION_URL",
    "AuthenticationError",
    "Balance",
    "ExchangeStatus",
    "RestFill",
    "InvalidResponseError",
    "KalshiRest",
    "Market",
    "MarketPosition",
    "NotFoundError",
    "RestOrder",
    "PriceRange",
    "RateLimitedError",
    "RestError",
    "RestTransportError",
    "ServerError",
    "Settlement",
    "TokenBucket",
    "local_url",
]
