"""Analysis of run directories (it reads runs; it never imports agents)."""
