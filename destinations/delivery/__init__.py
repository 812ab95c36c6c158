"""How export files travel: a local folder now; sFTP and e-mail arrive with their issue."""
