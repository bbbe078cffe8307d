"""Event webhooks: signed HTTP posts of delivery and subscription changes.

`events` builds and signs the posts (no I/O); `sender` posts what waits in
the store's outbox.
"""
