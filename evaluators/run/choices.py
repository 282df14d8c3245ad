"""The choices of a run's options (``RunOptions``, ``mmstar eval``'s flags), apart from the pipeline so
that building the command line imports no run machinery (``mmstar eval --help``)."""

PROMPTS = ("official", "letter")
SHOTS = (0, 2)
PROTOCOLS = ("official", "reasoning")
THINKING = ("on", "off")
