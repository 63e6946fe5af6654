"""Job logs: fetched from GitHub when a job completes, stored in chunks, shown page by page."""
