"""pytest plugin for gradcheck (filled in by the gradcheck issue)."""
