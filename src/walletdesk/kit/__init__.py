"""Small shared building blocks: money, identifiers, clock, errors, i18n."""
