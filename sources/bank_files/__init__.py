"""Bank statement files: parsers per format (``coda``, ``camt``, ``mt940``, ``ofx``,
``bank_csv``), the registry that picks one (``formats``), the lines and ids they become
(``lines``), the folders and sFTP inboxes files wait in (``stores``) and the dlt source
that loads them (``source``). Importing this package imports nothing heavy."""
