"""Returns: inbound mail -- mailbox reading, DSN parsing, the bounce scan, unsubscribe by mail."""
