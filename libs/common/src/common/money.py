"""Money is integer fen (分); yuan exist only as rendered text."""


def fen_to_yuan_text(fen: int) -> str:
    """12345 → '123.45'; -5 → '-0.05'. Integer arithmetic only, never floats."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"
