"""Clinical alert rules (pure) and the alert store."""
