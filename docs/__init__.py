"""The documentation site's sources (MkDocs, mkdocs.yml at the root) and, in docs/generate, the
program that writes its reference pages from the code. The Python files here are excluded from
the site (mkdocs.yml, exclude_docs)."""
