"""Pages opened in headless Chromium (Debian's package), as a person would use them."""
