"""Streamlit human-review app and its decision store."""
