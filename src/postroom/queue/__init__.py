"""Durable store and scheduling: messages, recipients, attempts, bounce
records, suppression and the retry policy.

Nothing here knows about SMTP.
"""
