"""See the results: ``mmstar view`` (a Streamlit app over run directories) and ``mmstar report``
(one self-contained HTML file). ``data`` is the pure data layer both use; nothing here imports
streamlit or matplotlib at import time."""
