"""The application layer: commands that wire several domains together (exchange, book, research, alerts) for an
operator. Library packages never import from here."""
