"""notifier's use cases, one function per command, used by the HTTP and Kafka entrypoints.

Receiving writes the messages (held / pending / undeliverable) with the inbox claim in one
transaction; sending is a separate loop, so a slow SMSC never holds up the consumer; receipts
come from the SMSC's receipt loop or a provider's webhook.
"""

from .context import NotifierContext
from .queries import list_messages, reminder_timeliness, smsc_received
from .receipts import apply_receipts, deliver_smsc_receipts, run_receipts
from .receiving import apply_credit_events
from .sending import run_sender, send_pending
from .templates import list_templates, preview, put_templates, template_versions

__all__ = [
    "NotifierContext", "apply_credit_events", "apply_receipts", "deliver_smsc_receipts",
    "list_messages", "list_templates", "preview", "put_templates", "reminder_timeliness",
    "run_receipts", "run_sender", "send_pending", "smsc_received", "template_versions",
]
