"""Streamlit glue shared by the pages: session keys, cached wrappers, the shared sidebar."""
