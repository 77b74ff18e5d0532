"""The service's HTTP side (``fixengine serve``): health, status, the status page, metrics, admin."""
