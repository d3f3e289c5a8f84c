"""Reading an operator-replaceable YAML file: the shipped one, or the operator's own."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml


def load_yaml(
    path: Path | None, *, package: str, name: str, what: str, error: type[ValueError]
) -> tuple[object, str]:
    """The parsed document and where it came from (for error messages); `path` None reads the
    file `name` shipped in `package`. An unreadable file or bad YAML raises `error`."""
    if path is None:
        source = f"{package.replace('.', '/')}/{name}"
        text = resources.files(package).joinpath(name).read_text("utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as problem:
            raise error(f"{source}: cannot read {what}: {problem}") from None
    try:
        return yaml.safe_load(text), source
    except yaml.YAMLError as problem:
        raise error(f"{source}: not valid YAML: {problem}") from None
