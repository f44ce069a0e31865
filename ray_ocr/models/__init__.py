"""The pipeline side: building a PaddleOCR pipeline in a process and running it on files."""
