"""Resident-facing account logic: consent (remembered per relying party), enrollment of the
verified basic-4 items from the card, and the texts residents read (Japanese first)."""
