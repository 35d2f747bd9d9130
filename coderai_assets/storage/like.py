"""A user's search words inside a LIKE pattern, taken literally."""


def contains(words: str) -> str:
    """The pattern of text holding `words`: their %, _ and \\ match themselves (with `escape="\\\\"`)."""
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
