"""Time budgets written as ``"20m"``, ``"1h30m"``, ``"90s"`` or a number of seconds."""

import numbers
import re

_UNITS = {"h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def parse_budget(budget, name="budget"):
    """Seconds of a time budget; None stays None (no limit).

    Parameters
    ----------
    budget : None, number or str
        Seconds, or a duration such as ``"20m"``, ``"1h30m"``, ``"90s"`` (``"1200"``: seconds).
    name : str, default="budget"
        The argument's name in error messages.

    Returns
    -------
    float or None

    Examples
    --------
    >>> from sklearn_ddpm.model_selection import parse_budget
    >>> parse_budget("20m"), parse_budget("1h30m"), parse_budget(45), parse_budget(None)
    (1200.0, 5400.0, 45.0, None)
    """
    if budget is None:
        return None
    if isinstance(budget, numbers.Real) and not isinstance(budget, bool):
        seconds = float(budget)
    elif isinstance(budget, str):
        text = budget.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or "".join(a + b for a, b in parts) != text:
                raise ValueError(f"{name}={budget!r} is not a duration; write e.g. '20m', '1h30m', '90s' or "
                                 "a number of seconds.") from None
            seconds = sum(float(amount) * _UNITS[unit] for amount, unit in parts)
    else:
        raise TypeError(f"{name} must be None, a number of seconds or a duration string, got {budget!r}.")
    if not seconds > 0:
        raise ValueError(f"{name}={budget!r} must be a positive duration.")
    return seconds
