"""Operations: each a function over a repository and settings, usable as a library."""
