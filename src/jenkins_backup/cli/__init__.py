"""The command line: parsing, exit codes and human output. Thin: it calls operations."""
