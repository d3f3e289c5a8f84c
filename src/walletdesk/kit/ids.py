"""Identifiers a person can say on the phone: digits only, fixed length, Damm check digit.

The Damm algorithm catches every single-digit error and every swap of adjacent digits,
the two mistakes people make when reading a number aloud or keying it on a phone pad.
"""

from __future__ import annotations

import secrets

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

TRANSACTION_NUMBER_LENGTH = 12


def damm_digit(digits: str) -> int:
    interim = 0
    for char in digits:
        interim = _DAMM[interim][int(char)]
    return interim


def is_valid_number(text: str, length: int = TRANSACTION_NUMBER_LENGTH) -> bool:
    # isascii: str.isdigit() also admits characters such as "²" that int() refuses.
    return len(text) == length and text.isascii() and text.isdigit() and damm_digit(text) == 0


def new_number(length: int = TRANSACTION_NUMBER_LENGTH) -> str:
    """A random number of `length` digits whose last digit checks the rest; never starts with 0."""
    body = str(secrets.randbelow(9) + 1) + "".join(
        str(secrets.randbelow(10)) for _ in range(length - 2)
    )
    return body + str(damm_digit(body))


def normalize_number(text: str) -> str:
    """Drop the spaces and dashes people type or read between digit groups."""
    return "".join(ch for ch in text if ch not in " -")
