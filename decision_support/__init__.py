"""CDS Hooks services: discovery, hooks, cards with their evidence."""
