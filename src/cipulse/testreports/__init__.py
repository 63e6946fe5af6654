"""JUnit XML test reports: parsing, storage, test history and flaky tests."""
