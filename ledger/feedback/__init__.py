"""What mailbox providers send back: complaints (ARF) and bounces (DSN), parsed into events."""
