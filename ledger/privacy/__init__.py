"""Personal data: the per-person cipher, secrets, key stores, and erasure by crypto-shredding."""
