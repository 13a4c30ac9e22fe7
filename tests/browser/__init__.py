"""Tests that drive the web UI in headless Chromium (Debian's package, through Playwright)."""
