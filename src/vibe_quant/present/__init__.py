"""Views of results for people: terminal tables and lines built with rich, from stored or returned
results only (never recomputing a run). The CLI prints them; the dashboard and reports reuse them
without importing CLI code."""
