"""Finding and replacing personal data: Presidio plus the recognizers vanilla Presidio lacks."""
