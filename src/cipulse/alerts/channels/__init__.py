"""Alert channels: one protocol (``base.Channel``), one module per kind."""
