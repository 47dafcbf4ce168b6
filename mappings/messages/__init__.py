"""One small function per message type: Context in, resources added to its bundle."""
