"""Sending: the one send path (campaign.send_month), planning, the runner, limits, retries."""
