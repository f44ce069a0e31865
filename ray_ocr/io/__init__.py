"""Reading inputs and writing outputs: listing files, decoding documents, naming JSONs."""
