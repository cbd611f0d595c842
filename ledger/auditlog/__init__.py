"""The audit tree kept next to the events: storage, the sealer, verification and export."""
