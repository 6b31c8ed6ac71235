"""Messages (pure): MIME skeletons filled per reader, notices, previews, DKIM, envelope senders."""
