"""Design C's navigation: Organizations → Repositories → Workflows → Runs → Job."""
